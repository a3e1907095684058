"""Constant folding: an op whose operands are all known at compile time becomes a weight.

Known means a weight with data, or (for ops declared `symbolic`, e.g. Shape -> Gather) a value
computed from static shapes. Each op's numpy reference gives the value, so every op with a
reference folds without a per-op rule here.
"""

from __future__ import annotations

import numpy as np

from sofie.ir.core import Module, Operation
from sofie.ir.symbolic import symbolic_value
from sofie.ir.types import numpy_dtype
from sofie.passes.pass_manager import Pass, register_pass
from sofie.passes.rewrite import Pattern, Rewriter, apply_patterns, constants, is_output

# A folded result may be this many elements even when it is larger than its inputs
# (ConstantOfShape, Expand, Tile grow); beyond it, folding only pays if it does not grow the
# weights file, so a [1, 64, 56, 56] fill stays a cheap run-time kernel.
GROWTH_LIMIT = 1 << 16


def _operand_elements(op: Operation) -> int:
    return sum(v.type.static_size() for v in op.operands if v is not None)


def _evaluate(op: Operation, module: Module) -> list[np.ndarray] | None:
    arrays = constants(module, op.operands)
    if arrays is not None:
        with np.errstate(all="ignore"):
            return op.opdef.evaluate(op, arrays)
    if getattr(op.opdef, "symbolic", False):
        values = [symbolic_value(r) for r in op.results]
        if all(v is not None and v.dtype != object for v in values):
            return values
    return None


def foldable(op: Operation) -> bool:
    d = op.opdef
    # a returned value stays computed: the backend writes outputs into the caller's buffers
    # from ops, and a model returning a constant is not worth a special case there
    return (bool(op.operands) and bool(op.results) and not op.name.endswith(".weight")
            and not any(is_output(r) for r in op.results)
            and not d.side_effects and d.has_reference
            and all(r.type.is_static for r in op.results)
            and sum(r.type.static_size() for r in op.results) <= max(GROWTH_LIMIT, _operand_elements(op)))


class FoldConstant(Pattern):
    root = None

    def match(self, op: Operation, module: Module) -> list[np.ndarray] | None:
        if not foldable(op):
            return None
        try:
            values = _evaluate(op, module)
        except Exception:  # noqa: BLE001  (a reference that cannot run here leaves the op to run time)
            return None
        if values is None or len(values) != len(op.results):
            return None
        out = []
        for r, v in zip(op.results, values, strict=True):
            v = np.asarray(v)
            if v.dtype == object or v.size != r.type.static_size():
                return None
            out.append(np.ascontiguousarray(v.astype(numpy_dtype(r.type.dtype)).reshape(r.type.shape)))
        return out

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
