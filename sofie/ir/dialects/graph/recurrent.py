"""Recurrent layers: ONNX RNN, GRU and LSTM.

Shapes (ONNX): X [T, N, I] (layout 0) or [N, T, I] (layout 1); W [D, G*H, I], R [D, G*H, H],
B [D, 2*G*H] (Wb then Rb), sequence_lens [N] i32, initial_h / initial_c [D, N, H] (layout 1:
[N, D, H]), P [D, 3*H] (LSTM peepholes i, o, f). Results Y [T, D, N, H] (layout 1: [N, T, D, H]),
Y_h and Y_c shaped like initial_h. G is the number of gates: 1 (RNN), 3 (GRU: z, r, h),
4 (LSTM: i, o, f, c); D is 2 for direction="bidirectional", else 1.

The gate nonlinearities are scalar bodies (`sofie.ir.dialects.scalar`): the elementwise table's
where ONNX names an op of it, the two others (Affine, ScaledTanh) below.
Their alpha / beta come from activation_alpha / activation_beta, consumed in order by the
functions that take them, with onnxruntime's defaults when the lists run out.
"""

from __future__ import annotations

import numpy as np

from sofie.errors import SofieError
from sofie.ir.core import Operation
from sofie.ir.dialects.graph.elementwise import ACTIVATIONS, instantiate
from sofie.ir.dialects.scalar import Expr, evaluate
from sofie.ir.registry import PURE, Attr, OpDef, register
from sofie.ir.types import FLOATS, TensorType, fmt_shape

# ONNX activation name (lower case) -> (scalar body over x, ((param, default), ...))
_OWN = {
    "affine": ("add(mul(alpha, x), beta)", (("alpha", 1.0), ("beta", 0.0))),
    "scaledtanh": ("mul(alpha, tanh(mul(beta, x)))", (("alpha", 1.0), ("beta", 1.0))),
}
_FROM_TABLE = {"relu": "relu", "tanh": "tanh", "sigmoid": "sigmoid", "leakyrelu": "leaky_relu",
               "hardsigmoid": "hard_sigmoid", "elu": "elu", "softsign": "softsign", "softplus": "softplus",
               "thresholdedrelu": "thresholded_relu"}
RECURRENT_ACTIVATIONS = sorted(_OWN) + sorted(_FROM_TABLE)


def _activation(name: str, alphas: list[float], betas: list[float], where: str) -> Expr:
    """The body of one activation; pops the alpha / beta it takes off the front of the lists."""
    key = name.lower()
    if key in _OWN:
        body, params = _OWN[key]
    elif key in _FROM_TABLE:
        body, params = ACTIVATIONS[_FROM_TABLE[key]]
    else:
        raise SofieError(f"{where}: unknown activation '{name}' (known: {', '.join(RECURRENT_ACTIVATIONS)})")
    values = {}
    for k, default in params:
        source = alphas if k == "alpha" else betas if k == "beta" else []
        values[k] = source.pop(0) if source else default
    return instantiate(body, {"x": "x0"}, values)


