"""Ops that read or write through index tensors known only at run time (GatherElements,
GatherND, ScatterElements, ScatterND), ops over positions (Trilu, EyeLike, OneHot), and the ops
whose result shape is the data itself (Range, NonZero, Compress): those fold when their inputs are
constants and are refused otherwise, naming the node and why.

Indices may be negative (counted from the end). Out-of-range indices are a compile-time
SofieError when the indices are constants, and a run-time error (std::out_of_range naming the
node) otherwise: never a read outside the tensor.
"""

from __future__ import annotations

import numpy as np

from sofie.errors import SofieError
from sofie.ir.core import Operation
from sofie.ir.dialects.graph.shape import _axis, _known_numbers
from sofie.ir.folding import known_value
from sofie.ir.registry import Attr, OpDef, register
from sofie.ir.types import DTYPES, TensorType, fmt_shape

INDEX_TYPES = ("i32", "i64")
REDUCTIONS = ("none", "add", "mul", "max", "min")


def _index_type(op: Operation, t: TensorType) -> None:
    if t.dtype not in INDEX_TYPES:
        raise SofieError(f"{op.describe()}: indices are {t.dtype}, expected one of {', '.join(INDEX_TYPES)}")


def normalized(op: Operation, idx: np.ndarray, n: int, what: str = "index") -> np.ndarray:
    """Indices in [-n, n) made non-negative; others refused (a constant index is checked
    when the op folds or lowers, a run-time one by the kernel)."""
    bad = (idx < -n) | (idx >= n)
    if np.any(bad):
        raise SofieError(f"{op.describe()}: {what} {int(idx[bad].reshape(-1)[0])} out of range for an axis of "
                         f"size {n} (expected [-{n}, {n}))")
    return np.where(idx < 0, idx + n, idx).astype(np.int64)


def check_constant_indices(op: Operation, axis_sizes: list[int] | int) -> None:
    """Refuses, at compile time, constant indices that would read or write out of range."""
    idx = known_value(op.indices)
    if idx is None or idx.dtype == object:
        return
    if isinstance(axis_sizes, int):
        normalized(op, idx, axis_sizes)
        return
    for k, n in enumerate(axis_sizes):
        normalized(op, idx[..., k], n)


@register
class GatherElements(OpDef):
    name = "graph.gather_elements"
    onnx = "GatherElements"
    operands = "data indices"
    attrs = {"axis": Attr("int", 0)}

    def shape(self, op, x, idx):
        _index_type(op, idx)
        _axis(op, op.attr("axis"), x.rank)
        if idx.rank != x.rank:
            raise SofieError(f"{op.describe()}: indices {fmt_shape(idx.shape)} and data {fmt_shape(x.shape)} "
                             f"differ in rank")
        return x.with_shape(idx.shape)

    def reference(self, op, x, idx):
        axis = op.attr("axis") % x.ndim
        return np.take_along_axis(x, normalized(op, idx, x.shape[axis]), axis=axis)


@register
class GatherND(OpDef):
    name = "graph.gather_nd"
    onnx = "GatherND"
    operands = "data indices"
    attrs = {"batch_dims": Attr("int", 0)}

    def shape(self, op, x, idx):
        _index_type(op, idx)
        b = op.attr("batch_dims")
        if idx.rank < 1 or not isinstance(idx.shape[-1], int):
            raise SofieError(f"{op.describe()}: indices {fmt_shape(idx.shape)} need a static last axis")
        k = idx.shape[-1]
        if not 0 <= b < min(x.rank, idx.rank) or b + k > x.rank or x.shape[:b] != idx.shape[:b]:
            raise SofieError(f"{op.describe()}: data {fmt_shape(x.shape)}, indices {fmt_shape(idx.shape)} "
                             f"and batch_dims {b} do not fit together")
        return x.with_shape(idx.shape[:-1] + x.shape[b + k:])

    def reference(self, op, x, idx):
        b, k = op.attr("batch_dims"), idx.shape[-1]
        lead = x.shape[:b]
        xb = x.reshape((-1,) + x.shape[b:])
        ib = idx.reshape((xb.shape[0], -1, k))
        out = np.stack([xb[i][tuple(normalized(op, ib[i][:, j], x.shape[b + j]) for j in range(k))]
                        for i in range(xb.shape[0])])
        return out.reshape(lead + idx.shape[b:-1] + x.shape[b + k:])


