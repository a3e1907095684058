"""Passes registered by name, and the pipeline that runs them with the verifier in between."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from sofie.errors import SofieError
from sofie.ir.core import Module
from sofie.ir.printer import print_module
from sofie.ir.verifier import verify


class Pass:
    """One transformation of a module. Subclasses set `name` and implement `run`."""

    name: str = ""
    summary: str = ""

    def run(self, module: Module) -> None:
        raise NotImplementedError


_PASSES: dict[str, type[Pass]] = {}


def register_pass(cls: type[Pass]) -> type[Pass]:
    if cls.name in _PASSES:
        raise ValueError(f"pass {cls.name} registered twice")
    _PASSES[cls.name] = cls
    return cls


def available_passes() -> dict[str, type[Pass]]:
    import sofie.passes.all  # noqa: F401  (registers every pass)
    return dict(_PASSES)


def get_pass(name: str) -> Pass:
    passes = available_passes()
    if name not in passes:
        raise SofieError(f"unknown pass '{name}' (known: {', '.join(sorted(passes))})")
    return passes[name]()


def parse_pipeline(text: str) -> list[str]:
    """'fold-constants,fuse,plan-memory' -> names, each checked."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    for n in names:
        get_pass(n)
    return names


@dataclass
class PassStat:
    name: str
    ops_before: int
    ops_after: int
    seconds: float


@dataclass
class PipelineOptions:
    verify_each: bool = True
    print_after_all: bool = False
    print_after: set[str] = field(default_factory=set)
    printer: Callable[[str], None] = print


def op_counts(module: Module) -> Counter:
    return Counter(op.name for f in module.functions.values() for op in f.ops
                   if not op.name.endswith(".weight"))


def run_pipeline(module: Module, names: list[str], options: PipelineOptions | None = None) -> list[PassStat]:
    """Runs the named passes in order; returns per-pass statistics."""
    options = options or PipelineOptions()
    stats = []
    for name in names:
        p = get_pass(name)
        before = sum(op_counts(module).values())
        t0 = time.perf_counter()
        p.run(module)
        dt = time.perf_counter() - t0
        if options.verify_each:
            verify(module, f"pass '{name}'")
        stats.append(PassStat(name, before, sum(op_counts(module).values()), dt))
        if options.print_after_all or name in options.print_after:
            # dumps between passes are for reading: megabytes of weight blobs would drown them
            options.printer(f"// ----- IR after {name} -----\n" + print_module(module, elide=True))
    return stats
