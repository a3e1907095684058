"""Constant folding: an op whose operands are all known at compile time becomes a weight.

Known means a weight with data, or a value computed from static shapes (Shape -> Gather). The
values come from the one constant folder (`sofie.ir.folding`), which runs each op's numpy
reference, so every op with a reference folds without a per-op rule here. This pass only
decides which folds pay.
"""

from __future__ import annotations

import numpy as np

from sofie.ir.core import Module, Operation
from sofie.ir.folding import fold
from sofie.ir.registry import CONSTANT_LIKE, PURE
from sofie.passes.pass_manager import Pass, register_pass
from sofie.passes.rewrite import Pattern, Rewriter, apply_patterns, is_output

# A folded result may be this many elements even when it is larger than its inputs
# (ConstantOfShape, Expand, Tile grow); beyond it, folding only pays if it does not grow the
# weights file, so a [1, 64, 56, 56] fill stays a cheap run-time kernel.
GROWTH_LIMIT = 1 << 16


def _operand_elements(op: Operation) -> int:
    return sum(v.type.static_size() for v in op.operands if v is not None)


def foldable(op: Operation) -> bool:
    # a returned value stays computed: the backend writes outputs into the caller's buffers
    # from ops, and a model returning a constant is not worth a special case there
    return (bool(op.operands) and bool(op.results) and not op.has_trait(CONSTANT_LIKE)
            and not any(is_output(r) for r in op.results)
            and op.has_trait(PURE) and op.opdef.has_reference
            and all(r.type.is_static for r in op.results)
            and sum(r.type.static_size() for r in op.results) <= max(GROWTH_LIMIT, _operand_elements(op)))


class FoldConstant(Pattern):
    root = None

    def match(self, op: Operation, module: Module) -> list[np.ndarray] | None:
        return fold(op) if foldable(op) else None

    def rewrite(self, op: Operation, values: list[np.ndarray], rw: Rewriter) -> None:
        weights = [rw.weight(v, r.name or op.loc or "const", loc=op.loc)
                   for r, v in zip(op.results, values, strict=True)]
        rw.replace(op, weights)


@register_pass
class FoldConstants(Pass):
    name = "fold-constants"
    summary = "evaluate ops whose operands are compile-time constants into new weights"

    def run(self, module: Module) -> None:
        apply_patterns(module, [FoldConstant()])
