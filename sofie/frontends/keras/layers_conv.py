"""Convolution, pooling and spatial layers: Conv1D-3D, Conv1D-3DTranspose, DepthwiseConv1D/2D,
SeparableConv1D/2D, Max/AveragePooling1D-3D, the global pools, UpSampling, ZeroPadding and
Cropping.

Keras keeps channels last; sofie's Conv and pools take channels first, so each such layer is
wrapped in a pair of Transposes, which the `sink-transposes` pass cancels between layers. The
spatial layers (padding, cropping, upsampling, global pools) work on either layout directly.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from sofie.frontends.keras.activations import apply_activation
from sofie.frontends.keras.context import Context, Layer
from sofie.ir.core import Value


def _tuple(v: Any, n: int) -> list[int]:
    return [int(v)] * n if isinstance(v, int) else [int(a) for a in v]


def _channels_last(ctx: Context, layer: Layer) -> bool:
    fmt = layer.get("data_format") or "channels_last"
    if fmt not in ("channels_last", "channels_first"):
        raise ctx.error(f"data_format '{fmt}' is not supported")
    return fmt == "channels_last"


def _spatial_axes(ctx: Context, layer: Layer, rank: int) -> list[int]:
    return list(range(1, rank - 1)) if _channels_last(ctx, layer) else list(range(2, rank))


def same_pads(ctx: Context, sizes: list[int], kernel: list[int], strides: list[int],
              dilations: list[int], padding: str) -> list[int]:
    """ONNX pads (begins then ends) for Keras 'valid', 'same' (extra pad at the end) or
    'causal' (all of it in front)."""
    if padding == "valid":
        return [0] * (2 * len(sizes))
    eff = [(k - 1) * d + 1 for k, d in zip(kernel, dilations)]
    if padding == "causal":
        return [e - 1 for e in eff] + [0] * len(sizes)
    if padding != "same":
        raise ctx.error(f"padding '{padding}' is not supported (valid, same, causal)")
    total = [max((math.ceil(n / s) - 1) * s + e - n, 0) for n, s, e in zip(sizes, strides, eff)]
    return [t // 2 for t in total] + [t - t // 2 for t in total]


class _Conv:
    """A Conv layer in channels-first form: kernel to ONNX layout, pads from the padding mode."""

    def __init__(self, ctx: Context, layer: Layer, x: Value) -> None:
        self.nd = x.type.rank - 2
        self.cl = _channels_last(ctx, layer)
        self.x = ctx.to_channels_first(x) if self.cl else x
        nd = self.nd
        self.kernel = _tuple(layer.get("kernel_size"), nd)
        self.strides = _tuple(layer.get("strides", 1), nd)
        self.dilations = _tuple(layer.get("dilation_rate", 1), nd)
        self.sizes = ctx.static_dims(self.x, list(range(2, nd + 2)))
        self.padding = str(layer.get("padding", "valid")).lower()

    def attrs(self, ctx: Context, group: int = 1, kernel: list[int] | None = None,
              strides: list[int] | None = None) -> dict[str, Any]:
        kernel = kernel or self.kernel
        strides = strides or self.strides
        return {"kernel_shape": kernel, "strides": strides, "dilations": self.dilations, "group": group,
                "pads": same_pads(ctx, self.sizes, kernel, strides, self.dilations, self.padding)}

    def finish(self, ctx: Context, layer: Layer, y: Value) -> Value:
        y = ctx.to_channels_last(y) if self.cl else y
        return apply_activation(ctx, y, layer.get("activation"))


def _bias(ctx: Context, layer: Layer, ws: list[np.ndarray], x: Value) -> Value | None:
    return ctx.const(ctx.cast_weight(ws[-1], x), "bias") if layer.get("use_bias", True) else None


def conv(ctx: Context, layer: Layer, xs: list[Value]) -> Value:
    c = _Conv(ctx, layer, xs[0])
    ws = ctx.weights(2 if layer.get("use_bias", True) else 1)
    nd = c.nd
    w = np.transpose(ws[0], (nd + 1, nd, *range(nd)))  # (k..., in/g, out) -> (out, in/g, k...)
    y = ctx.op("graph.conv", [c.x, ctx.const(ctx.cast_weight(w, c.x), "kernel"), _bias(ctx, layer, ws, c.x)],
               c.attrs(ctx, int(layer.get("groups", 1))))
    return c.finish(ctx, layer, y)


def depthwise_conv(ctx: Context, layer: Layer, xs: list[Value]) -> Value:
    c = _Conv(ctx, layer, xs[0])
    ws = ctx.weights(2 if layer.get("use_bias", True) else 1)
    y = _depthwise(ctx, c, ws[0])
    b = _bias(ctx, layer, ws, c.x)
    if b is not None:
        y = ctx.op("graph.add", [y, ctx.op("graph.reshape", [b, ctx.ints([-1] + [1] * c.nd, "bias_shape")])],
                   {}, "bias")
    return c.finish(ctx, layer, y)


def _depthwise(ctx: Context, c: _Conv, kernel: np.ndarray) -> Value:
    """(k..., in, multiplier) -> a grouped conv with in groups: output channel = c * mult + m."""
    nd = c.nd
    channels, mult = kernel.shape[-2:]
    w = kernel.reshape(*kernel.shape[:nd], channels * mult)
    w = np.transpose(w, (nd, *range(nd)))[:, None]
    return ctx.op("graph.conv", [c.x, ctx.const(ctx.cast_weight(w, c.x), "depthwise_kernel")],
                  c.attrs(ctx, int(channels)), "depthwise")


def separable_conv(ctx: Context, layer: Layer, xs: list[Value]) -> Value:
    c = _Conv(ctx, layer, xs[0])
    ws = ctx.weights(3 if layer.get("use_bias", True) else 2)
    y = _depthwise(ctx, c, ws[0])
    nd = c.nd
    pw = np.transpose(ws[1], (nd + 1, nd, *range(nd)))
    ones = [1] * nd
    y = ctx.op("graph.conv", [y, ctx.const(ctx.cast_weight(pw, c.x), "pointwise_kernel"), _bias(ctx, layer, ws, c.x)],
               {"kernel_shape": ones, "strides": ones, "pads": [0] * 2 * nd}, "pointwise")
    return c.finish(ctx, layer, y)


def conv_transpose(ctx: Context, layer: Layer, xs: list[Value]) -> Value:
    c = _Conv(ctx, layer, xs[0])
    ws = ctx.weights(2 if layer.get("use_bias", True) else 1)
    nd = c.nd
    w = np.transpose(ws[0], (nd + 1, nd, *range(nd)))  # (k..., out, in) -> (in, out, k...)
    if layer.get("output_padding") is not None:
        raise ctx.error("output_padding is not supported")
    pads, extra = [], []
    for k, s, d in zip(c.kernel, c.strides, c.dilations):
        eff = (k - 1) * d + 1
        # Keras: 'valid' gives n*s + max(eff - s, 0), 'same' gives n*s
        total = max(eff - s, 0) if c.padding == "same" else 0
        if c.padding not in ("same", "valid"):
            raise ctx.error(f"padding '{c.padding}' is not supported (valid, same)")
        pads.append((total // 2, total - total // 2))
        extra.append(max(s - eff, 0))
    attrs = {"kernel_shape": c.kernel, "strides": c.strides, "dilations": c.dilations,
             "pads": [p[0] for p in pads] + [p[1] for p in pads], "output_padding": extra}
    y = ctx.op("graph.conv_transpose", [c.x, ctx.const(ctx.cast_weight(w, c.x), "kernel"),
                                        _bias(ctx, layer, ws, c.x)], attrs)
    return c.finish(ctx, layer, y)


def pool(kind: str):
    def convert(ctx: Context, layer: Layer, xs: list[Value]) -> Value:
        x = xs[0]
        nd = x.type.rank - 2
        cl = _channels_last(ctx, layer)
        xc = ctx.to_channels_first(x) if cl else x
        size = _tuple(layer.get("pool_size", 2), nd)
        strides = _tuple(layer.get("strides") or size, nd)
        sizes = ctx.static_dims(xc, list(range(2, nd + 2)))
        padding = str(layer.get("padding", "valid")).lower()
        attrs = {"kernel_shape": size, "strides": strides,
                 "pads": same_pads(ctx, sizes, size, strides, [1] * nd, padding)}
        y = ctx.op(f"graph.{kind}_pool", [xc], attrs)
        return ctx.to_channels_last(y) if cl else y
    return convert


def global_pool(kind: str):
    def convert(ctx: Context, layer: Layer, xs: list[Value]) -> Value:
        x = xs[0]
        axes = _spatial_axes(ctx, layer, x.type.rank)
        return ctx.op(f"graph.reduce_{kind}", [x], {"axes": axes, "keepdims": int(bool(layer.get("keepdims")))})
    return convert


def _pairs(v: Any, nd: int) -> list[tuple[int, int]]:
    """ZeroPadding / Cropping amounts: an int, one int per axis, or a (before, after) per axis."""
    if isinstance(v, int):
        return [(v, v)] * nd
    v = list(v)
    if nd == 1 and len(v) == 2 and all(isinstance(a, int) for a in v):
        return [(int(v[0]), int(v[1]))]
    return [(int(a), int(a)) if isinstance(a, int) else (int(a[0]), int(a[1])) for a in v]


def zero_padding(ctx: Context, layer: Layer, xs: list[Value]) -> Value:
    x = xs[0]
    r = x.type.rank
    axes = _spatial_axes(ctx, layer, r)
    amounts = dict(zip(axes, _pairs(layer.get("padding", 1), len(axes))))
    pads = [amounts.get(a, (0, 0))[0] for a in range(r)] + [amounts.get(a, (0, 0))[1] for a in range(r)]
    return ctx.op("graph.pad", [x, ctx.ints(pads, "pads")], {"mode": "constant"})


def cropping(ctx: Context, layer: Layer, xs: list[Value]) -> Value:
    x = xs[0]
    axes = _spatial_axes(ctx, layer, x.type.rank)
    crops = _pairs(layer.get("cropping", 1), len(axes))
    sizes = ctx.static_dims(x, axes)
    return ctx.op("graph.slice", [x, ctx.ints([c[0] for c in crops], "starts"),
                                  ctx.ints([n - c[1] for n, c in zip(sizes, crops)], "ends"),
                                  ctx.ints(axes, "axes")])


def upsampling(ctx: Context, layer: Layer, xs: list[Value]) -> Value:
    x = xs[0]
    r = x.type.rank
    axes = list(range(1, r - 1)) if layer.cls == "UpSampling1D" else _spatial_axes(ctx, layer, r)
    size = _tuple(layer.get("size", 2), len(axes))
    scales = [1.0] * r
    for a, s in zip(axes, size):
        scales[a] = float(s)
    mode = layer.get("interpolation", "nearest")
    if mode == "nearest":
        attrs = {"mode": "nearest", "coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor"}
    elif mode == "bilinear":
        attrs = {"mode": "linear", "coordinate_transformation_mode": "half_pixel"}
    else:
        raise ctx.error(f"interpolation '{mode}' is not supported (nearest, bilinear)")
    return ctx.op("graph.resize", [x, None, ctx.const(np.array(scales, np.float32), "scales")], attrs)


CONVERTERS = {
    **{f"Conv{n}D": conv for n in (1, 2, 3)},
    **{f"Conv{n}DTranspose": conv_transpose for n in (1, 2, 3)},
    "DepthwiseConv1D": depthwise_conv, "DepthwiseConv2D": depthwise_conv,
    "SeparableConv1D": separable_conv, "SeparableConv2D": separable_conv,
    **{f"MaxPooling{n}D": pool("max") for n in (1, 2, 3)},
    **{f"AveragePooling{n}D": pool("average") for n in (1, 2, 3)},
    **{f"GlobalAveragePooling{n}D": global_pool("mean") for n in (1, 2, 3)},
    **{f"GlobalMaxPooling{n}D": global_pool("max") for n in (1, 2, 3)},
    **{f"ZeroPadding{n}D": zero_padding for n in (1, 2, 3)},
    **{f"Cropping{n}D": cropping for n in (1, 2, 3)},
    **{f"UpSampling{n}D": upsampling for n in (1, 2, 3)},
}
