"""Data movement whose geometry is known at compile time: Size, Split, Slice, Pad, Tile, Expand,
DepthToSpace, SpaceToDepth.

Their shape-like operands (split sizes, slice bounds, pads, repeats, target shapes) are `:const`:
the result shape depends on them. Slice, Pad and Tile reduce to one rule, `axis_tables`: per
output axis, which input index each output index reads (-1: the pad value), which lowering hands
to one kernel (`low.take_axes`).
"""

from __future__ import annotations

import numpy as np

from sofie.errors import SofieError
from sofie.ir.core import Operation
from sofie.ir.dialects.graph.shape import _axis, _known, _known_numbers
from sofie.ir.registry import PURE, SYMBOLIC, Attr, OpDef, register
from sofie.ir.symbolic import Sym
from sofie.ir.types import Dim, TensorType, dims_product, fmt_shape, make_dim

# per output axis: the input index read at each output index (-1: fill), or None where the axis
# is copied whole (it may then be a symbol)
Tables = list[np.ndarray | None]


def _static(op: Operation, dim: Dim, axis: int, what: str) -> int:
    if not isinstance(dim, int):
        raise SofieError(f"{op.describe()}: {what} axis {axis} of size {dim}, a symbol; sofie needs that "
                         f"axis static")
    return dim


def take(x: np.ndarray, tables: Tables, fill: float | int | bool = 0) -> np.ndarray:
    """numpy semantics of `low.take_axes`: y[i0, i1, ...] = x[t0[i0], t1[i1], ...] or fill."""
    y = x
    for axis, t in enumerate(tables):
        if t is None:
            continue
        padded = np.concatenate([y, np.full(y.shape[:axis] + (1,) + y.shape[axis + 1:], fill, y.dtype)], axis)
        y = np.take(padded, np.where(t < 0, y.shape[axis], t), axis=axis)
    return y


class AxisTables(OpDef):
    """An op whose result reads its input through per-axis index tables."""

    def tables(self, op: Operation, shape: tuple[Dim, ...]) -> Tables:
        raise NotImplementedError

    def fill(self, op: Operation) -> float | int | bool:
        return 0

    def shape(self, op, x, *rest):
        tables = self.tables(op, x.shape)
        return x.with_shape(tuple(d if t is None else len(t) for d, t in zip(x.shape, tables)))

    def reference(self, op, x, *rest):
        return take(x, self.tables(op, x.shape), self.fill(op))


# ---- Slice ----------------------------------------------------------------------------------

def slice_range(dim: int, start: int, end: int, step: int) -> np.ndarray:
    """The indices numpy's x[start:end:step] reads along an axis of `dim` (ONNX clamping)."""
    return np.arange(dim, dtype=np.int64)[slice(start, end, step)]


@register
class Slice(AxisTables):
    name = "graph.slice"
    onnx = "Slice"
    operands = "data starts:const ends:const axes?:const steps?:const"
    # SYMBOLIC: exporters slice shape vectors (x.shape[:2]) to build Reshape targets
    traits = frozenset({PURE, SYMBOLIC})

    def tables(self, op, shape):
        starts = [int(s) for s in _known_numbers(op, "starts", "starts operand")]
        ends = [int(e) for e in _known_numbers(op, "ends", "ends operand")]
        rank = len(shape)
        axes = ([int(a) for a in _known_numbers(op, "axes", "axes operand")] if op.operand("axes") is not None
                else list(range(len(starts))))
        steps = ([int(s) for s in _known_numbers(op, "steps", "steps operand")] if op.operand("steps") is not None
                 else [1] * len(starts))
        if not len(starts) == len(ends) == len(axes) == len(steps):
            raise SofieError(f"{op.describe()}: starts, ends, axes and steps differ in length "
                             f"({len(starts)}, {len(ends)}, {len(axes)}, {len(steps)})")
        tables: Tables = [None] * rank
        for start, end, axis, step in zip(starts, ends, axes, steps):
            a = _axis(op, axis, rank)
            if tables[a] is not None:
                raise SofieError(f"{op.describe()}: axis {axis} is sliced twice")
            if step == 0:
                raise SofieError(f"{op.describe()}: step 0 on axis {axis}")
            if not isinstance(shape[a], int) and start == 0 and step == 1 and end >= 2**31 - 1:
                continue  # the whole of a symbolic axis
            tables[a] = slice_range(_static(op, shape[a], a, "slices"), start, end, step)
        return tables


# ---- Pad ------------------------------------------------------------------------------------

PAD_MODES = ("constant", "reflect", "edge", "wrap")


