"""Sequence layers: SimpleRNN, GRU (both reset_after modes), LSTM and Bidirectional, as the
ONNX-form RNN / GRU / LSTM ops with layout 1 (batch first, as Keras).

Keras stores kernel [I, G*H], recurrent_kernel [H, G*H] and bias [G*H] (GRU reset_after: [2,
G*H], input then recurrent bias); ONNX wants W [D, G*H, I], R [D, G*H, H], B [D, 2*G*H], with
LSTM gates i, o, f, c where Keras has i, f, c, o (GRU's z, r, h are the same in both).
"""

from __future__ import annotations

import numpy as np

from sofie.frontends.keras.activations import activation_name
from sofie.frontends.keras.context import Context, Layer
from sofie.ir.core import Value

_KINDS = {"SimpleRNN": ("graph.rnn", 1), "GRU": ("graph.gru", 3), "LSTM": ("graph.lstm", 4)}
_LSTM_ORDER = [0, 3, 1, 2]  # ONNX i, o, f, c from Keras i, f, c, o
# Keras activation -> ONNX activation name, alpha, beta (Keras 3's hard_sigmoid is relu6(x + 3) / 6)
_ACTIVATIONS = {"tanh": ("Tanh", None, None), "sigmoid": ("Sigmoid", None, None), "relu": ("Relu", None, None),
                "hard_sigmoid": ("HardSigmoid", 1.0 / 6.0, 0.5), "softsign": ("Softsign", None, None),
                "softplus": ("Softplus", None, None), "elu": ("Elu", 1.0, None)}


def _activation(ctx: Context, spec: object, alphas: list[float], betas: list[float]) -> str:
    name = activation_name(spec)
    if name not in _ACTIVATIONS:
        raise ctx.error(f"recurrent activation '{name}' is not supported (supported: {', '.join(_ACTIVATIONS)})")
    onnx, alpha, beta = _ACTIVATIONS[name]
    if alpha is not None:
        alphas.append(alpha)
    if beta is not None:
        betas.append(beta)
    return onnx


def _check(ctx: Context, cfg: dict) -> None:
    for key in ("stateful",):
        if cfg.get(key):
            raise ctx.error(f"{key}=True is not supported (inference of whole sequences only)")


def _direction_weights(ctx: Context, cls: str, cfg: dict, ws: list[np.ndarray]) -> tuple[np.ndarray, ...]:
    """One direction's W [G*H, I], R [G*H, H], B [2*G*H] in ONNX order, and linear_before_reset."""
    _, gates = _KINDS[cls]
    units = int(cfg["units"])
    kernel, recurrent = ws[0], ws[1]
    bias = ws[2] if cfg.get("use_bias", True) else np.zeros(gates * units, kernel.dtype)
    if cls == "GRU" and cfg.get("reset_after", True):
        bias = np.reshape(bias, (2, gates * units))
    else:
        bias = np.stack([np.reshape(bias, -1), np.zeros(gates * units, kernel.dtype)])
    w, r = kernel.T, recurrent.T
    if cls == "LSTM":
        def order(a: np.ndarray) -> np.ndarray:
            return np.concatenate([a[..., k * units:(k + 1) * units, :] for k in _LSTM_ORDER], axis=-2)
        w, r = order(w), order(r)
        bias = order(bias[..., None])[..., 0]
    return w, r, bias.reshape(-1)


def _layer_weights(ctx: Context, cfg: dict, ws: list[np.ndarray]) -> None:
    want = 3 if cfg.get("use_bias", True) else 2
    if len(ws) != want:
        raise ctx.error(f"expected {want} weight arrays per direction, the file holds {len(ws)}")