def _reduce(reduction: str, old: np.ndarray, new: np.ndarray) -> np.ndarray:
    return {"none": lambda a, b: b, "add": np.add, "mul": np.multiply,
            "max": np.maximum, "min": np.minimum}[reduction](old, new)


class Scatter(OpDef):
    operands = "data indices updates"
    attrs = {"axis": Attr("int", 0), "reduction": Attr("str", "none")}

    def _common(self, op: Operation, x: TensorType, idx: TensorType, upd: TensorType) -> None:
        _index_type(op, idx)
        if op.attr("reduction") not in REDUCTIONS:
            raise SofieError(f"{op.describe()}: reduction '{op.attr('reduction')}' "
                             f"(supported: {', '.join(REDUCTIONS)})")
        if upd.dtype != x.dtype:
            raise SofieError(f"{op.describe()}: updates are {upd.dtype}, data is {x.dtype}")


@register
class ScatterElements(Scatter):
    name = "graph.scatter_elements"
    onnx = "ScatterElements"

    def shape(self, op, x, idx, upd):
        self._common(op, x, idx, upd)
        _axis(op, op.attr("axis"), x.rank)
        if idx.shape != upd.shape or idx.rank != x.rank:
            raise SofieError(f"{op.describe()}: indices {fmt_shape(idx.shape)}, updates {fmt_shape(upd.shape)} "
                             f"and data {fmt_shape(x.shape)} must have one rank, indices the updates' shape")
        return x

    def reference(self, op, x, idx, upd):
        axis = op.attr("axis") % x.ndim
        idx = normalized(op, idx, x.shape[axis])
        out = x.copy()
        for pos in np.ndindex(*idx.shape):
            at = pos[:axis] + (idx[pos],) + pos[axis + 1:]
            out[at] = _reduce(op.attr("reduction"), out[at], upd[pos])
        return out


@register
class ScatterLegacy(ScatterElements):
    """ONNX Scatter (opsets 9-10), ScatterElements under its old name."""

    name = "graph.scatter"
    onnx = "Scatter"
    attrs = {"axis": Attr("int", 0), "reduction": Attr("str", "none")}


@register
class ScatterND(Scatter):
    name = "graph.scatter_nd"
    onnx = "ScatterND"
    attrs = {"reduction": Attr("str", "none")}

    def shape(self, op, x, idx, upd):
        self._common(op, x, idx, upd)
        if idx.rank < 1 or not isinstance(idx.shape[-1], int) or idx.shape[-1] > x.rank:
            raise SofieError(f"{op.describe()}: indices {fmt_shape(idx.shape)} for data {fmt_shape(x.shape)}")
        want = idx.shape[:-1] + x.shape[idx.shape[-1]:]
        if upd.shape != want:
            raise SofieError(f"{op.describe()}: updates are {fmt_shape(upd.shape)}, expected {fmt_shape(want)}")
        return x

    def reference(self, op, x, idx, upd):
        k = idx.shape[-1]
        flat = idx.reshape(-1, k)
        cols = [normalized(op, flat[:, j], x.shape[j]) for j in range(k)]
        updates = upd.reshape((flat.shape[0],) + x.shape[k:])
        out = x.copy()
        for i in range(flat.shape[0]):
            at = tuple(int(c[i]) for c in cols)
            out[at] = _reduce(op.attr("reduction"), out[at], updates[i])
        return out


