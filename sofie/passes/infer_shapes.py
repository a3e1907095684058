"""Shape inference: shape-like operands computed at run time from static information become
constant weights, so the Shape -> Gather -> Unsqueeze -> Concat chain PyTorch exports for a
dynamic batch dies, and every op's result type is recomputed from its shape rule.

A target such as [N, 512] (N the batch symbol) is written as [0, 512] when N sits at the same
axis of the input (ONNX Reshape's 0 copies that dim), or as [-1, 512] otherwise.
"""

from __future__ import annotations

import numpy as np

from sofie.errors import SofieError
from sofie.ir.core import Function, Module, Operation, is_constant
from sofie.ir.dialects.graph.shape import Reshape, reshape_dims
from sofie.ir.folding import known_value
from sofie.ir.registry import CONSTANT_LIKE
from sofie.ir.symbolic import Sym
from sofie.ir.types import numpy_dtype
from sofie.passes.pass_manager import Pass, register_pass
from sofie.passes.rewrite import Pattern, Rewriter, apply_patterns


def reshape_target(op: Operation) -> np.ndarray | None:
    """An integer Reshape target giving the op's (already inferred) result shape: a symbolic
    dim is 0 (copy) at the same axis of the input, else the one -1."""
    src, dst = op.data.type.shape, op.result.type.shape
    allowzero = bool(op.allowzero)
    target = []
    for i, d in enumerate(dst):
        if isinstance(d, int):
            target.append(d)
        else:
            target.append(0 if i < len(src) and src[i] == d and not allowzero else -1)
    if target.count(-1) > 1 or (0 in target and any(d == 0 for d in dst)):
        return None  # two unknowns, or a real 0-sized dim that 0 would misread as "copy"
    try:
        same = reshape_dims(op, src, target, allowzero) == tuple(dst)
    except SofieError:
        return None
    return np.array(target, np.int64) if same else None


class ConstantShapeOperand(Pattern):
    """An operand declared compile-time (`:const`) computed by ops becomes a constant."""

    root = None

    def match(self, op: Operation, module: Module) -> tuple[int, np.ndarray] | None:
        for i in sorted(op.opdef.compile_time_operands):
            v = op.operands[i] if i < len(op.operands) else None
            if v is None or is_constant(v):
                continue
            value = known_value(v)
            if value is None:
                continue
            if any(isinstance(e, Sym) for e in value.flat):
                value = reshape_target(op) if op.isa(Reshape) else None
                if value is None:
                    continue
            # the operand's own element type: not every compile-time operand is a shape (a Pad
            # value of -inf must stay a float, which an int64 cast made garbage)
            return i, np.asarray(value).astype(numpy_dtype(v.type.dtype))
        return None

    def rewrite(self, op: Operation, match: tuple[int, np.ndarray], rw: Rewriter) -> None:
        i, value = match
        name = op.operands[i].name or f"{op.loc}/shape"
        rw.set_operand(op, i, rw.weight(value, name, loc=op.loc))


def refresh_types(f: Function) -> int:
    """Re-runs every shape rule in schedule order; returns how many results changed type."""
    changed = 0
    for op in f.ops:
        if op.has_trait(CONSTANT_LIKE):
            continue
        try:
            types = op.opdef.infer(op)
        except NotImplementedError:
            continue
        for r, t in zip(op.results, types, strict=True):
            if r.type != t:
                r.type = t
                changed += 1
    # a deliberate change of interface: the signature follows the returned values
    f.set_outputs(f.outputs)
    return changed


@register_pass
class InferShapes(Pass):
    name = "infer-shapes"
    summary = "turn shape operands computed from static shapes into constants; rerun shape rules"

    def run(self, module: Module) -> None:
        apply_patterns(module, [ConstantShapeOperand()])
        for f in module.functions.values():
            refresh_types(f)