def pad_table(n: int, before: int, after: int, mode: str) -> np.ndarray:
    """Input index of each of the n + before + after output indices (-1: the constant)."""
    i = np.arange(-before, n + after, dtype=np.int64)
    if mode == "constant":
        return np.where((i >= 0) & (i < n), i, -1)
    if mode == "edge":
        return np.clip(i, 0, n - 1)
    if mode == "wrap":
        return i % n
    period = 2 * (n - 1)  # reflect: ... 2 1 | 0 1 2 ... n-1 | n-2 ...
    r = np.abs(i) % period if period else np.zeros_like(i)
    return np.where(r < n, r, period - r)


@register
class Pad(AxisTables):
    name = "graph.pad"
    onnx = "Pad"
    operands = "data pads:const constant_value?:const axes?:const"
    attrs = {"mode": Attr("str", "constant")}

    def fill(self, op):
        if op.operand("constant_value") is None:
            return 0
        v = _known(op, "constant_value", "constant value").reshape(-1)
        return v[0].item() if v.size else 0

    def tables(self, op, shape):
        mode = op.attr("mode")
        if mode not in PAD_MODES:
            raise SofieError(f"{op.describe()}: mode '{mode}' (supported: {', '.join(PAD_MODES)})")
        rank = len(shape)
        pads = [int(p) for p in _known_numbers(op, "pads", "pads operand")]
        axes = ([_axis(op, int(a), rank) for a in _known_numbers(op, "axes", "axes operand")]
                if op.operand("axes") is not None else list(range(rank)))
        if len(pads) != 2 * len(axes):
            raise SofieError(f"{op.describe()}: {len(pads)} pads for {len(axes)} axes (expected {2 * len(axes)})")
        tables: Tables = [None] * rank
        for k, a in enumerate(axes):
            before, after = pads[k], pads[k + len(axes)]
            if before == after == 0:
                continue
            n = _static(op, shape[a], a, "pads")
            if mode != "constant" and n == 0:
                raise SofieError(f"{op.describe()}: {mode} padding of the empty axis {a}")
            if mode == "reflect" and max(before, after) >= n and n > 1:
                raise SofieError(f"{op.describe()}: reflect pads {before}, {after} on axis {a} of size {n} "
                                 f"(each must be below {n})")
            if n + before + after < 0:
                raise SofieError(f"{op.describe()}: pads {before}, {after} crop more than axis {a} of size {n}")
            tables[a] = pad_table(n, before, after, mode)
        return tables


# ---- Tile -----------------------------------------------------------------------------------

@register
class Tile(AxisTables):
    name = "graph.tile"
    onnx = "Tile"
    operands = "input repeats:const"

    def tables(self, op, shape):
        repeats = [int(r) for r in _known_numbers(op, "repeats", "repeats operand")]
        if len(repeats) != len(shape) or any(r < 0 for r in repeats):
            raise SofieError(f"{op.describe()}: repeats {repeats} for an input {fmt_shape(shape)}: one "
                             f"non-negative count per axis expected")
        return [None if r == 1 else np.tile(np.arange(_static(op, d, a, "tiles"), dtype=np.int64), r)
                for a, (d, r) in enumerate(zip(shape, repeats))]


# ---- Split ----------------------------------------------------------------------------------