@register
class Trilu(OpDef):
    name = "graph.trilu"
    onnx = "Trilu"
    operands = "input k?"
    attrs = {"upper": Attr("int", 1)}

    def shape(self, op, x, k):
        if x.rank < 2:
            raise SofieError(f"{op.describe()}: input {fmt_shape(x.shape)} has fewer than 2 axes")
        if k is not None and (k.dtype != "i64" or k.static_size() != 1):
            raise SofieError(f"{op.describe()}: k must be one i64, got {k}")
        return x

    def reference(self, op, x, k):
        kk = int(k.reshape(-1)[0]) if k is not None else 0
        return np.triu(x, kk) if op.attr("upper") else np.tril(x, kk)


@register
class ReverseSequence(OpDef):
    name = "graph.reverse_sequence"
    onnx = "ReverseSequence"
    operands = "input sequence_lens"
    attrs = {"batch_axis": Attr("int", 1), "time_axis": Attr("int", 0)}
    doc = ("per batch entry b, the first sequence_lens[b] steps along time_axis reversed, the rest "
           "copied; the lengths are read at run time (one outside [0, steps] is an error naming the node)")

    def shape(self, op, x, lens):
        axes = (op.attr("batch_axis"), op.attr("time_axis"))
        if x.rank < 2 or sorted(axes) != [0, 1]:
            raise SofieError(f"{op.describe()}: batch_axis and time_axis must be 0 and 1 (either way round) of "
                             f"an input of rank >= 2, got {axes} for {fmt_shape(x.shape)}")
        if lens.dtype != "i64" or lens.rank != 1 or lens.shape[0] != x.shape[axes[0]]:
            raise SofieError(f"{op.describe()}: sequence_lens must be an i64 vector of the batch size "
                             f"{x.shape[axes[0]]}, got {lens}")
        return x

    def reference(self, op, x, lens):
        y = np.array(x, copy=True)
        bt = op.attr("batch_axis")
        for b, n in enumerate(lens.reshape(-1)):
            if not 0 <= n <= x.shape[1 - bt]:
                raise SofieError(f"{op.describe()}: sequence length {n} outside [0, {x.shape[1 - bt]}]")
            idx = (b, slice(None, n)) if bt == 0 else (slice(None, n), b)
            y[idx] = x[idx][::-1]  # the time axis is the first one left
        return y


@register
class EyeLike(OpDef):
    name = "graph.eye_like"
    onnx = "EyeLike"
    operands = "input"
    attrs = {"dtype": Attr("str", ""), "k": Attr("int", 0)}

    def shape(self, op, x):
        if x.rank != 2:
            raise SofieError(f"{op.describe()}: input {fmt_shape(x.shape)} is not 2-D")
        dt = op.attr("dtype") or x.dtype
        if dt not in DTYPES:
            raise SofieError(f"{op.describe()}: unsupported dtype '{dt}'")
        return TensorType(dt, x.shape)

    def value(self, op: Operation) -> np.ndarray:
        """The result: it depends on the input's shape only."""
        t = op.results[0].type
        if not all(isinstance(d, int) for d in t.shape):
            raise SofieError(f"{op.describe()}: input {fmt_shape(t.shape)} has a symbolic dim")
        return np.eye(t.shape[0], t.shape[1], op.attr("k"), dtype=DTYPES[t.dtype])

    def reference(self, op, x):
        dtype = DTYPES[op.attr("dtype")] if op.attr("dtype") else x.dtype
        return np.eye(x.shape[0], x.shape[1], op.attr("k"), dtype=dtype)


