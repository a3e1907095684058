"""Gather, GatherElements, GatherND, ScatterElements, ScatterND and Trilu: kernels of
sofie_rt/indexing.hxx that check run-time indices; Compress: a Gather of its kept positions;
EyeLike: a constant of its input's shape; OneHot: a loop comparing each index with the positions 0..depth-1.
Constant indices out of range are refused here, at compile time."""

from __future__ import annotations

import numpy as np

from sofie.errors import SofieError
from sofie.ir.core import Operation
from sofie.ir.dialects.graph.indexing import (
    INDEX_TYPES,
    Compress,
    EyeLike,
    GatherElements,
    GatherND,
    OneHot,
    ReverseSequence,
    ScatterElements,
    ScatterLegacy,
    ScatterND,
    Trilu,
    check_constant_indices,
)
from sofie.ir.dialects.graph.shape import Gather
from sofie.ir.dialects.low import PARALLEL, View
from sofie.ir.dialects.low import GatherAxis as LowGather
from sofie.ir.folding import known_value
from sofie.ir.types import TensorType
from sofie.lowering.context import LoweringContext, rule
from sofie.lowering.slicing import MAX_RANK


def _static(op: Operation, dims: tuple, what: str) -> list[int]:
    if not all(isinstance(d, int) for d in dims):
        raise SofieError(f"{op.describe()}: the {what} {list(dims)} must be static")
    return list(dims)


def _checked(op: Operation, sizes: list[int] | int) -> None:
    if op.indices.type.dtype not in INDEX_TYPES:
        raise SofieError(f"{op.describe()}: indices are {op.indices.type.dtype}, expected one of "
                         f"{', '.join(INDEX_TYPES)}")
    if op.data.type.rank > MAX_RANK:
        raise SofieError(f"{op.describe()}: rank {op.data.type.rank} is above the {MAX_RANK} sofie's kernels take")
    check_constant_indices(op, sizes)


@rule(Gather)
def _gather(ctx: LoweringContext, op: Operation) -> None:
    axis = op.axis % op.data.type.rank
    _checked(op, _static(op, op.data.type.shape[axis:axis + 1], "gathered axis")[0])
    if not ctx.fold(op):
        ctx.create("low.gather", [ctx.value(op.data), ctx.value(op.indices), ctx.dest(op)], {"axis": axis}, op)


@rule(Compress)
def _compress(ctx: LoweringContext, op: Operation) -> None:
    """A Gather of the kept positions (known at compile time), over the flattened input when
    there is no axis."""
    if ctx.fold(op):
        return
    x, axis = op.input.type, op.attr("axis")
    kept = ctx.constant(op.opdef.kept(op), f"{op.result.name or 'compress'}_kept")
    data = ctx.value(op.input)
    if not axis:
        flat = x.with_shape((int(np.prod(x.shape, dtype=np.int64)),))
        data = ctx.create(View, [data], {}, op, [flat], [f"{op.result.name or 'compress'}_flat"]).result
    ctx.create("low.gather", [data, kept, ctx.dest(op)], {"axis": axis[0] % x.rank if axis else 0}, op)


@rule(GatherElements)
def _gather_elements(ctx: LoweringContext, op: Operation) -> None:
    axis = op.axis % op.data.type.rank
    _checked(op, _static(op, op.data.type.shape[axis:axis + 1], "gathered axis")[0])
    if not ctx.fold(op):
        ctx.create("low.gather_elements", [ctx.value(op.data), ctx.value(op.indices), ctx.dest(op)],
                   {"axis": axis}, op)


@rule(GatherND)
def _gather_nd(ctx: LoweringContext, op: Operation) -> None:
    b, k = op.batch_dims, op.indices.type.shape[-1]
    _checked(op, _static(op, op.data.type.shape[b:b + k], "indexed dims"))
    if not ctx.fold(op):
        ctx.create("low.gather_nd", [ctx.value(op.data), ctx.value(op.indices), ctx.dest(op)],
                   {"batch_dims": b}, op)


@rule(ScatterElements, ScatterLegacy)
def _scatter_elements(ctx: LoweringContext, op: Operation) -> None:
    axis = op.axis % op.data.type.rank
    _checked(op, _static(op, op.data.type.shape[axis:axis + 1], "scattered axis")[0])
    if not ctx.fold(op):
        ctx.create("low.scatter_elements", [ctx.value(op.data), ctx.value(op.indices), ctx.value(op.updates),
                                            ctx.dest(op)], {"axis": axis, "reduction": op.reduction}, op)


@rule(ScatterND)
def _scatter_nd(ctx: LoweringContext, op: Operation) -> None:
    _checked(op, _static(op, op.data.type.shape[:op.indices.type.shape[-1]], "indexed dims"))
    if not ctx.fold(op):
        ctx.create("low.scatter_nd", [ctx.value(op.data), ctx.value(op.indices), ctx.value(op.updates),
                                      ctx.dest(op)], {"reduction": op.reduction}, op)


@rule(ReverseSequence)
def _reverse_sequence(ctx: LoweringContext, op: Operation) -> None:
    if not ctx.fold(op):
        ctx.create("low.reverse_sequence", [ctx.value(op.input), ctx.value(op.sequence_lens), ctx.dest(op)],
                   {"time_major": int(op.attr("time_axis") == 0)}, op)


@rule(Trilu)
def _trilu(ctx: LoweringContext, op: Operation) -> None:
    if not ctx.fold(op):
        ctx.create("low.trilu", [ctx.value(op.input), ctx.value(op.k), ctx.dest(op)], {"upper": op.upper}, op)


@rule(EyeLike)
def _eye_like(ctx: LoweringContext, op: Operation) -> None:
    ctx.map[id(op.result)] = ctx.constant(op.opdef.value(op), op.result.name or "eye")


@rule(OneHot)
def _one_hot(ctx: LoweringContext, op: Operation) -> None:
    """y = on where int(index) (negative: + depth) equals the position along `axis`, else off;
    an index outside [-depth, depth) matches no position (all off), as ONNX says."""
    if ctx.fold(op):
        return
    values = known_value(op.values)
    depth, rank = op.opdef.depth(op), op.result.type.rank
    axis = op.axis % rank
    positions = ctx.constant(np.arange(depth, dtype=np.int64), f"{op.result.name or 'one_hot'}_positions")
    index = "cast_i64(x0)"
    hit = f"eq(select(lt({index}, 0), add({index}, {depth}), {index}), x1)"
    maps = [[a for a in range(rank) if a != axis], [axis]]
    if values is None or values.dtype == object:  # [off, on] known at run time: gather them by hit
        hot = ctx.alloc(TensorType("i64", op.result.type.shape), f"{op.result.name or 'one_hot'}_hot")
        ctx.create("low.generic", [ctx.value(op.indices), positions, hot],
                   {"maps": [*maps, list(range(rank))], "iterators": [PARALLEL] * rank,
                    "body": f"select({hit}, 1, 0)"}, op)
        ctx.create(LowGather, [ctx.value(op.values), hot, ctx.dest(op)], {"axis": 0}, op)
        return
    off, on = (ctx.constant(values.reshape(-1)[k:k + 1].reshape(()), f"{op.result.name or 'one_hot'}_{n}")
               for k, n in ((0, "off"), (1, "on")))
    body = f"select({hit}, x3, x2)"
    ctx.create("low.generic", [ctx.value(op.indices), positions, off, on, ctx.dest(op)],
               {"maps": [*maps, [], [], list(range(rank))],
                "iterators": [PARALLEL] * rank, "body": body}, op)
