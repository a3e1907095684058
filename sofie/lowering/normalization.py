"""Normalization: BatchNormalization (when not folded away) and Softmax kernels."""

from __future__ import annotations

from sofie.ir.core import Operation
from sofie.ir.dialects.graph.nn import BatchNormalization, Softmax
from sofie.ir.dialects.low import BatchNormalization as LowBatchNormalization
from sofie.ir.dialects.low import Softmax as LowSoftmax
from sofie.lowering.context import LoweringContext, rule


@rule(BatchNormalization)
def _bn(ctx: LoweringContext, op: Operation) -> None:
    ctx.create(LowBatchNormalization, [ctx.value(v) for v in op.operands] + [ctx.dest(op)],
               {"epsilon": op.epsilon}, op)


@rule(Softmax)
def _softmax(ctx: LoweringContext, op: Operation) -> None:
    rank = op.result.type.rank
    ctx.create(LowSoftmax, [ctx.value(op.X), ctx.dest(op)], {"axis": op.axis % rank}, op)