class Recurrent(OpDef):
    """Shared declaration of RNN, GRU and LSTM."""

    gates = 1
    default_activations: tuple[str, ...] = ()
    traits = frozenset({PURE})
    common_attrs = {"hidden_size": Attr("int"), "direction": Attr("str", "forward"), "layout": Attr("int", 0),
                    "activations": Attr("strs", []), "activation_alpha": Attr("floats", []),
                    "activation_beta": Attr("floats", []), "clip": Attr("float", 0.0)}

    def directions(self, op: Operation) -> int:
        return 2 if op.attr("direction") == "bidirectional" else 1

    def activation_bodies(self, op: Operation) -> list[list[Expr]]:
        """Per direction, the scalar body over x0 of each activation (f, g, h order)."""
        names = list(op.attr("activations")) or list(self.default_activations)
        count, d = len(self.default_activations), self.directions(op)
        if len(names) == count and d == 2:
            names = names * 2  # one list given for both directions
        if len(names) != count * d:
            raise SofieError(f"{op.describe()}: {len(names)} activations, expected {count} per direction "
                             f"({count * d} in all)")
        alphas, betas = list(op.attr("activation_alpha")), list(op.attr("activation_beta"))
        bodies = [_activation(n, alphas, betas, op.describe()) for n in names]
        return [bodies[k * count:(k + 1) * count] for k in range(d)]

    def state_shape(self, op: Operation, n, d: int) -> tuple:
        return (n, d, op.attr("hidden_size")) if op.attr("layout") else (d, n, op.attr("hidden_size"))

    def check(self, op: Operation, x: TensorType, w: TensorType, r: TensorType, b, lens, h0,
              extra: list[tuple[str, TensorType | None, tuple]]) -> list[TensorType]:
        where = op.describe()
        if op.attr("direction") not in ("forward", "reverse", "bidirectional"):
            raise SofieError(f"{where}: direction must be forward, reverse or bidirectional, "
                             f"got '{op.attr('direction')}'")
        if op.attr("layout") not in (0, 1):
            raise SofieError(f"{where}: layout must be 0 or 1, got {op.attr('layout')}")
        if x.dtype not in FLOATS:
            raise SofieError(f"{where}: X is {x.dtype}; a recurrent layer runs on {', '.join(FLOATS)}")
        if x.rank != 3:
            raise SofieError(f"{where}: X must be 3-D, got {fmt_shape(x.shape)}")
        hidden, d, g = op.attr("hidden_size"), self.directions(op), self.gates
        if hidden < 1:
            raise SofieError(f"{where}: hidden_size must be >= 1, got {hidden}")
        t, n = x.shape[:2][::-1] if op.attr("layout") else x.shape[:2]
        inp = x.shape[2]
        if not isinstance(inp, int):
            raise SofieError(f"{where}: the input size (X axis 2) must be static, got {inp}")
        expected = [("W", w, (d, g * hidden, inp)), ("R", r, (d, g * hidden, hidden)),
                    ("B", b, (d, 2 * g * hidden)), ("sequence_lens", lens, (n,)),
                    ("initial_h", h0, self.state_shape(op, n, d)), *extra]
        for name, ty, shape in expected:
            if ty is None:
                continue
            want = "i32" if name == "sequence_lens" else x.dtype
            if ty.dtype != want:
                raise SofieError(f"{where}: {name} is {ty.dtype}, expected {want}")
            if tuple(ty.shape) != tuple(shape):
                raise SofieError(f"{where}: {name} has shape {fmt_shape(ty.shape)}, expected {fmt_shape(shape)} "
                                 f"(hidden_size={hidden}, {d} direction(s))")
        self.activation_bodies(op)
        y = (n, t, d, hidden) if op.attr("layout") else (t, d, n, hidden)
        state = TensorType(x.dtype, self.state_shape(op, n, d))
        return [TensorType(x.dtype, y)] + [state] * (self.results - 1)

    # ---- numpy reference ------------------------------------------------------------------
    def run(self, op: Operation, x, w, r, b, lens, h0, c0=None, p=None) -> list[np.ndarray]:
        """Y, Y_h (, Y_c) by the ONNX equations, one batch row at a time for sequence_lens."""
        layout, hidden, d = op.attr("layout"), op.attr("hidden_size"), self.directions(op)
        dt = x.dtype
        if layout:
            x = x.transpose(1, 0, 2)
            h0 = None if h0 is None else h0.transpose(1, 0, 2)
            c0 = None if c0 is None else c0.transpose(1, 0, 2)
        t_len, n = x.shape[:2]
        gh = self.gates * hidden
        b = np.zeros((d, 2 * gh), dt) if b is None else b
        lens = np.full(n, t_len, np.int64) if lens is None else lens.astype(np.int64)
        y = np.zeros((t_len, d, n, hidden), dt)
        y_h = np.zeros((d, n, hidden), dt) if h0 is None else h0.copy()
        y_c = np.zeros((d, n, hidden), dt) if c0 is None else c0.copy()
        bodies = self.activation_bodies(op)
        for k in range(d):
            reverse = op.attr("direction") == "reverse" or k == 1
            acts = [lambda v, e=e: evaluate(e, [v]).astype(dt) for e in bodies[k]]
            for row in range(n):
                steps = range(lens[row] - 1, -1, -1) if reverse else range(lens[row])
                h, c = y_h[k, row], y_c[k, row]
                for t in steps:
                    h, c = self.cell(op, acts, x[t, row], w[k], r[k], b[k, :gh], b[k, gh:], h, c,
                                     None if p is None else p[k])
                    y[t, k, row] = h
                y_h[k, row], y_c[k, row] = h, c
        if layout:
            y, y_h, y_c = y.transpose(2, 0, 1, 3), y_h.transpose(1, 0, 2), y_c.transpose(1, 0, 2)
        out = [np.ascontiguousarray(a, dtype=dt) for a in (y, y_h, y_c)]
        return out[:self.results]

    def clipped(self, op: Operation, v: np.ndarray) -> np.ndarray:
        c = op.attr("clip")
        return np.clip(v, -c, c) if c > 0 else v

    def cell(self, op, acts, x, w, r, wb, rb, h, c, p):
        raise NotImplementedError


