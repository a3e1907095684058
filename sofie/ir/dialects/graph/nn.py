"""Neural-network ops: dense, convolution, pooling, normalization, softmax.

Gemm, MatMul and Conv carry an `activation` epilogue (a unary elementwise op, e.g. "leaky_relu",
with its float attributes as `activation_params`); Conv also takes an optional residual `Z`
added before the activation. Both come from fusion.
"""

from __future__ import annotations

import numpy as np

from sofie.errors import SofieError
from sofie.ir.core import Operation
from sofie.ir.dialects.graph.elementwise import ACTIVATIONS, activation_body
from sofie.ir.dialects.scalar import evaluate
from sofie.ir.registry import INPLACE, PURE, VIEW, Attr, OpDef, register
from sofie.ir.types import Dim, TensorType, broadcast_shapes, fmt_shape

EPILOGUE = {"activation": Attr("str", ""), "activation_params": Attr("floats", [])}


def _check_activation(op: Operation) -> None:
    act = op.attr("activation")
    if act and act not in ACTIVATIONS:
        raise SofieError(f"{op.describe()}: unknown activation '{act}' (known: {', '.join(ACTIVATIONS)})")


def apply_activation(op: Operation, y: np.ndarray) -> np.ndarray:
    """The fused activation, evaluated from the same scalar body the kernel epilogue runs."""
    act = op.attr("activation")
    if not act:
        return y
    return evaluate(activation_body(act, list(op.attr("activation_params"))), [y]).astype(y.dtype)


def _same_dtype(op: Operation, *types: TensorType | None) -> str:
    dts = {t.dtype for t in types if t is not None}
    if len(dts) != 1:
        raise SofieError(f"{op.describe()}: operand element types differ: {sorted(dts)}")
    return dts.pop()


@register
class Gemm(OpDef):
    name = "graph.gemm"
    onnx = "Gemm"
    operands = "A B C?"
    attrs = {"alpha": Attr("float", 1.0), "beta": Attr("float", 1.0),
             "transA": Attr("int", 0), "transB": Attr("int", 0), **EPILOGUE}
    doc = "Y = act(alpha * op(A) @ op(B) + beta * C)"

    def shape(self, op, a, b, c):
        dt = _same_dtype(op, a, b, c)
        if a.rank != 2 or b.rank != 2:
            raise SofieError(f"{op.describe()}: Gemm needs 2-D A and B, got {fmt_shape(a.shape)} "
                             f"and {fmt_shape(b.shape)}")
        m, k = a.shape[::-1] if op.attr("transA") else a.shape
        k2, n = b.shape[::-1] if op.attr("transB") else b.shape
        if k != k2:
            raise SofieError(f"{op.describe()}: inner dimensions differ: A gives K={k}, B gives K={k2}")
        if c is not None and broadcast_shapes(c.shape, (m, n)) != (m, n):
            raise SofieError(f"{op.describe()}: C {fmt_shape(c.shape)} does not broadcast to [{m}, {n}]")
        _check_activation(op)
        return TensorType(dt, (m, n))

    def reference(self, op, a, b, c):
        a = a.T if op.attr("transA") else a
        b = b.T if op.attr("transB") else b
        y = op.attr("alpha") * (a @ b)
        if c is not None:
            y = y + op.attr("beta") * c
        return apply_activation(op, y.astype(a.dtype))


def matmul_shape(a: tuple[Dim, ...], b: tuple[Dim, ...], where: str) -> tuple[Dim, ...]:
    if not a or not b:
        raise SofieError(f"{where}: MatMul operands must have rank >= 1")
    a2 = (1,) + a if len(a) == 1 else a
    b2 = b + (1,) if len(b) == 1 else b
    if a2[-1] != b2[-2]:
        raise SofieError(f"{where}: inner dimensions differ: {fmt_shape(a)} @ {fmt_shape(b)}")
    out = broadcast_shapes(a2[:-2], b2[:-2]) + (a2[-2], b2[-1])
    if len(a) == 1:
        out = out[:-2] + out[-1:]
    if len(b) == 1:
        out = out[:-1]
    return out


@register
class MatMul(OpDef):
    name = "graph.matmul"
    onnx = "MatMul"
    operands = "A B"
    attrs = dict(EPILOGUE)
    doc = "numpy.matmul semantics, with an activation epilogue"

    def shape(self, op, a, b):
        _check_activation(op)
        return TensorType(_same_dtype(op, a, b), matmul_shape(a.shape, b.shape, op.describe()))

    def reference(self, op, a, b):
        return apply_activation(op, np.matmul(a, b).astype(a.dtype))