@register
class OneHot(OpDef):
    name = "graph.one_hot"
    onnx = "OneHot"
    operands = "indices depth:const values"
    attrs = {"axis": Attr("int", -1)}

    def depth(self, op: Operation) -> int:
        d = _known_numbers(op, "depth", "depth operand").reshape(-1)
        if d.size != 1 or int(d[0]) < 1:
            raise SofieError(f"{op.describe()}: depth {d.tolist()} is not one positive number")
        return int(d[0])

    def shape(self, op, idx, depth, values):
        if values.static_size() != 2 or values.rank != 1:
            raise SofieError(f"{op.describe()}: values must be [off, on], got {values}")
        axis = _axis(op, op.attr("axis"), idx.rank + 1)
        return TensorType(values.dtype, idx.shape[:axis] + (self.depth(op),) + idx.shape[axis:])

    def reference(self, op, idx, depth, values):
        n = self.depth(op)
        axis = op.attr("axis") % (idx.ndim + 1)
        i = np.where(idx < 0, idx + n, idx).astype(np.int64)
        hot = np.expand_dims(i, axis) == np.arange(n).reshape((n,) + (1,) * (idx.ndim - axis))
        return np.where(hot, values[1], values[0]).astype(values.dtype)


@register
class Range(OpDef):
    name = "graph.range"
    onnx = "Range"
    operands = "start:const limit:const delta:const"

    def _values(self, op: Operation) -> np.ndarray:
        start, limit, delta = (self._scalar(op, k) for k in ("start", "limit", "delta"))
        if delta == 0:
            raise SofieError(f"{op.describe()}: delta 0")
        n = max(int(np.ceil((limit - start) / delta)), 0)
        return (start + np.arange(n) * delta).astype(np.asarray(start).dtype)

    @staticmethod
    def _scalar(op: Operation, name: str):
        return _known_numbers(op, name, f"{name} of a Range (its output length)").reshape(-1)[0]

    def shape(self, op, start, limit, delta):
        return TensorType(start.dtype, (len(self._values(op)),))

    def reference(self, op, start, limit, delta):
        return self._values(op)


@register
class Compress(OpDef):
    name = "graph.compress"
    onnx = "Compress"
    operands = "input condition:const"
    attrs = {"axis": Attr("ints", [])}  # [] flattens the input first, else [axis] (the importer wraps it)
    doc = ("the slices of input along axis (of the flattened input without one) where condition is "
           "true; condition must be known at compile time (it sets the output length)")

    def kept(self, op: Operation) -> np.ndarray:
        c = _known_numbers(op, "condition", "condition of a Compress (its output length)").reshape(-1)
        return np.flatnonzero(c).astype(np.int64)

    def shape(self, op, x, cond):
        kept, axis = self.kept(op), op.attr("axis")
        if axis:
            a = _axis(op, axis[0], x.rank)
            size, out = x.shape[a], x.shape[:a] + (len(kept),) + x.shape[a + 1:]
        elif x.is_static:
            size, out = int(np.prod(x.shape, dtype=np.int64)), (len(kept),)
        else:
            raise SofieError(f"{op.describe()}: without an axis Compress flattens the input, whose shape "
                             f"{fmt_shape(x.shape)} must then be static")
        if not isinstance(size, int):
            raise SofieError(f"{op.describe()}: the compressed axis of {fmt_shape(x.shape)} must be static")
        if len(kept) and kept[-1] >= size:
            raise SofieError(f"{op.describe()}: condition selects position {kept[-1]}, past the {size} "
                             f"elements along the axis")
        return x.with_shape(out)

    def reference(self, op, x, cond):
        axis = op.attr("axis")
        return np.take(x, self.kept(op), axis=axis[0] % x.ndim) if axis else np.take(x.reshape(-1), self.kept(op))


@register
class NonZero(OpDef):
    name = "graph.non_zero"
    onnx = "NonZero"
    operands = "X"

    def shape(self, op, x):
        v = known_value(op.X)
        if v is None or v.dtype == object:
            raise SofieError(f"{op.describe()}: NonZero's output length is the number of non-zero input "
                             f"elements, known only at run time; sofie supports it only on a compile-time "
                             f"constant input")
        return TensorType("i64", (x.rank, int(np.count_nonzero(v))))

    def reference(self, op, x):
        return np.array(np.nonzero(x), dtype=np.int64).reshape(x.ndim, -1)
