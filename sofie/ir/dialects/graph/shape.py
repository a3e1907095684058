"""Shape and data-movement ops: reshape family, transpose, concat, and the small shape
computations PyTorch's exporter writes for a dynamic batch (Shape -> Gather -> Concat).

Ops with the SYMBOLIC trait also evaluate on numpy object arrays whose entries may be
dimension symbols; `sofie.ir.folding` uses that to resolve Reshape targets such as [N, 512].
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from sofie.errors import SofieError
from sofie.ir.casting import ROUND_MODES, cast_array
from sofie.ir.core import Operation
from sofie.ir.folding import known_value
from sofie.ir.registry import PURE, SYMBOLIC, VIEW, Attr, OpDef, register
from sofie.ir.run_time_dims import run_time_dim
from sofie.ir.symbolic import Sym
from sofie.ir.types import DTYPES, INTS, Dim, TensorType, dims_product, fmt_shape, make_dim


def _axis(op: Operation, axis: int, rank: int) -> int:
    if not -rank <= axis < rank:
        raise SofieError(f"{op.describe()}: axis {axis} out of range for rank {rank}")
    return axis % rank


def _known(op: Operation, operand: str, what: str) -> np.ndarray:
    """A compile-time operand's value (declared `:const`)."""
    v = known_value(op.operand(operand))
    if v is None:
        raise SofieError(f"{op.describe()}: the {what} is computed at run time; sofie needs it at "
                         f"compile time (a constant, or derived from static shapes)")
    return v


def _known_numbers(op: Operation, operand: str, what: str) -> np.ndarray:
    """A compile-time operand's value that must be numbers: one derived from a symbolic dim
    (the batch, say) is a run-time value too, and refused as one."""
    v = _known(op, operand, what)
    if v.dtype == object:
        syms = ", ".join(sorted({str(e) for e in v.reshape(-1) if not isinstance(e, int | np.integer)}))
        if not syms:  # symbolic arithmetic that came out as plain numbers
            return v.astype(np.int64)
        raise SofieError(f"{op.describe()}: the {what} depends on the symbolic dim {syms}, known only at run "
                         f"time; sofie needs it at compile time (a constant, or derived from static shapes)")
    return v