@register
class RNN(Recurrent):
    name = "graph.rnn"
    onnx = "RNN"
    operands = "X W R B? sequence_lens? initial_h?"
    attrs = dict(Recurrent.common_attrs)
    results = 2
    gates = 1
    default_activations = ("Tanh",)
    doc = "H = f(X W^T + H R^T + Wb + Rb)"

    def shape(self, op, x, w, r, b, lens, h0):
        return self.check(op, x, w, r, b, lens, h0, [])

    def reference(self, op, x, w, r, b, lens, h0):
        return self.run(op, x, w, r, b, lens, h0)

    def cell(self, op, acts, x, w, r, wb, rb, h, c, p):
        return acts[0](self.clipped(op, x @ w.T + h @ r.T + wb + rb)), c


@register
class GRU(Recurrent):
    name = "graph.gru"
    onnx = "GRU"
    operands = "X W R B? sequence_lens? initial_h?"
    attrs = {**Recurrent.common_attrs, "linear_before_reset": Attr("int", 0)}
    results = 2
    gates = 3
    default_activations = ("Sigmoid", "Tanh")
    doc = "gates z, r, h; linear_before_reset applies r after the recurrent product"

    def shape(self, op, x, w, r, b, lens, h0):
        return self.check(op, x, w, r, b, lens, h0, [])

    def reference(self, op, x, w, r, b, lens, h0):
        return self.run(op, x, w, r, b, lens, h0)

    def cell(self, op, acts, x, w, r, wb, rb, h, c, p):
        f, g = acts
        hs = h.shape[0]
        xw, hr = x @ w.T + wb, h @ r[:2 * hs].T + rb[:2 * hs]
        z = f(self.clipped(op, xw[:hs] + hr[:hs]))
        rg = f(self.clipped(op, xw[hs:2 * hs] + hr[hs:]))
        if op.attr("linear_before_reset"):
            cand = xw[2 * hs:] + rg * (h @ r[2 * hs:].T + rb[2 * hs:])
        else:
            cand = xw[2 * hs:] + (rg * h) @ r[2 * hs:].T + rb[2 * hs:]
        return (1 - z) * g(self.clipped(op, cand)) + z * h, c


@register
class LSTM(Recurrent):
    name = "graph.lstm"
    onnx = "LSTM"
    operands = "X W R B? sequence_lens? initial_h? initial_c? P?"
    attrs = {**Recurrent.common_attrs, "input_forget": Attr("int", 0)}
    results = 3
    gates = 4
    default_activations = ("Sigmoid", "Tanh", "Tanh")
    doc = "gates i, o, f, c; peepholes P (i, o, f); input_forget couples f = 1 - i"

    def shape(self, op, x, w, r, b, lens, h0, c0, p):
        d, hidden = self.directions(op), op.attr("hidden_size")
        n = x.shape[0] if op.attr("layout") else x.shape[1]
        return self.check(op, x, w, r, b, lens, h0, [("initial_c", c0, self.state_shape(op, n, d)),
                                                     ("P", p, (d, 3 * hidden))])

    def reference(self, op, x, w, r, b, lens, h0, c0, p):
        return self.run(op, x, w, r, b, lens, h0, c0, p)

    def cell(self, op, acts, x, w, r, wb, rb, h, c, p):
        f, g, hf = acts
        hs = h.shape[0]
        pre = x @ w.T + h @ r.T + wb + rb
        pi, po, pf = (np.zeros(hs, x.dtype),) * 3 if p is None else (p[:hs], p[hs:2 * hs], p[2 * hs:])
        i = f(self.clipped(op, pre[:hs] + pi * c))
        fg = 1 - i if op.attr("input_forget") else f(self.clipped(op, pre[2 * hs:3 * hs] + pf * c))
        c = fg * c + i * g(self.clipped(op, pre[3 * hs:]))
        o = f(self.clipped(op, pre[hs:2 * hs] + po * c))
        return o * hf(c), c
