"""Elementwise ops: one `low.generic` each, whose body is the op's declared scalar body."""

from __future__ import annotations

from sofie.ir.core import Operation
from sofie.ir.dialects.graph.elementwise import Elementwise
from sofie.ir.registry import all_ops
from sofie.lowering.context import RULES, LoweringContext
from sofie.lowering.loops import elementwise


def _lower(ctx: LoweringContext, op: Operation) -> None:
    # the declaration refused element types without a kernel; f16 reads and writes through f32
    inputs = [ctx.value(v) for v in op.operands]
    elementwise(ctx, op, inputs, ctx.dest(op), op.opdef.body(op))


def _declare() -> None:
    for name, d in all_ops().items():
        if isinstance(d, Elementwise):
            RULES[name] = _lower


_declare()
