"""What a pass is: a named transformation of a module at one IR level, registered by name.
The pipeline that schedules and runs passes is `sofie.pipeline` (it also knows `lower`, which
registers from the lowering layer above this one)."""

from __future__ import annotations

from collections import Counter

from sofie.ir.core import Module
from sofie.ir.registry import CONSTANT_LIKE

GRAPH = "graph"  # ONNX-level ops
LOW = "low"      # kernels, loops and allocations (after `lower`)


class Pass:
    """One transformation of a module. Subclasses set `name`, the IR `level` they run at, and
    implement `run`, which changes the module in place or returns a new one (`lower`, whose
    result is at level `produces`)."""

    name: str = ""
    summary: str = ""
    level: str = GRAPH
    produces: str | None = None

    def run(self, module: Module) -> Module | None:
        raise NotImplementedError


def module_level(module: Module) -> str:
    """The level an IR module is at: low once any op is from the low dialect."""
    ops = (op for f in module.functions.values() for op in f.ops)
    return LOW if any(op.dialect == LOW for op in ops) else GRAPH


PASSES: dict[str, type[Pass]] = {}


def register_pass(cls: type[Pass]) -> type[Pass]:
    if cls.name in PASSES:
        raise ValueError(f"pass {cls.name} registered twice")
    PASSES[cls.name] = cls
    return cls


def op_counts(module: Module) -> Counter:
    return Counter(op.name for f in module.functions.values() for op in f.ops
                   if not op.has_trait(CONSTANT_LIKE))
