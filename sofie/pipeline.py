"""The pass pipeline: passes by name, scheduled across IR levels and run with the verifier in
between. It sits above lowering so that `lower` is a pass like the others.

The default pipeline: shapes first (constant shape operands let folding and canonicalization
see static values), then folding, transposes sunk and cancelled (a channels-last model's
layout changes meet in pairs), canonical forms, BN folding (which wants Conv -> BN adjacent,
after identity and dropout are gone), fusion (which wants BN gone: Conv -> BN -> Relu would not
fuse), cleanup, f16 widening (ops with no f16 kernel compute in f32; every build runs it, as
it runs `lower`), then lowering and the low passes, the memory plan last over the final op list.
"""

from __future__ import annotations

import importlib
import pkgutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import sofie.lowering  # noqa: F401  (registers `lower`)
import sofie.passes
import sofie.passes.low
from sofie.errors import SofieError
from sofie.ir.core import Module
from sofie.ir.printer import print_module
from sofie.ir.verifier import verify
from sofie.passes.pass_manager import GRAPH, LOW, PASSES, Pass, module_level, op_counts

GRAPH_PIPELINE: list[str] = ["infer-shapes", "fold-constants", "sink-transposes", "canonicalize",
                             "fold-batchnorm", "fuse", "cse", "dce", "widen-f16"]
LOW_PIPELINE: list[str] = ["lower", "fuse-conv-pool", "fuse-loops", "plan-memory"]
DEFAULT_PIPELINE: list[str] = GRAPH_PIPELINE + LOW_PIPELINE

# What every build runs after its graph passes, even at -O0: ops lowering has no f16 kernel
# for are widened, and the C++ printer needs planned IR.
LOWERING_PIPELINE: list[str] = ["widen-f16", "lower", "plan-memory"]
# The memory plans: a build runs exactly one, the last; `plan-memory` unless the pipeline asks
# for the other.
PLAN_PASSES: tuple[str, ...] = ("plan-memory", "plan-memory-no-reuse")
LOWER = "lower"
DEFAULT = "default"  # in a pipeline text: the default pipeline (`default,cse` extends it)


def _import_pass_modules() -> None:
    """Imports every module of sofie/passes and sofie/passes/low, so each pass registers itself:
    a new pass module needs no edit to a central list."""
    for package in (sofie.passes, sofie.passes.low):
        for info in pkgutil.iter_modules(package.__path__, package.__name__ + "."):
            if not info.ispkg:
                importlib.import_module(info.name)


def available_passes() -> dict[str, type[Pass]]:
    """Every registered pass by name."""
    _import_pass_modules()
    return dict(PASSES)


def passes_in_run_order() -> list[tuple[str, type[Pass]]]:
    """Every pass, the default pipeline's in the order it runs them, then the others by name."""
    passes = available_passes()
    order = DEFAULT_PIPELINE + sorted(n for n in passes if n not in DEFAULT_PIPELINE)
    return [(n, passes[n]) for n in order]


def get_pass(name: str) -> Pass:
    passes = available_passes()
    if name not in passes:
        raise SofieError(f"unknown pass '{name}' (known: {', '.join(sorted(passes))})")
    return passes[name]()


def parse_pipeline(text: str) -> list[str]:
    """'fold-constants,fuse,plan-memory' -> names, each checked; `default` stands for the
    default pipeline, so 'default,cse' runs it and then cse (as MLIR's named pipelines)."""
    names: list[str] = []
    for n in (n.strip() for n in text.split(",")):
        if n == DEFAULT:
            names += DEFAULT_PIPELINE
        elif n:
            get_pass(n)
            names.append(n)
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




def schedule(names: list[str], level: str) -> list[str]:
    """The passes to run for `names` starting at `level`: `lower` is inserted before the first
    low-level pass when the module is still graph IR; a graph pass after that is an error."""
    out: list[str] = []
    for name in names:
        p = get_pass(name)
        if p.level != level and p.level == LOW and level == GRAPH and LOWER not in out:
            out.append(LOWER)
            level = LOW
        if p.level != level:
            raise SofieError(f"pass '{name}' runs on {p.level} IR, but the module is {level} IR at that "
                             f"point{' (after lower)' if level == LOW else ''}")
        out.append(name)
        level = p.produces or level
    return out


def run_pipeline(module: Module, names: list[str],
                 options: PipelineOptions | None = None) -> tuple[Module, list[PassStat]]:
    """Runs the named passes in order (inserting `lower` where a low pass needs it); returns
    the resulting module, a new one once lowered, and per-pass statistics."""
    options = options or PipelineOptions()
    stats = []
    for name in schedule(names, module_level(module)):
        p = get_pass(name)
        before = sum(op_counts(module).values())
        t0 = time.perf_counter()
        module = p.run(module) or module
        dt = time.perf_counter() - t0
        if options.verify_each:
            verify(module, f"pass '{name}'")
        stats.append(PassStat(name, before, sum(op_counts(module).values()), dt))
        if options.print_after_all or name in options.print_after:
            # elided: megabytes of weights between every pass would bury the IR
            options.printer(f"// ----- IR after {name} -----\n" + print_module(module, elide=True))
    return module, stats
