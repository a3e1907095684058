"""Core, activation and normalization layers: Dense, Activation, ReLU, LeakyReLU, PReLU, ELU,
Softmax, BatchNormalization, LayerNormalization, Embedding, and the inference no-ops."""

from __future__ import annotations

import numpy as np

from sofie.frontends.keras.activations import apply_activation
from sofie.frontends.keras.context import Context, Layer
from sofie.ir.core import Value


def dense(ctx: Context, layer: Layer, xs: list[Value]) -> Value:
    x = xs[0]
    ws = ctx.weights(2 if layer.get("use_bias", True) else 1)
    kernel = ctx.const(ctx.cast_weight(ws[0], x), "kernel")
    bias = ctx.const(ctx.cast_weight(ws[1], x), "bias") if len(ws) > 1 else None
    if x.type.rank == 2:
        y = ctx.op("graph.gemm", [x, kernel, bias])
    else:  # Dense acts on the last axis of any rank
        y = ctx.op("graph.matmul", [x, kernel])
        if bias is not None:
            y = ctx.op("graph.add", [y, bias], {}, "bias")
    return apply_activation(ctx, y, layer.get("activation"))


def activation(ctx: Context, layer: Layer, xs: list[Value]) -> Value:
    return apply_activation(ctx, xs[0], layer.get("activation"))


def relu(ctx: Context, layer: Layer, xs: list[Value]) -> Value:
    x = xs[0]
    top, slope = layer.get("max_value"), float(layer.get("negative_slope") or 0.0)
    if float(layer.get("threshold") or 0.0) != 0.0:
        raise ctx.error("ReLU with a threshold other than 0 is not supported")
    y = ctx.op("graph.leaky_relu", [x], {"alpha": slope}) if slope else ctx.op("graph.relu", [x])
    if top is not None:
        y = ctx.op("graph.clip", [y], {"max": float(top)}, "max_value")
    return y


def leaky_relu(ctx: Context, layer: Layer, xs: list[Value]) -> Value:
    slope = layer.get("negative_slope", layer.get("alpha", 0.3))
    return ctx.op("graph.leaky_relu", [xs[0]], {"alpha": float(slope)})


def elu(ctx: Context, layer: Layer, xs: list[Value]) -> Value:
    return ctx.op("graph.elu", [xs[0]], {"alpha": float(layer.get("alpha", 1.0))})


def prelu(ctx: Context, layer: Layer, xs: list[Value]) -> Value:
    (alpha,) = ctx.weights(1)
    # alpha has the input's shape without the batch (1 on shared axes): it broadcasts
    return ctx.op("graph.prelu", [xs[0], ctx.const(ctx.cast_weight(alpha, xs[0]), "alpha")])


def softmax(ctx: Context, layer: Layer, xs: list[Value]) -> Value:
    axis = layer.get("axis", -1)
    if isinstance(axis, list):
        if len(axis) != 1:
            raise ctx.error(f"Softmax over several axes {axis} is not supported")
        axis = axis[0]
    return ctx.op("graph.softmax", [xs[0]], {"axis": int(axis)})


def batch_norm(ctx: Context, layer: Layer, xs: list[Value]) -> Value:
    x = xs[0]
    r = x.type.rank
    axis = layer.get("axis", -1)
    axis = ctx.axis(axis[0] if isinstance(axis, list) and len(axis) == 1 else axis, r) \
        if not isinstance(axis, list) or len(axis) == 1 else None
    if axis is None or axis == 0:
        raise ctx.error(f"BatchNormalization over axis {layer.get('axis')} is not supported")
    center, scale = layer.get("center", True), layer.get("scale", True)
    ws = list(ctx.weights(2 + int(center) + int(scale)))
    (channels,) = ctx.static_dims(x, [axis])
    gamma = ws.pop(0) if scale else np.ones(channels)
    beta = ws.pop(0) if center else np.zeros(channels)
    mean, var = ws
    params = [ctx.const(ctx.cast_weight(a, x), n) for a, n in
              ((gamma, "gamma"), (beta, "beta"), (mean, "moving_mean"), (var, "moving_variance"))]
    perm = [0, axis, *(k for k in range(1, r) if k != axis)]
    moved = x if axis == 1 else ctx.op("graph.transpose", [x], {"perm": perm}, "to_nchw")
    y = ctx.op("graph.batch_normalization", [moved, *params], {"epsilon": float(layer.get("epsilon", 1e-3))})
    return y if axis == 1 else ctx.op("graph.transpose", [y], {"perm": list(np.argsort(perm))}, "to_nhwc")


def layer_norm(ctx: Context, layer: Layer, xs: list[Value]) -> Value:
    x = xs[0]
    r = x.type.rank
    axes = layer.get("axis", -1)
    axes = sorted(ctx.axis(a, r) for a in (axes if isinstance(axes, list) else [axes]))
    if axes != list(range(axes[0], r)):
        raise ctx.error(f"LayerNormalization over axes {layer.get('axis')} is not supported "
                        f"(only trailing axes)")
    if layer.get("rms_scaling"):
        raise ctx.error("LayerNormalization with rms_scaling is not supported")
    center, scale = layer.get("center", True), layer.get("scale", True)
    ws = list(ctx.weights(int(center) + int(scale)))
    shape = ctx.static_dims(x, axes)
    gamma = ws.pop(0) if scale else np.ones(shape)
    beta = ws.pop(0) if center else np.zeros(shape)
    params = [ctx.const(ctx.cast_weight(np.reshape(a, shape), x), n) for a, n in ((gamma, "gamma"), (beta, "beta"))]
    return ctx.op("graph.layer_normalization", [x, *params],
                  {"axis": axes[0], "epsilon": float(layer.get("epsilon", 1e-3))})


def embedding(ctx: Context, layer: Layer, xs: list[Value]) -> Value:
    x = xs[0]
    (table,) = ctx.weights(1)
    if x.type.dtype not in ("i32", "i64"):
        x = ctx.op("graph.cast", [x], {"to": "i64"}, "indices")
    return ctx.op("graph.gather", [ctx.const(table, "embeddings"), x], {"axis": 0})


def rescaling(ctx: Context, layer: Layer, xs: list[Value]) -> Value:
    """x * scale + offset (scalars, or per-channel lists broadcast over the last axis)."""
    x = xs[0]
    scale = ctx.const(ctx.cast_weight(np.asarray(layer.get("scale", 1.0)), x), "scale")
    offset = ctx.const(ctx.cast_weight(np.asarray(layer.get("offset", 0.0)), x), "offset")
    return ctx.op("graph.add", [ctx.op("graph.mul", [x, scale], {}, "scale"), offset], {}, "offset")


def identity(ctx: Context, layer: Layer, xs: list[Value]) -> Value:
    return xs[0]


NO_OPS = ("Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "GaussianNoise",
          "GaussianDropout", "AlphaDropout", "ActivityRegularization", "Identity")

CONVERTERS = {
    "Dense": dense, "Activation": activation, "ReLU": relu, "LeakyReLU": leaky_relu, "ELU": elu,
    "PReLU": prelu, "Softmax": softmax, "BatchNormalization": batch_norm,
    "LayerNormalization": layer_norm, "Embedding": embedding, "Rescaling": rescaling,
    **{name: identity for name in NO_OPS},
}
