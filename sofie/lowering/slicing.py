"""Slice, Pad, Tile and Split: one `low.take_axes` each (per-axis index tables, fixed at
compile time); Expand: a broadcasting loop; ConstantOfShape of a symbolic shape (zeros_like at
a dynamic batch): a loop broadcasting its one value, which fuse-loops then inlines into the
consumer; DepthToSpace / SpaceToDepth: a transposing loop
between two views."""

from __future__ import annotations

import numpy as np

from sofie.errors import SofieError
from sofie.ir.core import Operation, Value
from sofie.ir.dialects.graph.movement import (
    AxisTables,
    BlockMove,
    DepthToSpace,
    Expand,
    Pad,
    Slice,
    SpaceToDepth,
    Split,
    Tables,
    Tile,
)
from sofie.ir.dialects.graph.shape import ConstantOfShape
from sofie.ir.dialects.low import PARALLEL
from sofie.ir.dialects.low import TakeAxes as LowTakeAxes
from sofie.ir.dialects.low import View as LowView
from sofie.ir.dialects.scalar import Var
from sofie.ir.types import DTYPES, TensorType
from sofie.lowering.context import LoweringContext, rule
from sofie.lowering.loops import elementwise

MAX_RANK = 16  # the runtime kernels keep per-axis state in fixed arrays


def take_axes(ctx: LoweringContext, op: Operation, x: Value, tables: Tables, out: Value,
              fill: float | int | bool = 0) -> None:
    if len(tables) > MAX_RANK:
        raise SofieError(f"{op.describe()}: rank {len(tables)} is above the {MAX_RANK} sofie's kernels take")
    used = [t for t in tables if t is not None]
    if not used:  # every axis whole (a Slice or Pad that changes nothing)
        ctx.create("low.copy", [x, out], {}, op)
        return
    table = ctx.constant(np.concatenate(used).astype(np.int64), f"{out.name or 'take'}_table")
    ctx.create(LowTakeAxes, [x, table, out], {"tabled": [int(t is not None) for t in tables], "fill": float(fill)},
               op)


@rule(Slice, Pad, Tile)
def _tables(ctx: LoweringContext, op: Operation) -> None:
    if ctx.fold(op):
        return
    d: AxisTables = op.opdef
    x = op.operands[0]
    take_axes(ctx, op, ctx.value(x), d.tables(op, x.type.shape), ctx.dest(op), d.fill(op))


@rule(Split)
def _split(ctx: LoweringContext, op: Operation) -> None:
    if ctx.fold(op):
        return
    x = op.input
    axis = op.axis % x.type.rank
    start = 0
    for i, size in enumerate(op.opdef.sizes(op, x.type.shape)):
        r = op.results[i]
        if r.uses or id(r) in ctx.outputs:  # a part nothing reads is not copied
            tables: Tables = [None] * x.type.rank
            tables[axis] = np.arange(start, start + size, dtype=np.int64)
            take_axes(ctx, op, ctx.value(x), tables, ctx.dest(op, i))
        start += size


@rule(Expand)
def _expand(ctx: LoweringContext, op: Operation) -> None:
    if not ctx.fold(op):
        elementwise(ctx, op, [ctx.value(op.input)], ctx.dest(op), Var(0))


@rule(ConstantOfShape)
def _constant_of_shape(ctx: LoweringContext, op: Operation) -> None:
    if ctx.fold(op):  # a static shape: a weight
        return
    value = np.array(op.attr("value")[0], dtype=DTYPES[op.attr("dtype")])
    elementwise(ctx, op, [ctx.constant(value, f"{op.result.name or 'fill'}_value")], ctx.dest(op), Var(0))


def _view(ctx: LoweringContext, op: Operation, v: Value, shape: tuple) -> Value:
    return ctx.create(LowView, [v], {}, op, [v.type.with_shape(shape)], [f"{v.name or 'v'}_view"]).result


@rule(DepthToSpace, SpaceToDepth)
def _block_move(ctx: LoweringContext, op: Operation) -> None:
    """The ONNX definition as written: view to 6-D, transpose, view back."""
    if ctx.fold(op):
        return
    d: BlockMove = op.opdef
    x = op.input
    split, perm, out = d.geometry(op, x.type.shape)
    moved = ctx.alloc(TensorType(x.type.dtype, tuple(split[p] for p in perm)), f"{op.result.name or 'moved'}_6d")
    ctx.create("low.generic", [_view(ctx, op, ctx.value(x), split), moved],
               {"maps": [[perm.index(a) for a in range(6)], list(range(6))], "iterators": [PARALLEL] * 6,
                "body": "x0"}, op)
    ctx.map[id(op.result)] = _view(ctx, op, moved, out)