def _run(ctx: Context, cls: str, cfg: dict, x: Value, direction: str,
         weights: list[list[np.ndarray]]) -> list[Value]:
    """The recurrent op over x [N, T, I] (layout 1): Y [N, T, D, H], Y_h [N, D, H] (, Y_c)."""
    op = _KINDS[cls][0]
    for ws in weights:
        _layer_weights(ctx, cfg, ws)
    parts = [_direction_weights(ctx, cls, cfg, ws) for ws in weights]
    W, R, B = (np.stack([p[k] for p in parts]) for k in range(3))
    # ONNX order: RNN [activation], GRU [f, g], LSTM [f, g, h]; alphas and betas in that order
    names = {"SimpleRNN": ["activation"], "GRU": ["recurrent_activation", "activation"],
             "LSTM": ["recurrent_activation", "activation", "activation"]}[cls]
    defaults = {"activation": "tanh", "recurrent_activation": "sigmoid"}
    alphas: list[float] = []
    betas: list[float] = []
    acts = [_activation(ctx, cfg.get(n, defaults[n]), alphas, betas) for n in names]
    attrs = {"hidden_size": int(cfg["units"]), "direction": direction, "layout": 1,
             "activations": acts * len(weights), "activation_alpha": alphas * len(weights),
             "activation_beta": betas * len(weights)}
    if cls == "GRU":
        attrs["linear_before_reset"] = int(bool(cfg.get("reset_after", True)))
    consts = [ctx.const(ctx.cast_weight(a, x), n) for a, n in ((W, "W"), (R, "R"), (B, "B"))]
    return ctx.ops(op, [x, *consts], attrs)


def _flip_time(ctx: Context, y: Value) -> Value:
    (t,) = ctx.static_dims(y, [1])
    return ctx.op("graph.slice", [y, ctx.ints([t - 1], "starts"), ctx.ints([-t - 1], "ends"),
                                  ctx.ints([1], "axes"), ctx.ints([-1], "steps")], {}, "reverse")


def _merge_dirs(ctx: Context, y: Value, axis: int, mode: str | None) -> list[Value]:
    """Y [N, T, D, H] (axis 2) or Y_h [N, D, H] (axis 1) with D directions -> Keras outputs."""
    if mode == "concat" or y.type.shape[axis] == 1:
        return [ctx.op("graph.reshape", [y, ctx.ints([0] * axis + [-1], "shape")])]
    halves = [ctx.op("graph.squeeze", [ctx.op("graph.slice", [y, ctx.ints([d], "starts"), ctx.ints([d + 1], "ends"),
                                                              ctx.ints([axis], "axes")])], {"axes": [axis]})
              for d in (0, 1)]
    if mode is None:
        return halves
    ops = {"sum": "graph.add", "mul": "graph.mul", "ave": "graph.mean"}
    if mode not in ops:
        raise ctx.error(f"merge_mode '{mode}' is not supported (concat, sum, mul, ave, None)")
    return [ctx.op(ops[mode], halves)]


def recurrent(ctx: Context, layer: Layer, xs: list[Value]) -> list[Value]:
    cfg = layer.config
    _check(ctx, cfg)
    backwards = bool(cfg.get("go_backwards"))
    results = _run(ctx, layer.cls, cfg, xs[0], "reverse" if backwards else "forward", [ctx.weights()])
    y, yh = results[0], results[1]
    if cfg.get("return_sequences"):
        out = _merge_dirs(ctx, y, 2, "concat")[0]
        out = _flip_time(ctx, out) if backwards else out  # Keras returns the reversed sequence
    else:
        out = _merge_dirs(ctx, yh, 1, "concat")[0]
    if not cfg.get("return_state"):
        return [out]
    return [out] + [_merge_dirs(ctx, s, 1, "concat")[0] for s in results[1:]]


def bidirectional(ctx: Context, layer: Layer, xs: list[Value]) -> list[Value]:
    inner = layer.get("layer", {})
    cls, cfg = inner.get("class_name"), inner.get("config", {})
    if cls not in _KINDS:
        raise ctx.error(f"Bidirectional of a {cls} is not supported (SimpleRNN, GRU, LSTM)")
    _check(ctx, cfg)
    back = layer.get("backward_layer")
    if cfg.get("go_backwards") or cfg.get("return_state") or \
            (back and (back.get("class_name") != cls or back.get("config", {}).get("units") != cfg.get("units"))):
        raise ctx.error("only a Bidirectional of one layer kind, forward first, without return_state, "
                        "is supported")
    ws = ctx.weights()
    half = len(ws) // 2
    results = _run(ctx, cls, cfg, xs[0], "bidirectional", [ws[:half], ws[half:]])
    mode = layer.get("merge_mode", "concat")
    if cfg.get("return_sequences"):
        return _merge_dirs(ctx, results[0], 2, mode)
    return _merge_dirs(ctx, results[1], 1, mode)


CONVERTERS = {"SimpleRNN": recurrent, "GRU": recurrent, "LSTM": recurrent, "Bidirectional": bidirectional}