@register
class Split(OpDef):
    name = "graph.split"
    onnx = "Split"
    operands = "input split_sizes?:const"
    attrs = {"axis": Attr("int", 0), "num_outputs": Attr("int", 0), "split": Attr("ints", [])}
    results = -1

    def sizes(self, op: Operation, shape: tuple[Dim, ...]) -> list[int]:
        axis = _axis(op, op.attr("axis"), len(shape))
        if op.operand("split_sizes") is not None:
            sizes = [int(s) for s in _known_numbers(op, "split_sizes", "split operand")]
        elif op.attr("split"):
            sizes = list(op.attr("split"))
        else:
            n, parts = _static(op, shape[axis], axis, "splits"), op.attr("num_outputs")
            if parts <= 0:
                raise SofieError(f"{op.describe()}: neither split sizes nor num_outputs")
            chunk = -(-n // parts)
            sizes = [min(chunk, max(n - k * chunk, 0)) for k in range(parts)]
        n = _static(op, shape[axis], axis, "splits")
        if sum(sizes) != n or any(s < 0 for s in sizes):
            raise SofieError(f"{op.describe()}: split sizes {sizes} do not add up to axis {axis} of size {n}")
        return sizes

    def shape(self, op, x, split_sizes):
        axis = _axis(op, op.attr("axis"), x.rank)
        return [x.with_shape(x.shape[:axis] + (s,) + x.shape[axis + 1:]) for s in self.sizes(op, x.shape)]

    def reference(self, op, x, split_sizes):
        axis = op.attr("axis") % x.ndim
        return np.split(x, np.cumsum(self.sizes(op, x.shape))[:-1], axis=axis)


# ---- Expand, Size ---------------------------------------------------------------------------

@register
class Expand(OpDef):
    name = "graph.expand"
    onnx = "Expand"
    operands = "input shape:const"

    def shape(self, op, x, shape):
        target = [t.dim if isinstance(t, Sym) else int(t) for t in _known(op, "shape", "target shape")]
        rank = max(len(target), x.rank)
        a = (1,) * (rank - x.rank) + tuple(x.shape)
        b = (1,) * (rank - len(target)) + tuple(target)
        out = []
        for i, (p, q) in enumerate(zip(a, b)):
            if p != q and p != 1 and q != 1:
                raise SofieError(f"{op.describe()}: cannot expand {fmt_shape(x.shape)} to {target} (axis {i})")
            out.append(q if p == 1 else p)
        return x.with_shape(tuple(out))

    def reference(self, op, x, shape):
        out = op.results[0].type.shape if op.results else None
        if out is None or not all(isinstance(d, int) for d in out):
            return x * np.ones(tuple(int(s) for s in shape), x.dtype)
        return np.broadcast_to(x, out).copy()


@register
class Size(OpDef):
    name = "graph.size"
    onnx = "Size"
    operands = "data"
    traits = frozenset({PURE, SYMBOLIC})

    def shape(self, op, x):
        return TensorType("i64", ())

    def reference(self, op, x):
        return np.array(x.size, dtype=np.int64)

    def symbolic_reference(self, op: Operation) -> np.ndarray:
        size = make_dim(*dims_product(op.data.type.shape))
        return np.array(Sym.of(size), dtype=object)


# ---- DepthToSpace, SpaceToDepth -------------------------------------------------------------

class BlockMove(OpDef):
    """A view to 6-D, a transpose, a view back: `split_shape` is the 6-D view of the input,
    `perm` the transpose, as in the ONNX definitions."""

    operands = "input"
    attrs = {"blocksize": Attr("int"), "mode": Attr("str", "DCR")}

    def geometry(self, op: Operation, shape: tuple[Dim, ...]) -> tuple[tuple, list[int], tuple]:
        raise NotImplementedError

    def _check(self, op: Operation, x: TensorType) -> None:
        if x.rank != 4:
            raise SofieError(f"{op.describe()}: input {fmt_shape(x.shape)} is not 4-D (NCHW)")
        if op.attr("mode") not in ("DCR", "CRD") or op.attr("blocksize") < 1:
            raise SofieError(f"{op.describe()}: mode {op.attr('mode')!r}, blocksize {op.attr('blocksize')} "
                             f"(mode DCR or CRD, blocksize >= 1)")

    def shape(self, op, x):
        self._check(op, x)
        return x.with_shape(self.geometry(op, x.shape)[2])

    def reference(self, op, x):
        split, perm, out = self.geometry(op, x.shape)
        return np.transpose(x.reshape(split), perm).reshape(out)


@register
class DepthToSpace(BlockMove):
    name = "graph.depth_to_space"
    onnx = "DepthToSpace"

    def geometry(self, op, shape):
        n, c, h, w = shape
        b = op.attr("blocksize")
        if _static(op, c, 1, "moves") % (b * b):
            raise SofieError(f"{op.describe()}: {c} channels do not divide by blocksize^2 = {b * b}")
        if op.attr("mode") == "DCR":
            split, perm = (n, b, b, c // (b * b), h, w), [0, 3, 4, 1, 5, 2]
        else:
            split, perm = (n, c // (b * b), b, b, h, w), [0, 1, 4, 2, 5, 3]
        return split, perm, (n, c // (b * b), _static(op, h, 2, "moves") * b, _static(op, w, 3, "moves") * b)


@register
class SpaceToDepth(BlockMove):
    name = "graph.space_to_depth"
    onnx = "SpaceToDepth"

    def geometry(self, op, shape):
        n, c, h, w = shape
        b = op.attr("blocksize")
        h, w = _static(op, h, 2, "moves"), _static(op, w, 3, "moves")
        if h % b or w % b:
            raise SofieError(f"{op.describe()}: spatial size {h}x{w} does not divide by blocksize {b}")
        split = (n, c, h // b, b, w // b, b)
        perm = [0, 3, 5, 1, 2, 4] if op.attr("mode") == "DCR" else [0, 1, 3, 5, 2, 4]
        return split, perm, (n, c * b * b, h // b, w // b)