@register
class Det(OpDef):
    name = "graph.det"
    onnx = "Det"
    operands = "X"
    doc = "the determinant of each square matrix in the last two axes"

    def shape(self, op, x):
        if x.rank < 2 or not isinstance(x.shape[-1], int) or x.shape[-1] != x.shape[-2]:
            raise SofieError(f"{op.describe()}: X {fmt_shape(x.shape)} must end in a static square matrix")
        return x.with_shape(x.shape[:-2])

    def reference(self, op, x):
        return np.asarray(np.linalg.det(x.astype(np.float64))).astype(x.dtype)


# ---- convolution and pooling geometry ------------------------------------------------------

def window_geometry(op: Operation, spatial: tuple[Dim, ...], kernel: list[int],
                    ceil_mode: bool = False) -> tuple[list[int], list[int], list[int], list[Dim]]:
    """(pads [begin..., end...], strides, dilations, output dims) with ONNX auto_pad rules."""
    nd = len(spatial)
    strides = op.attr("strides") or [1] * nd
    dilations = (op.attr("dilations") if "dilations" in op.opdef.attrs else None) or [1] * nd
    pads = op.attr("pads") or [0] * (2 * nd)
    auto_pad = op.attr("auto_pad")
    if len(strides) != nd or len(dilations) != nd or len(pads) != 2 * nd or len(kernel) != nd:
        raise SofieError(f"{op.describe()}: strides/dilations/pads/kernel_shape do not match "
                         f"{nd} spatial dims")
    if min(strides) < 1 or min(dilations) < 1 or min(kernel) < 1 or min(pads) < 0:
        raise SofieError(f"{op.describe()}: strides {strides}, dilations {dilations} and kernel {kernel} "
                         f"must be >= 1, pads {pads} >= 0")
    if auto_pad not in ("NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER"):
        raise SofieError(f"{op.describe()}: unknown auto_pad '{auto_pad}'")
    out: list[Dim] = []
    for i, size in enumerate(spatial):
        if not isinstance(size, int):
            raise SofieError(f"{op.describe()}: spatial dim {size} must be static")
        eff = dilations[i] * (kernel[i] - 1) + 1
        if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            o = -(-size // strides[i])
            total = max(0, (o - 1) * strides[i] + eff - size)
            small, big = total // 2, total - total // 2
            pads[i], pads[i + nd] = (small, big) if auto_pad == "SAME_UPPER" else (big, small)
        elif auto_pad == "VALID":
            pads[i] = pads[i + nd] = 0
        span = size + pads[i] + pads[i + nd] - eff
        if span < 0:
            raise SofieError(f"{op.describe()}: kernel {kernel} larger than padded input {size}")
        o = (-(-span // strides[i]) if ceil_mode else span // strides[i]) + 1
        if ceil_mode and (o - 1) * strides[i] >= size + pads[i]:
            o -= 1  # the last window would start in the end padding only
        out.append(o)
    return list(pads), list(strides), list(dilations), out


def _windows(x: np.ndarray, kernel, pads, strides, dilations, out, fill: float) -> np.ndarray:
    """[N, C, *out, *kernel] view of the padded input (numpy reference helper, 1-3 spatial dims)."""
    nd = len(kernel)
    extra = [max(0, (out[i] - 1) * strides[i] + dilations[i] * (kernel[i] - 1) + 1
                 - (x.shape[2 + i] + pads[i] + pads[i + nd])) for i in range(nd)]
    width = [(0, 0), (0, 0)] + [(pads[i], pads[i + nd] + extra[i]) for i in range(nd)]
    xp = np.pad(x, width, constant_values=fill)
    cols = np.empty(x.shape[:2] + tuple(out) + tuple(kernel), x.dtype)
    for taps in np.ndindex(*kernel):
        window = tuple(slice(t * d, t * d + s * o, s) for t, d, s, o in zip(taps, dilations, strides, out))
        cols[(Ellipsis, *taps)] = xp[(slice(None), slice(None), *window)]
    return cols


def _check_spatial(op: Operation, x: TensorType, what: str) -> None:
    if not 3 <= x.rank <= 5:
        raise SofieError(f"{op.describe()}: {what} takes 1 to 3 spatial dims, X is {fmt_shape(x.shape)}")


CONV_ATTRS = {"auto_pad": Attr("str", "NOTSET"), "dilations": Attr("ints", []),
              "group": Attr("int", 1), "kernel_shape": Attr("ints", []),
              "pads": Attr("ints", []), "strides": Attr("ints", [])}


@register
class Conv(OpDef):
    name = "graph.conv"
    onnx = "Conv"
    operands = "X W B? Z?"
    # exact=1: only algorithms whose every partial sum is a plain sum of products (no Winograd,
    # whose transforms round), for integer convs computed in float (QLinearConv, ConvInteger)
    attrs = {**CONV_ATTRS, **EPILOGUE, "exact": Attr("int", 0)}
    doc = "1-D, 2-D or 3-D convolution; Z (from fusion) is a residual added before the activation"

    def geometry(self, op: Operation):
        x, w = op.X.type, op.W.type
        kernel = op.attr("kernel_shape") or [d for d in w.shape[2:]]
        return window_geometry(op, x.shape[2:], list(kernel))

    def shape(self, op, x, w, b, z):
        dt = _same_dtype(op, x, w, b, z)
        _check_spatial(op, x, "Conv")
        if w.rank != x.rank:
            raise SofieError(f"{op.describe()}: W {fmt_shape(w.shape)} and X {fmt_shape(x.shape)} differ in rank")
        if not w.is_static:
            raise SofieError(f"{op.describe()}: W {fmt_shape(w.shape)} must have a static shape")
        g = op.attr("group")
        if g < 1:
            raise SofieError(f"{op.describe()}: group must be >= 1, got {g}")
        c, m = x.shape[1], w.shape[0]
        if not isinstance(c, int) or c % g or w.shape[1] * g != c or m % g:
            raise SofieError(f"{op.describe()}: X has {c} channels, W {fmt_shape(w.shape)} and "
                             f"group={g} do not agree (expected W[1] * group == C)")
        if op.attr("kernel_shape") and list(op.attr("kernel_shape")) != list(w.shape[2:]):
            raise SofieError(f"{op.describe()}: kernel_shape {op.attr('kernel_shape')} differs "
                             f"from W {fmt_shape(w.shape)}")
        if b is not None and b.shape != (m,):
            raise SofieError(f"{op.describe()}: bias shape {fmt_shape(b.shape)}, expected [{m}]")
        _, _, _, out = self.geometry(op)
        y = TensorType(dt, (x.shape[0], m, *out))
        if z is not None and z.shape != y.shape:
            raise SofieError(f"{op.describe()}: residual {fmt_shape(z.shape)} differs from output "
                             f"{fmt_shape(y.shape)}")
        _check_activation(op)
        return y

    def reference(self, op, x, w, b, z):
        pads, strides, dil, out = self.geometry(op)
        g = op.attr("group")
        cols = _windows(x, list(w.shape[2:]), pads, strides, dil, out, 0.0)
        n, c = x.shape[:2]
        m, cg = w.shape[0], c // g
        nd = x.ndim - 2
        ys = []
        for gi in range(g):
            cg_cols = cols[:, gi * cg:(gi + 1) * cg]                      # N, cg, *out, *kernel
            wg = w[gi * (m // g):(gi + 1) * (m // g)]                     # mg, cg, *kernel
            ys.append(np.tensordot(cg_cols, wg, axes=([1, *range(2 + nd, 2 + 2 * nd)], list(range(1, 2 + nd)))))
        y = np.moveaxis(np.concatenate(ys, axis=-1), -1, 1)               # N, M, *out
        if b is not None:
            y = y + b.reshape((1, -1) + (1,) * nd)
        if z is not None:
            y = y + z
        return apply_activation(op, y.astype(x.dtype))


def transpose_geometry(op: Operation, spatial: tuple[Dim, ...], kernel: list[int]
                       ) -> tuple[list[int], list[int], list[int], list[int]]:
    """ConvTranspose (pads [begin..., end...], strides, dilations, output dims), as the ONNX
    reference computes them: output_shape, when given, sets the output; auto_pad SAME spreads
    the padding that takes the input times the strides (or output_shape) to the output."""
    nd = len(spatial)
    strides = op.attr("strides") or [1] * nd
    dil = op.attr("dilations") or [1] * nd
    out_pad = op.attr("output_padding") or [0] * nd
    auto_pad = op.attr("auto_pad")
    if any(not isinstance(d, int) for d in spatial):
        raise SofieError(f"{op.describe()}: spatial dims {fmt_shape(spatial)} must be static")
    if len(strides) != nd or len(dil) != nd or len(out_pad) != nd or len(kernel) != nd:
        raise SofieError(f"{op.describe()}: strides/dilations/output_padding/kernel_shape do not match "
                         f"{nd} spatial dims")
    if min(strides) < 1 or min(dil) < 1 or min(out_pad) < 0:
        raise SofieError(f"{op.describe()}: strides {strides} and dilations {dil} must be >= 1, "
                         f"output_padding {out_pad} >= 0")
    if auto_pad not in ("NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER"):
        raise SofieError(f"{op.describe()}: unknown auto_pad '{auto_pad}'")
    full = [strides[i] * (spatial[i] - 1) + out_pad[i] + dil[i] * (kernel[i] - 1) + 1 for i in range(nd)]
    pads = list(op.attr("pads")) or [0] * (2 * nd)
    if len(pads) != 2 * nd or min(pads) < 0:
        raise SofieError(f"{op.describe()}: pads {pads} must be {2 * nd} values >= 0")
    out = list(op.attr("output_shape"))
    if out and len(out) != nd:
        raise SofieError(f"{op.describe()}: output_shape {out} does not match {nd} spatial dims")
    if auto_pad in ("SAME_UPPER", "SAME_LOWER") and not op.attr("pads"):
        out = out or [spatial[i] * strides[i] for i in range(nd)]
        for i in range(nd):
            total = full[i] - out[i]
            small, big = total // 2, total - total // 2
            pads[i], pads[i + nd] = (small, big) if auto_pad == "SAME_UPPER" else (big, small)
    elif auto_pad == "VALID":
        pads = [0] * (2 * nd)
    out = out or [full[i] - pads[i] - pads[i + nd] for i in range(nd)]
    if min(out) < 1:
        raise SofieError(f"{op.describe()}: output spatial dims {out} must be >= 1")
    return pads, list(strides), list(dil), out


@register
class ConvTranspose(OpDef):
    name = "graph.conv_transpose"
    onnx = "ConvTranspose"
    operands = "X W B?"
    attrs = {**CONV_ATTRS, "output_padding": Attr("ints", []), "output_shape": Attr("ints", [])}
    doc = "1-D, 2-D or 3-D transposed convolution; W is [C, M / group, *kernel]"

    def geometry(self, op: Operation):
        return transpose_geometry(op, op.X.type.shape[2:], list(op.W.type.shape[2:]))

    def shape(self, op, x, w, b):
        dt = _same_dtype(op, x, w, b)
        _check_spatial(op, x, "ConvTranspose")
        if w.rank != x.rank or not w.is_static:
            raise SofieError(f"{op.describe()}: W {fmt_shape(w.shape)} must be static and of X's rank "
                             f"({fmt_shape(x.shape)})")
        g = op.attr("group")
        if g < 1 or x.shape[1] != w.shape[0] or w.shape[0] % g:
            raise SofieError(f"{op.describe()}: X has {x.shape[1]} channels, W {fmt_shape(w.shape)} and "
                             f"group={g} do not agree (expected W[0] == C, divisible by group)")
        if op.attr("kernel_shape") and list(op.attr("kernel_shape")) != list(w.shape[2:]):
            raise SofieError(f"{op.describe()}: kernel_shape {op.attr('kernel_shape')} differs "
                             f"from W {fmt_shape(w.shape)}")
        m = w.shape[1] * g
        if b is not None and b.shape != (m,):
            raise SofieError(f"{op.describe()}: bias shape {fmt_shape(b.shape)}, expected [{m}]")
        _, _, _, out = self.geometry(op)
        return TensorType(dt, (x.shape[0], m, *out))

    def reference(self, op, x, w, b):
        pads, strides, dil, out = self.geometry(op)
        nd, g = x.ndim - 2, op.attr("group")
        cg, mg = x.shape[1] // g, w.shape[1]
        kernel = w.shape[2:]
        # scatter every tap into a canvas that starts pads-begin before the output
        canvas = [max(out[i] + pads[i], (x.shape[2 + i] - 1) * strides[i] + (kernel[i] - 1) * dil[i] + 1)
                  for i in range(nd)]
        y = np.zeros((x.shape[0], mg * g, *canvas), np.float64)
        for gi in range(g):
            xg = x[:, gi * cg:(gi + 1) * cg].astype(np.float64)
            wg = w[gi * cg:(gi + 1) * cg].astype(np.float64)              # cg, mg, *kernel
            for taps in np.ndindex(*kernel):
                contrib = np.tensordot(xg, wg[(slice(None), slice(None), *taps)], axes=([1], [0]))
                where = tuple(slice(t * d, t * d + s * (n - 1) + 1, s)
                              for t, d, s, n in zip(taps, dil, strides, x.shape[2:]))
                y[(slice(None), slice(gi * mg, (gi + 1) * mg), *where)] += np.moveaxis(contrib, -1, 1)
        y = y[(slice(None), slice(None), *(slice(pads[i], pads[i] + out[i]) for i in range(nd)))]
        if b is not None:
            y = y + b.reshape((1, -1) + (1,) * nd)
        return y.astype(x.dtype)


class Pool(OpDef):
    """MaxPool, AveragePool and LpPool over 1-3 spatial dims. Windows are clipped to the padded
    input: cells past the end padding (ceil_mode) never count."""

    operands = "X"
    kind = ""

    def geometry(self, op: Operation):
        x = op.X.type
        return window_geometry(op, x.shape[2:], list(op.attr("kernel_shape")), bool(op.attr("ceil_mode")))

    def shape(self, op, x):
        _check_spatial(op, x, op.opdef.onnx)
        if len(op.attr("kernel_shape")) != x.rank - 2:
            raise SofieError(f"{op.describe()}: kernel_shape {op.attr('kernel_shape')} does not match "
                             f"X {fmt_shape(x.shape)}")
        _, _, _, out = self.geometry(op)
        return x.with_shape((*x.shape[:2], *out))

    def reference(self, op, x):
        pads, strides, dil, out = self.geometry(op)
        k = list(op.attr("kernel_shape"))
        nd = len(k)
        taps = tuple(range(-nd, 0))
        if self.kind == "max":
            lowest = -np.inf if x.dtype.kind == "f" else np.iinfo(x.dtype).min
            return _windows(x, k, pads, strides, dil, out, lowest).max(axis=taps).astype(x.dtype)
        if self.kind == "lp":
            p = op.attr("p")
            total = (np.abs(_windows(x, k, pads, strides, dil, out, 0.0)) ** p).sum(axis=taps)
            return (total ** (1.0 / p)).astype(x.dtype)
        # 1 on the cells a window may count, 0 elsewhere (the padding unless count_include_pad)
        ones = np.ones((1, 1) + x.shape[2:], x.dtype)
        if op.attr("count_include_pad"):
            ones = np.pad(ones, [(0, 0), (0, 0)] + [(pads[i], pads[i + nd]) for i in range(nd)],
                          constant_values=1.0)
            counted = _windows(ones, k, [0] * 2 * nd, strides, dil, out, 0.0)
        else:
            counted = _windows(ones, k, pads, strides, dil, out, 0.0)
        total = _windows(x, k, pads, strides, dil, out, 0.0).sum(axis=taps)
        return (total / counted.sum(axis=taps)).astype(x.dtype)


POOL_ATTRS = {"auto_pad": Attr("str", "NOTSET"), "kernel_shape": Attr("ints"),
              "pads": Attr("ints", []), "strides": Attr("ints", []), "ceil_mode": Attr("int", 0),
              "dilations": Attr("ints", [])}


@register
class MaxPool(Pool):
    name = "graph.max_pool"
    onnx = "MaxPool"
    kind = "max"
    attrs = {**POOL_ATTRS, "storage_order": Attr("int", 0), "indices": Attr("int", 0)}
    doc = ("indices=1 (the ONNX node names its Indices output): a second, i64 result, the flat index "
           "of each maximum in X; storage_order 1 orders the spatial dims column-major")

    def shape(self, op, x):
        y = super().shape(op, x)
        if op.attr("storage_order") not in (0, 1):
            raise SofieError(f"{op.describe()}: storage_order must be 0 or 1, got {op.attr('storage_order')}")
        return [y, TensorType("i64", y.shape)] if op.attr("indices") else y

    def reference(self, op, x):
        y = super().reference(op, x)
        if not op.attr("indices"):
            return y
        pads, strides, dil, out = self.geometry(op)
        k = list(op.attr("kernel_shape"))
        spatial = x.shape[2:]
        size = int(np.prod(spatial))
        # each cell's index within its image plane, row- or column-major
        pos = np.arange(size).reshape(spatial[::-1]).T if op.attr("storage_order") else np.arange(size).reshape(spatial)
        pos = np.broadcast_to(pos, x.shape)
        values = _windows(x.astype(np.float64), k, pads, strides, dil, out, -np.inf)
        where = _windows(pos.astype(np.float64), k, pads, strides, dil, out, -1.0)
        flat = values.reshape(values.shape[:2 + len(k)] + (-1,))
        first = np.argmax(flat, axis=-1)[..., None]  # the first largest, in window order
        at = np.take_along_axis(where.reshape(flat.shape), first, axis=-1)[..., 0].astype(np.int64)
        base = np.arange(x.shape[0] * x.shape[1]).reshape(x.shape[:2] + (1,) * len(k)) * size
        return [y, at + base]


@register
class AveragePool(Pool):
    name = "graph.average_pool"
    onnx = "AveragePool"
    kind = "avg"
    attrs = {**POOL_ATTRS, "count_include_pad": Attr("int", 0)}


@register
class LpPool(Pool):
    name = "graph.lp_pool"
    onnx = "LpPool"
    kind = "lp"
    attrs = {**POOL_ATTRS, "p": Attr("int", 2)}
    doc = "(sum over the window of |x|^p)^(1/p)"

    def verify(self, op):
        if op.attr("p") < 1:
            raise SofieError(f"{op.describe()}: p must be >= 1, got {op.attr('p')}")


class GlobalPool(OpDef):
    """Pooling over all spatial dims (any rank >= 3)."""

    operands = "X"

    def shape(self, op, x):
        if x.rank < 3:
            raise SofieError(f"{op.describe()}: needs rank >= 3, got {fmt_shape(x.shape)}")
        return x.with_shape(x.shape[:2] + (1,) * (x.rank - 2))


@register
class GlobalAveragePool(GlobalPool):
    name = "graph.global_average_pool"
    onnx = "GlobalAveragePool"

    def reference(self, op, x):
        return x.mean(axis=tuple(range(2, x.ndim)), keepdims=True).astype(x.dtype)


@register
class GlobalMaxPool(GlobalPool):
    name = "graph.global_max_pool"
    onnx = "GlobalMaxPool"

    def reference(self, op, x):
        return x.max(axis=tuple(range(2, x.ndim)), keepdims=True)


@register
class GlobalLpPool(GlobalPool):
    name = "graph.global_lp_pool"
    onnx = "GlobalLpPool"
    attrs = {"p": Attr("int", 2)}

    def reference(self, op, x):
        p = op.attr("p")
        s = (np.abs(x.astype(np.float64)) ** p).sum(axis=tuple(range(2, x.ndim)), keepdims=True)
        return (s ** (1.0 / p)).astype(x.dtype)


@register
class BatchNormalization(OpDef):
    name = "graph.batch_normalization"
    onnx = "BatchNormalization"
    operands = "X scale B mean var"
    attrs = {"epsilon": Attr("float", 1e-5)}
    traits = frozenset({PURE, INPLACE})
    doc = "inference form: (X - mean) / sqrt(var + epsilon) * scale + B, per channel (axis 1)"

    def shape(self, op, x, scale, b, mean, var):
        c = x.shape[1] if x.rank >= 2 else None
        for name, t in (("scale", scale), ("B", b), ("mean", mean), ("var", var)):
            if t.shape != (c,):
                raise SofieError(f"{op.describe()}: {name} has shape {fmt_shape(t.shape)}, expected [{c}]")
        return x

    def reference(self, op, x, scale, b, mean, var):
        shape = (1, -1) + (1,) * (x.ndim - 2)
        inv = scale / np.sqrt(var + np.float32(op.attr("epsilon")))
        return ((x - mean.reshape(shape)) * inv.reshape(shape) + b.reshape(shape)).astype(x.dtype)


@register
class Softmax(OpDef):
    name = "graph.softmax"
    onnx = "Softmax"
    operands = "X"
    attrs = {"axis": Attr("int", -1)}
    traits = frozenset({PURE, INPLACE})

    def shape(self, op, x):
        if not -x.rank <= op.attr("axis") < x.rank:
            raise SofieError(f"{op.describe()}: axis {op.attr('axis')} out of range for rank {x.rank}")
        return x

    def reference(self, op, x):
        e = np.exp(x - x.max(axis=op.attr("axis"), keepdims=True))
        return (e / e.sum(axis=op.attr("axis"), keepdims=True)).astype(x.dtype)


@register
class Dropout(OpDef):
    name = "graph.dropout"
    onnx = "Dropout"
    operands = "X ratio_input?:const training_mode?:const"
    attrs = {"seed": Attr("int", 0), "ratio": Attr("float", 0.5)}
    traits = frozenset({PURE, VIEW})
    doc = "inference: the identity"

    def shape(self, op, x, ratio, training):
        return x

    def reference(self, op, x, ratio, training):
        return x
