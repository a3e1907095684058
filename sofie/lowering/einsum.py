"""Einsum as one `low.generic` loop nest: a loop per label, the output's labels parallel and
the summed ones reductions, each operand indexed by its labels (a repeated label walks a
diagonal). Contractions that are matrix products were rewritten to MatMul before lowering."""

from __future__ import annotations

from sofie.ir.core import Operation
from sofie.ir.dialects.graph.einsum import Einsum, parse
from sofie.ir.dialects.low import PARALLEL, REDUCTION
from sofie.lowering.context import LoweringContext, rule


@rule(Einsum)
def _einsum(ctx: LoweringContext, op: Operation) -> None:
    e = parse(op, [v.type.shape for v in op.operands])
    loops = list(e.output) + e.summed()
    maps = []
    for labs, v in zip(e.inputs, op.operands):
        # an ellipsis dim of 1 against a longer loop broadcasts
        maps.append([-1 if d == 1 and e.sizes[lab] != 1 else loops.index(lab)
                     for lab, d in zip(labs, v.type.shape)])
    product = "x0"
    for k in range(1, len(op.operands)):
        product = f"mul({product}, x{k})"
    summed = len(loops) > len(e.output)
    ctx.create("low.generic", [*(ctx.value(v) for v in op.operands), ctx.dest(op)],
               {"maps": [*maps, list(range(len(e.output)))],
                "iterators": [PARALLEL] * len(e.output) + [REDUCTION] * (len(loops) - len(e.output)),
                "body": f"add(acc, {product})" if summed else product}, op)
