"""Resize: one `low.resize_axis` kernel per resized axis, outermost first, each reading the
axis's index/weight tables (`sofie.ir.dialects.graph.resize.plan`) as weights of the model."""

from __future__ import annotations

from sofie.ir.core import Operation
from sofie.ir.dialects.graph.resize import Resize, plan
from sofie.ir.types import FLOATS, NUMERIC, numpy_dtype
from sofie.lowering.context import LoweringContext, refuse, rule


@rule(Resize)
def _resize(ctx: LoweringContext, op: Operation) -> None:
    dtype = op.X.type.dtype
    # nearest moves elements of any numeric type; interpolation needs a float type
    supported = NUMERIC if op.mode == "nearest" else FLOATS
    if dtype not in supported:
        refuse(op, dtype, supported)
    tables = plan(op, op.X.type.shape, known=True).tables
    y = ctx.dest(op)
    x = ctx.value(op.X)
    if not tables:
        ctx.create("low.copy", [x, y], {}, op)
        return
    name = op.result.name or "resize"
    shape = list(op.X.type.shape)
    for k, t in enumerate(tables):
        shape[t.axis] = t.index.shape[0]
        out = y if k == len(tables) - 1 else ctx.alloc(x.type.with_shape(tuple(shape)), f"{name}_axis{t.axis}")
        index = ctx.constant(t.index, f"{name}_index{t.axis}")
        weight = None if t.weight is None else ctx.constant(t.weight.astype(numpy_dtype(dtype)),
                                                            f"{name}_weight{t.axis}")
        ctx.create("low.resize_axis", [x, index, weight, out],
                   {"axis": t.axis, "extrapolation_value": op.extrapolation_value}, op)
        x = out
