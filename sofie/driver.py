"""The build pipeline the CLIs and `sofie.compile` share.

model -> graph dialect -> passes -> low dialect -> NAME.hxx + NAME.dat, plus the stats
`sofie-compile --stats` writes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from sofie.backend_cpp.emit import emit
from sofie.backend_cpp.symbols import default_max_batch, model_symbols
from sofie.backend_cpp.toolchain import blas_flags, default_blas
from sofie.frontends import load_model
from sofie.ir.core import Module
from sofie.ir.registry import CONSTANT_LIKE, VIEW
from sofie.lowering.lower import needed_ops
from sofie.passes.low.plan_memory import arena_bytes
from sofie.passes.pass_manager import module_level
from sofie.pipeline import (
    DEFAULT_PIPELINE,
    LOW,
    LOWERING_PIPELINE,
    PLAN_PASSES,
    PassStat,
    get_pass,
    op_counts,
    parse_pipeline,
    run_pipeline,
)


@dataclass
class BuildResult:
    graph: Module
    low: Module
    header: str
    weights: str
    stats: dict[str, Any] = field(default_factory=dict)


def build(model: Any, out_dir: str, *, name: str | None = None, blas: str | None = None,
          passes: list[str] | None = None, example_inputs: Any = None, dynamic_shapes: Any = None,
          dims: dict[str, int] | None = None, source: str | None = None, profile: bool = False) -> BuildResult:
    """Compiles a model into `out_dir` (NAME.hxx, NAME.dat, sofie_rt/). `dims` gives default
    maxima of dim symbols other than the batch ({"P": 128}); the Session may override them.
    `model` may be an imported Module too; `source` then names where it came from. `profile`
    makes run() time each op block (Session::profile_seconds())."""
    blas = blas or default_blas()
    blas_flags(blas)  # fail early on a BLAS that is not available
    graph = model if isinstance(model, Module) else load_model(model, name=name, example_inputs=example_inputs,
                                                               dynamic_shapes=dynamic_shapes)
    imported_bytes = intermediate_bytes(graph)
    # `default` in `passes` stands for the default pipeline, as in --pass-pipeline
    pipeline = list(DEFAULT_PIPELINE) if passes is None else parse_pipeline(",".join(passes))
    lowered = module_level(graph) == LOW  # IR text written after `lower`: its graph passes ran
    graph_passes = [] if lowered else [p for p in pipeline if get_pass(p).level != LOW and p not in LOWERING_PIPELINE]
    # then lowering (unless the input was lowered already), the low passes asked for, and the
    # memory plan last: the printer needs planned low IR whatever the pipeline asked for; a
    # plan without reuse only when the pipeline names it
    plan = next((p for p in reversed(pipeline) if p in PLAN_PASSES), "plan-memory")
    low_passes = [p for p in pipeline if p not in graph_passes and p not in LOWERING_PIPELINE
                  and p not in PLAN_PASSES and not (lowered and get_pass(p).level != LOW)]
    low_passes = ([] if lowered else [p for p in LOWERING_PIPELINE if p not in PLAN_PASSES]) + low_passes + [plan]
    graph, graph_stats = run_pipeline(graph, graph_passes)
    counts = op_counts(graph)
    intermediates = 0 if lowered else intermediate_bytes(graph)
    if "arena_terms" in graph.main.attrs:  # planned already (sofie-opt --plan-memory)
        low_passes = [p for p in low_passes if p not in ("fuse-loops", *PLAN_PASSES)]
        plan = "as planned in the input"
    low, low_stats = run_pipeline(graph, low_passes)
    out = emit(low, out_dir, blas=blas, source=source or _describe(model), dims=dims, profile=profile)
    stats = _stats(counts, intermediates, low, out.weights_bytes, graph_stats + low_stats)
    symbols = model_symbols(low.main, dims)
    stats["symbols"] = {"batch": symbols.batch, "dims": dict(zip(symbols.dims, symbols.max_dims)),
                        "max_batch": default_max_batch(low.main, symbols)}
    stats["intermediate_bytes_as_imported"] = imported_bytes
    stats["memory_plan"] = plan
    return BuildResult(graph, low, out.header, out.weights, stats)


def _describe(model: Any) -> str:
    return os.path.basename(str(model)) if isinstance(model, str | os.PathLike) else type(model).__name__


def intermediate_bytes(graph: Module) -> int:
    """Bytes of every tensor computed at run time (batch 1), views excepted: what a plan
    without reuse would allocate."""
    return sum(r.type.static_size() * r.type.itemsize for op in needed_ops(graph.main)
               if not op.has_trait(CONSTANT_LIKE) and not op.has_trait(VIEW) for r in op.results)


def _stats(counts: dict[str, int], intermediates: int, low: Module, weights_bytes: int,
           pass_stats: list[PassStat]) -> dict[str, Any]:
    f = low.main
    return {
        "ops": dict(sorted(counts.items())),
        "low_ops": dict(sorted(op_counts(low).items())),
        "arena_bytes": arena_bytes(f),
        "peak_live_bytes": f.attrs["peak_live_bytes"],
        "arena_terms": f.attrs["arena_terms"],
        "arena": f.attrs["arena"],
        "intermediate_bytes": intermediates,
        "weights_bytes": weights_bytes,
        "passes": [{"name": s.name, "ops_before": s.ops_before, "ops_after": s.ops_after,
                    "seconds": round(s.seconds, 6)} for s in pass_stats],
    }
