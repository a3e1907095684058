"""Reductions and scans: the Reduce* family, ArgMax / ArgMin, CumSum / CumProd and TopK.

Each Reduce* op is one table row: a scalar body applied to every element (`pre`, over x), the
binary op that combines elements (`combine`, starting at `init`) and a body finishing the
result (`post`, over acc and the element count n). The numpy reference evaluates those same
bodies, and lowering turns them into one `low.generic` with reduction loops.

Axes come as an attribute (before opset 13 / 18) or an operand (since); an empty list reduces
every axis, or none with `noop_with_empty_axes`. An axes operand known only at run time gives
run-time dims (`sofie.ir.run_time_dims`): with keepdims each axis of size d becomes one bounded
by d (its value is 1 or d), without it the result's rank is the input's less the operand's
(static) length and each of its dims is bounded by the input dims it may be.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sofie.errors import SofieError
from sofie.ir.core import Operation
from sofie.ir.dialects.graph.elementwise import instantiate
from sofie.ir.dialects.graph.shape import _axis, _known, _known_numbers, largest, run_time_operand, static_length
from sofie.ir.dialects.scalar import Expr, evaluate
from sofie.ir.folding import known_value
from sofie.ir.registry import PURE, Attr, OpDef, register
from sofie.ir.run_time_dims import run_time_dim
from sofie.ir.types import COMPUTED_AS_F32, FLOATS, INTS, NUMERIC, Dim, TensorType, fmt_shape

_INF = float("inf")


@dataclass(frozen=True)
class Reduction:
    name: str
    onnx: str
    combine: str                    # add | mul | max | min (or | and on bool)
    init: float
    pre: str = "x"                  # over x
    post: str = "acc"               # over acc and n
    types: tuple[str, ...] = NUMERIC


REDUCTIONS = [
    Reduction("reduce_sum", "ReduceSum", "add", 0.0),
    Reduction("reduce_mean", "ReduceMean", "add", 0.0, post="div(acc, n)"),
    Reduction("reduce_max", "ReduceMax", "max", -_INF, types=NUMERIC + ("i1",)),
    Reduction("reduce_min", "ReduceMin", "min", _INF, types=NUMERIC + ("i1",)),
    Reduction("reduce_prod", "ReduceProd", "mul", 1.0),
    Reduction("reduce_l1", "ReduceL1", "add", 0.0, pre="abs(x)"),
    Reduction("reduce_l2", "ReduceL2", "add", 0.0, pre="mul(x, x)", post="sqrt(acc)", types=FLOATS),
    Reduction("reduce_log_sum", "ReduceLogSum", "add", 0.0, post="log(acc)", types=FLOATS),
    Reduction("reduce_log_sum_exp", "ReduceLogSumExp", "add", 0.0, pre="exp(x)", post="log(acc)", types=FLOATS),
    Reduction("reduce_sum_square", "ReduceSumSquare", "add", 0.0, pre="mul(x, x)"),
]
_BOOL_COMBINE = {"max": ("or", 0.0), "min": ("and", 1.0)}  # max / min of booleans
_NUMPY_COMBINE = {"add": np.add, "mul": np.multiply, "max": np.maximum, "min": np.minimum,
                  "or": np.logical_or, "and": np.logical_and}


class ReduceOp(OpDef):
    """A Reduce* op; see the REDUCTIONS table."""

    operands = "data axes_input?:const"
    attrs = {"axes": Attr("ints", []), "keepdims": Attr("int", 1), "noop_with_empty_axes": Attr("int", 0)}
    spec: Reduction

    def reduced_axes(self, op: Operation, rank: int) -> list[int]:
        """The axes reduced, sorted; [] with noop_with_empty_axes, where each element is
        reduced on its own (ReduceSumSquare squares it, as onnxruntime does)."""
        axes = list(op.attr("axes"))
        if not axes and op.operand("axes_input") is not None and self.axes_count(op) != 0:
            axes = [int(a) for a in _known_numbers(op, "axes_input", "axes operand").reshape(-1)]
        if not axes:
            return [] if op.attr("noop_with_empty_axes") else list(range(rank))
        out = sorted({_axis(op, a, rank) for a in axes})
        if len(out) != len(axes):
            raise SofieError(f"{op.describe()}: axes {axes} name an axis twice")
        return out

    def axes_count(self, op: Operation) -> int | None:
        """How many axes the axes operand names, from its type (None: a run-time length)."""
        t = op.operand("axes_input").type
        if t.rank > 1 or not t.is_static:
            return None
        return t.shape[0] if t.rank == 1 else 1

    def run_time_axes(self, op: Operation) -> bool:
        """Whether the reduced axes are an operand known only at run time."""
        return (not op.attr("axes") and op.operand("axes_input") is not None and self.axes_count(op) != 0
                and known_value(op.operand("axes_input")) is None)

    def run_time_shape(self, op: Operation, shape: tuple[Dim, ...]) -> tuple[Dim, ...]:
        """The result's shape when the axes are known only at run time: run-time dims bounded
        by the input dims each may be."""
        count = self.axes_count(op)
        if op.operand("axes_input").type.dtype not in INTS:
            raise SofieError(f"{op.describe()}: the axes operand is computed at run time and holds "
                             f"{op.operand('axes_input').type.dtype}; it must hold integers")
        if count is None and not op.attr("keepdims"):  # with keepdims the rank is the input's
            raise SofieError(f"{op.describe()}: the axes operand {op.operand('axes_input').type} is computed at run "
                             f"time and its length is not static; without keepdims sofie needs the number of axes "
                             f"at compile time (the result's rank)")
        if op.attr("keepdims"):
            return tuple(1 if d == 1 else run_time_dim(op, 0, i, max(d, 1) if isinstance(d, int) else d)
                         for i, d in enumerate(shape))
        if count > len(shape):
            raise SofieError(f"{op.describe()}: {count} axes for an input of rank {len(shape)}")
        rank = len(shape) - count
        # result dim j is input dim j + (the number of reduced axes before it): j .. j + count
        return tuple(run_time_dim(op, 0, j, largest(shape[j:j + count + 1])) for j in range(rank))

    def out_shape(self, op: Operation, shape: tuple[Dim, ...]) -> tuple[Dim, ...]:
        if self.run_time_axes(op):
            return self.run_time_shape(op, shape)
        axes = self.reduced_axes(op, len(shape))
        keep = op.attr("keepdims")
        return tuple(1 if i in axes else d for i, d in enumerate(shape) if keep or i not in axes)

    def bodies(self, dtype: str, n: int | None) -> tuple[Expr, str, float, Expr]:
        """(pre over x0, combine, init, post over acc) for element type `dtype` and count n
        (None: a run-time count, read from x1)."""
        s = self.spec
        combine, init = _BOOL_COMBINE[s.combine] if dtype == "i1" else (s.combine, s.init)
        post = instantiate(s.post, {"x": "x0", "n": "x1"}, {}) if n is None else \
            instantiate(s.post, {"x": "x0"}, {"n": n})
        return instantiate(s.pre, {"x": "x0"}, {}), combine, init, post

    def shape(self, op, x, axes):
        if x.dtype not in self.spec.types and x.dtype not in COMPUTED_AS_F32:
            raise SofieError(f"{op.describe()}: {self.spec.onnx} is not defined on element type {x.dtype} "
                             f"(supported: {', '.join(self.spec.types)})")
        return x.with_shape(self.out_shape(op, x.shape))

    def reference(self, op, x, axes):
        red = tuple(self.reduced_axes(op, x.ndim))
        n = int(np.prod([x.shape[a] for a in red]))
        pre, combine, init, post = self.bodies("i1" if x.dtype == np.bool_ else "", n)
        v = evaluate(pre, [x]).astype(x.dtype)
        if not red:  # noop_with_empty_axes: each element reduced on its own
            return evaluate(post, [], v).astype(x.dtype)
        if x.size:
            acc = _NUMPY_COMBINE[combine].reduce(v, axis=red, keepdims=True)
        else:
            acc = np.full([1 if i in red else d for i, d in enumerate(x.shape)], init)
        y = evaluate(post, [], np.asarray(acc).astype(x.dtype)).astype(x.dtype)
        return y.reshape(self.out_shape(op, x.shape))


def _declare() -> None:
    for r in REDUCTIONS:
        register(type(r.onnx, (ReduceOp,), {"name": f"graph.{r.name}", "onnx": r.onnx, "spec": r,
                                             "doc": f"ONNX {r.onnx}: {r.combine} of {r.pre} over axes, then {r.post}"}))


_declare()


class ArgReduce(OpDef):
    operands = "data"
    attrs = {"axis": Attr("int", 0), "keepdims": Attr("int", 1), "select_last_index": Attr("int", 0)}
    largest = True

    def shape(self, op, x):
        a = _axis(op, op.attr("axis"), x.rank)
        if x.dtype not in NUMERIC:
            raise SofieError(f"{op.describe()}: not defined on element type {x.dtype} "
                             f"(supported: {', '.join(NUMERIC)})")
        keep = op.attr("keepdims")
        return TensorType("i64", tuple(1 if i == a else d for i, d in enumerate(x.shape) if keep or i != a))

    def reference(self, op, x):
        a = op.attr("axis") % x.ndim
        pick = np.argmax if self.largest else np.argmin
        if op.attr("select_last_index"):
            idx = x.shape[a] - 1 - pick(np.flip(x, a), axis=a)
        else:
            idx = pick(x, axis=a)
        idx = idx.astype(np.int64)
        return np.expand_dims(idx, a) if op.attr("keepdims") else idx


@register
class ArgMax(ArgReduce):
    name = "graph.arg_max"
    onnx = "ArgMax"
    doc = "index of the largest element along axis (the first, or the last with select_last_index)"


@register
class ArgMin(ArgReduce):
    name = "graph.arg_min"
    onnx = "ArgMin"
    largest = False
    doc = "index of the smallest element along axis (the first, or the last with select_last_index)"


class Cumulative(OpDef):
    """The axis may be a run-time value: the result's shape does not depend on it, so the
    kernel then reads it (and checks it) at run time."""

    operands = "x axis_input:const"
    attrs = {"exclusive": Attr("int", 0), "reverse": Attr("int", 0)}
    combine = np.add

    def axis(self, op: Operation, rank: int) -> int | None:
        """The axis in [0, rank), or None when it is known only at run time."""
        if known_value(op.operand("axis_input")) is None:
            return None
        a = _known(op, "axis_input", "axis operand").reshape(-1)
        if a.size != 1:
            raise SofieError(f"{op.describe()}: axis must be a scalar, got {a.size} values")
        return _axis(op, int(a[0]), rank)

    def shape(self, op, x, axis):
        if x.dtype not in NUMERIC and x.dtype not in COMPUTED_AS_F32:
            raise SofieError(f"{op.describe()}: not defined on element type {x.dtype}")
        if self.axis(op, x.rank) is None and (axis.dtype not in ("i32", "i64") or axis.static_size() != 1):
            raise SofieError(f"{op.describe()}: the axis operand must hold one i32 or i64, got {axis}")
        return x

    def reference(self, op, x, axis):
        a = self.axis(op, x.ndim)
        if op.attr("reverse"):
            x = np.flip(x, a)
        y = self.combine.accumulate(x, axis=a, dtype=x.dtype)
        if op.attr("exclusive"):
            ident = np.full_like(np.take(x, [0], axis=a), 0 if self.combine is np.add else 1)
            y = np.concatenate([ident, np.take(y, range(x.shape[a] - 1), axis=a)], axis=a)
        return np.flip(y, a) if op.attr("reverse") else y


@register
class CumSum(Cumulative):
    name = "graph.cum_sum"
    onnx = "CumSum"
    doc = "running sum along axis (exclusive: shifted by one; reverse: from the end)"


@register
class CumProd(Cumulative):
    name = "graph.cum_prod"
    onnx = "CumProd"
    combine = np.multiply
    doc = "running product along axis (exclusive: shifted by one; reverse: from the end)"


@register
class TopK(OpDef):
    name = "graph.top_k"
    onnx = "TopK"
    operands = "X K:const"
    attrs = {"axis": Attr("int", -1), "largest": Attr("int", 1), "sorted": Attr("int", 1)}
    traits = frozenset({PURE})
    doc = ("the k largest (smallest) elements along axis and their indices, ordered; equal values "
           "by index. A k known only at run time gives a run-time dim bounded by the axis size")

    def k(self, op: Operation, n: Dim) -> int:
        k = _known_numbers(op, "K", "k operand (a run-time k gives a data-dependent output shape)").reshape(-1)
        if k.size != 1:
            raise SofieError(f"{op.describe()}: K must hold one value, got {k.size}")
        k = int(k[0])
        if k < 0 or (isinstance(n, int) and k > n):
            raise SofieError(f"{op.describe()}: k = {k} is outside [0, {n}] (the axis size)")
        return k

    def shape(self, op, x, k):
        a = _axis(op, op.attr("axis"), x.rank)
        if x.dtype not in NUMERIC:
            raise SofieError(f"{op.describe()}: not defined on element type {x.dtype} "
                             f"(supported: {', '.join(NUMERIC)})")
        if not isinstance(x.shape[a], int):
            raise SofieError(f"{op.describe()}: the axis {a} of X {fmt_shape(x.shape)} must be static")
        if run_time_operand(op, "K"):
            if static_length(op, "K", k) != 1:
                raise SofieError(f"{op.describe()}: K must hold one value, got {k.static_size()}")
            k = run_time_dim(op, 0, a, x.shape[a])
        else:
            k = self.k(op, x.shape[a])
        shape = tuple(k if i == a else d for i, d in enumerate(x.shape))
        return [x.with_shape(shape), TensorType("i64", shape)]

    def reference(self, op, x, k):
        a = op.attr("axis") % x.ndim
        kk = self.k(op, x.shape[a])
        key = -x if op.attr("largest") else x
        if x.dtype.kind == "u" and op.attr("largest"):
            key = np.iinfo(x.dtype).max - x
        idx = np.argsort(key, axis=a, kind="stable")
        idx = np.take(idx, range(kk), axis=a).astype(np.int64)
        return [np.take_along_axis(x, idx, axis=a), idx]
