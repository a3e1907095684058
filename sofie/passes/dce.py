"""Dead-code elimination: ops nobody reads, and weights no op refers to."""

from __future__ import annotations

from sofie.ir.core import Function, Module, Operation
from sofie.ir.registry import CONSTANT_LIKE, PURE
from sofie.passes.pass_manager import Pass, register_pass


def is_dead(op: Operation, f: Function) -> bool:
    # an op without results only exists for its effect (a low-level store, a call): keep it
    if not op.results or not op.has_trait(PURE):
        return False
    outputs = {id(v) for v in f.outputs}
    return all(not r.uses and id(r) not in outputs for r in op.results)


def eliminate_dead_ops(f: Function) -> int:
    """Erases dead ops, last first, so a chain dies in one sweep."""
    removed = 0
    for op in reversed(list(f.ops)):
        if is_dead(op, f):
            f.erase(op)
            removed += 1
    return removed


def eliminate_unused_weights(module: Module) -> int:
    used = {op.attrs.get("ref") for f in module.functions.values() for op in f.ops
            if op.has_trait(CONSTANT_LIKE)}
    dead = [name for name in module.weights if name not in used]
    for name in dead:
        del module.weights[name]
    return len(dead)


def eliminate_dead_code(module: Module) -> int:
    removed = sum(eliminate_dead_ops(f) for f in module.functions.values())
    return removed + eliminate_unused_weights(module)


@register_pass
class DeadCodeElimination(Pass):
    name = "dce"
    summary = "remove ops whose results nobody uses (no side effects) and unreferenced weights"

    def run(self, module: Module) -> None:
        eliminate_dead_code(module)
