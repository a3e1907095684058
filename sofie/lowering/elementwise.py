"""Elementwise ops: one `low.generic` each, whose body is the op's declared scalar body."""

from __future__ import annotations

from sofie.ir.core import Operation
from sofie.ir.dialects.graph.elementwise import BinaryOp, UnaryOp
from sofie.ir.registry import all_ops
from sofie.lowering.context import RULES, LoweringContext, refuse
from sofie.lowering.loops import elementwise


def _lower(ctx: LoweringContext, op: Operation) -> None:
    dtype = op.result.type.dtype
    if dtype not in op.opdef.spec.types:  # f16: accepted in graph IR, no loop computes on it
        refuse(op, dtype, op.opdef.spec.types)
    inputs = [ctx.value(v) for v in op.operands]
    elementwise(ctx, op, inputs, ctx.dest(op), op.opdef.body(op))


def _declare() -> None:
    for name, d in all_ops().items():
        if isinstance(d, UnaryOp | BinaryOp):
            RULES[name] = _lower


_declare()