def reshape_dims(op: Operation, shape: tuple[Dim, ...], target: list, allowzero: bool) -> tuple[Dim, ...]:
    out: list[Dim] = []
    infer_at = None
    for i, t in enumerate(target):
        if isinstance(t, Sym | str):
            out.append(t.dim if isinstance(t, Sym) else t)
        elif int(t) == -1:
            if infer_at is not None:
                raise SofieError(f"{op.describe()}: more than one -1 in the target shape {list(target)}")
            infer_at = i
            out.append(-1)
        elif int(t) == 0 and not allowzero:
            if i >= len(shape):
                raise SofieError(f"{op.describe()}: 0 at position {i} copies a dim the input lacks")
            out.append(shape[i])
        else:
            out.append(int(t))
    n_in, s_in = dims_product(shape)
    n_out, s_out = dims_product([d for d in out if d != -1])
    if infer_at is not None:
        left = Counter(s_in)
        left.subtract(Counter(s_out))
        if any(c < 0 for c in left.values()) or n_out == 0 or n_in % n_out:
            raise SofieError(f"{op.describe()}: cannot reshape {fmt_shape(shape)} to {list(target)}")
        syms = [s for s, c in left.items() for _ in range(c)]
        out[infer_at] = make_dim(n_in // n_out, syms)
    elif (n_in, s_in) != dims_product(out):
        raise SofieError(f"{op.describe()}: cannot reshape {fmt_shape(shape)} ({n_in} elements) "
                         f"to {fmt_shape(tuple(out))}")
    return tuple(out)


@register
class Reshape(OpDef):
    name = "graph.reshape"
    onnx = "Reshape"
    operands = "data shape:const"
    attrs = {"allowzero": Attr("int", 0)}
    traits = frozenset({PURE, VIEW, SYMBOLIC})  # a dim reshaped to [1] on its way into a target

    def shape(self, op, x, shape):
        if shape.rank != 1:
            raise SofieError(f"{op.describe()}: the shape operand must be 1-D")
        if run_time_operand(op, "shape"):
            return x.with_shape(self.run_time_shape(op, x.shape, shape))
        target = list(_known(op, "shape", "target shape"))
        return x.with_shape(reshape_dims(op, x.shape, target, bool(op.attr("allowzero"))))

    def run_time_shape(self, op: Operation, shape: tuple[Dim, ...], target: TensorType) -> tuple[Dim, ...]:
        """A target shape known only at run time: as many run-time dims as it has entries, each
        bounded by the element count (the run checks that the counts agree)."""
        length = static_length(op, "shape", target)
        coef, syms = dims_product(shape)
        if coef == 0:
            raise SofieError(f"{op.describe()}: reshaping the empty {fmt_shape(shape)} to a shape computed at run "
                             f"time: its dims have no bound")
        count = make_dim(coef, syms)
        return tuple(1 if count == 1 else run_time_dim(op, 0, i, count) for i in range(length))

    def reference(self, op, x, shape):
        return x.reshape(op.results[0].type.shape if op.results else tuple(int(d) for d in shape))


@register
class Flatten(OpDef):
    name = "graph.flatten"
    onnx = "Flatten"
    operands = "X"
    attrs = {"axis": Attr("int", 1)}
    traits = frozenset({PURE, VIEW})

    def shape(self, op, x):
        axis = op.attr("axis")
        if not -x.rank <= axis <= x.rank:
            raise SofieError(f"{op.describe()}: axis {axis} out of range for rank {x.rank}")
        axis = axis + x.rank if axis < 0 else axis
        return x.with_shape((_merge(op, x.shape[:axis]), _merge(op, x.shape[axis:])))

    def reference(self, op, x):
        axis = op.attr("axis") + x.ndim if op.attr("axis") < 0 else op.attr("axis")
        return x.reshape(int(np.prod(x.shape[:axis])), -1)


def _merge(op: Operation, dims: tuple[Dim, ...]) -> Dim:
    return make_dim(*dims_product(dims))


@register
class Identity(OpDef):
    name = "graph.identity"
    onnx = "Identity"
    operands = "X"
    traits = frozenset({PURE, VIEW})

    def shape(self, op, x):
        return x

    def reference(self, op, x):
        return x


@register
class Transpose(OpDef):
    name = "graph.transpose"
    onnx = "Transpose"
    operands = "X"
    attrs = {"perm": Attr("ints", [])}
    traits = frozenset({PURE, SYMBOLIC})

    def perm(self, op: Operation, rank: int) -> list[int]:
        return list(op.attr("perm")) or list(range(rank))[::-1]

    def shape(self, op, x):
        perm = self.perm(op, x.rank)
        if sorted(perm) != list(range(x.rank)):
            raise SofieError(f"{op.describe()}: perm {perm} is not a permutation of {x.rank} axes")
        return x.with_shape(tuple(x.shape[p] for p in perm))

    def reference(self, op, x):
        return np.transpose(x, self.perm(op, x.ndim))


@register
class Concat(OpDef):
    name = "graph.concat"
    onnx = "Concat"
    operands = "inputs*"
    attrs = {"axis": Attr("int")}
    traits = frozenset({PURE, SYMBOLIC})

    def shape(self, op, *xs):
        if not xs:
            raise SofieError(f"{op.describe()}: needs at least one input")
        rank = xs[0].rank
        axis = _axis(op, op.attr("axis"), rank)
        total: list[Dim] = []
        for x in xs:
            if x.rank != rank or x.dtype != xs[0].dtype or any(
                    x.shape[i] != xs[0].shape[i] for i in range(rank) if i != axis):
                raise SofieError(f"{op.describe()}: inputs {', '.join(fmt_shape(t.shape) for t in xs)} "
                                 f"differ outside axis {axis}")
            total.append(x.shape[axis])
        # sizes along the axis add up: N + N is 2*N; N + 3 is no product of dims
        try:
            size = sum((Sym.of(d) for d in total), 0)
        except TypeError:
            raise SofieError(f"{op.describe()}: concatenating {', '.join(map(str, total))} along axis {axis} "
                             f"gives no product of dims") from None
        size = size.dim if isinstance(size, Sym) else size
        return xs[0].with_shape(xs[0].shape[:axis] + (size,) + xs[0].shape[axis + 1:])

    def reference(self, op, *xs):
        return np.concatenate(xs, axis=op.attr("axis"))


@register
class Shape(OpDef):
    name = "graph.shape"
    onnx = "Shape"
    operands = "data"
    attrs = {"start": Attr("int", 0), "end": Attr("int", 2**62)}
    traits = frozenset({PURE, SYMBOLIC})

    def _dims(self, op: Operation, shape: tuple[Dim, ...]) -> tuple[Dim, ...]:
        r = len(shape)

        def clamp(i: int) -> int:  # negative counts from the end; both clamp to [0, rank]
            return min(max(i + r if i < 0 else i, 0), r)
        return shape[clamp(op.attr("start")):clamp(op.attr("end"))]

    def shape(self, op, x):
        return TensorType("i64", (len(self._dims(op, x.shape)),))

    def reference(self, op, x):
        return np.array(self._dims(op, x.shape), dtype=np.int64)

    def symbolic_reference(self, op: Operation) -> np.ndarray:
        dims = self._dims(op, op.data.type.shape)
        return np.array([Sym.of(d) for d in dims], dtype=object)


@register
class Gather(OpDef):
    name = "graph.gather"
    onnx = "Gather"
    operands = "data indices"
    attrs = {"axis": Attr("int", 0)}
    traits = frozenset({PURE, SYMBOLIC})

    def shape(self, op, x, idx):
        axis = _axis(op, op.attr("axis"), x.rank)
        return x.with_shape(x.shape[:axis] + idx.shape + x.shape[axis + 1:])

    def reference(self, op, x, idx):
        axis = op.attr("axis") % x.ndim
        n = x.shape[axis]
        if np.any((idx < -n) | (idx >= n)):
            raise SofieError(f"{op.describe()}: index out of range for axis of size {n}")
        return np.take(x, np.where(idx < 0, idx + n, idx), axis=axis)


def run_time_operand(op: Operation, operand: str) -> bool:
    """Whether a `:const` operand that sets the result's shape is known only at run time (so
    the result has run-time dims, `sofie.ir.run_time_dims`)."""
    v = op.operand(operand)
    return v is not None and known_value(v) is None


def static_length(op: Operation, operand: str, t: TensorType) -> int:
    """The number of values of a 1-D (or scalar) operand known only at run time: it sets the
    result's rank, so it must be static. Its values are read as integers."""
    if t.dtype not in INTS:
        raise SofieError(f"{op.describe()}: the {operand} operand is computed at run time and holds {t.dtype}; "
                         f"it must hold integers")
    if t.rank > 1 or not t.is_static:
        raise SofieError(f"{op.describe()}: the {operand} operand {t} is computed at run time and its length "
                         f"is not static; sofie needs the result's rank at compile time")
    return t.shape[0] if t.rank == 1 else 1


def largest(dims: tuple[Dim, ...] | list[Dim]) -> Dim:
    """A bound of whichever of `dims` a run-time choice picks: their maximum when static, else
    the one symbolic dim, else their product (every symbol is at least 1)."""
    if all(isinstance(d, int) for d in dims):
        return max(dims, default=1)
    distinct = {d for d in dims if d not in (0, 1)}
    if len(distinct) == 1:
        return distinct.pop()
    return make_dim(*dims_product([max(d, 1) if isinstance(d, int) else d for d in distinct]))


def _one_of(op: Operation, axis: int, dims: tuple[Dim, ...] | list[Dim]) -> Dim:
    """Result dim `axis`, which the run picks from `dims`: 1 when they all are, else a run-time dim."""
    return 1 if all(d == 1 for d in dims) else run_time_dim(op, 0, axis, largest(dims))


def _axes(op: Operation) -> list[int]:
    if op.attrs.get("axes") is not None and op.attr("axes"):
        return list(op.attr("axes"))
    if op.operand("axes_input") is not None and op.operand("axes_input").type.static_size() != 0:
        return [int(a) for a in _known_numbers(op, "axes_input", "axes operand").reshape(-1)]  # a scalar too
    return []


class AxesView(OpDef):
    """Squeeze / Unsqueeze: a view whose new shape depends on `axes` (attribute before opset
    13, operand since)."""

    operands = "data axes_input?:const"
    attrs = {"axes": Attr("ints", [])}
    traits = frozenset({PURE, VIEW, SYMBOLIC})

    def new_shape(self, op: Operation, shape: tuple) -> tuple:
        raise NotImplementedError

    def shape(self, op, x, axes):
        if not op.attr("axes") and axes is not None and run_time_operand(op, "axes_input") \
                and static_length(op, "axes", axes) > 0:
            return x.with_shape(self.run_time_shape(op, x.shape, static_length(op, "axes", axes)))
        return x.with_shape(self.new_shape(op, x.shape))

    def run_time_shape(self, op: Operation, shape: tuple, count: int) -> tuple:
        """`count` axes known only at run time: result dim j is one of the input dims it may be
        (or 1), a run-time dim bounded by the largest of them."""
        raise NotImplementedError

    def reference(self, op, x, axes):
        return x.reshape(self.new_shape(op, x.shape))


@register
class Unsqueeze(AxesView):
    name = "graph.unsqueeze"
    onnx = "Unsqueeze"

    def run_time_shape(self, op: Operation, shape: tuple, count: int) -> tuple:
        # result dim j is 1 or input dim j - k, k the axes inserted before it (0 .. count)
        rank = len(shape) + count
        return tuple(_one_of(op, j, [1, *shape[max(0, j - count):j + 1]]) for j in range(rank))

    def new_shape(self, op: Operation, shape: tuple) -> tuple:
        axes = _axes(op)
        rank = len(shape) + len(axes)
        axes = sorted(_axis(op, a, rank) for a in axes)
        out, it = [], iter(shape)
        for i in range(rank):
            out.append(1 if i in axes else next(it))
        return tuple(out)


@register
class Squeeze(AxesView):
    name = "graph.squeeze"
    onnx = "Squeeze"

    def run_time_shape(self, op: Operation, shape: tuple, count: int) -> tuple:
        if count > len(shape):
            raise SofieError(f"{op.describe()}: {count} axes to squeeze from rank {len(shape)}")
        # result dim j is input dim j + k, k the axes removed before it (0 .. count)
        return tuple(_one_of(op, j, shape[j:j + count + 1]) for j in range(len(shape) - count))

    def new_shape(self, op: Operation, shape: tuple) -> tuple:
        axes = [_axis(op, a, len(shape)) for a in _axes(op)] or [
            i for i, d in enumerate(shape) if d == 1]
        for a in axes:
            if shape[a] != 1:
                raise SofieError(f"{op.describe()}: cannot squeeze axis {a} of size {shape[a]}")
        return tuple(d for i, d in enumerate(shape) if i not in axes)


@register
class Cast(OpDef):
    name = "graph.cast"
    onnx = "Cast"
    operands = "X"
    # saturate: float8 results only (ONNX's default 1: overflow is +-max, not inf / NaN);
    # round_mode: float8e8m0 results only
    attrs = {"to": Attr("str"), "saturate": Attr("int", 1), "round_mode": Attr("str", "up")}
    traits = frozenset({PURE, SYMBOLIC})

    def shape(self, op, x):
        if op.attr("to") not in DTYPES:
            raise SofieError(f"{op.describe()}: cast to unsupported type '{op.attr('to')}'")
        if op.attr("round_mode") not in ROUND_MODES:
            raise SofieError(f"{op.describe()}: round_mode '{op.attr('round_mode')}' is not one of "
                             f"{', '.join(ROUND_MODES)}")
        return TensorType(op.attr("to"), x.shape)

    def reference(self, op, x):
        if x.dtype == object:
            return x
        return cast_array(x, op.attr("to"), bool(op.attr("saturate")), op.attr("round_mode"))


@register
class ConstantOfShape(OpDef):
    name = "graph.constant_of_shape"
    onnx = "ConstantOfShape"
    operands = "input:const"
    attrs = {"value": Attr("floats", [0.0]), "dtype": Attr("str", "f32")}

    def shape(self, op, shape):
        dims = tuple(d.dim if isinstance(d, Sym) else int(d) for d in _known(op, "input", "shape operand"))
        return TensorType(op.attr("dtype"), dims)

    def reference(self, op, shape):
        dt = DTYPES[op.attr("dtype")]
        return np.full(tuple(int(d) for d in shape), op.attr("value")[0], dtype=dt)


@register
class BitCast(OpDef):
    name = "graph.bit_cast"
    onnx = "BitCast"
    operands = "X"
    attrs = {"to": Attr("str")}
    traits = frozenset({PURE})
    doc = "the same bytes read as another element type of the same width (little endian)"

    def shape(self, op, x):
        to = op.attr("to")
        if to not in DTYPES:
            raise SofieError(f"{op.describe()}: bit cast to unsupported type '{to}'")
        if DTYPES[to].itemsize != DTYPES[x.dtype].itemsize:
            raise SofieError(f"{op.describe()}: {x.dtype} and {to} differ in width "
                             f"({DTYPES[x.dtype].itemsize * 8} and {DTYPES[to].itemsize * 8} bits)")
        return TensorType(to, x.shape)

    def reference(self, op, x):
        return np.ascontiguousarray(x).view(DTYPES[op.attr("to")])
