"""The build pipeline the CLIs and `sofie.compile` share.

model -> graph dialect -> passes -> low dialect -> NAME.hxx + NAME.dat, plus the stats
`sofie-compile --stats` writes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from sofie.backend_cpp.emit import emit
from sofie.backend_cpp.toolchain import DEFAULT_BLAS, blas_flags
from sofie.frontends import load_model
from sofie.ir.core import Module
from sofie.lowering.lower import lower, needed_ops
from sofie.passes.pass_manager import PassStat, op_counts, run_pipeline
from sofie.passes.pipeline import DEFAULT_PIPELINE


@dataclass
class BuildResult:
    graph: Module
    low: Module
    header: str
    weights: str
    stats: dict[str, Any] = field(default_factory=dict)


def build(model: Any, out_dir: str, *, name: str | None = None, blas: str | None = None,
          passes: list[str] | None = None, example_inputs: Any = None) -> BuildResult:
    """Compiles a model into `out_dir` (NAME.hxx, NAME.dat, sofie_rt/)."""
    blas = blas or DEFAULT_BLAS
    blas_flags(blas)  # fail early on a BLAS that is not available
    graph = load_model(model, name=name, example_inputs=example_inputs)
    imported_bytes = intermediate_bytes(graph)
    pipeline = list(DEFAULT_PIPELINE if passes is None else passes)
    pass_stats = run_pipeline(graph, pipeline)
    low = lower(graph)
    out = emit(low, out_dir, blas=blas, source=_describe(model))
    stats = _stats(graph, low, out.weights_bytes, pass_stats)
    stats["intermediate_bytes_as_imported"] = imported_bytes
    return BuildResult(graph, low, out.header, out.weights, stats)


def _describe(model: Any) -> str:
    return os.path.basename(str(model)) if isinstance(model, str | os.PathLike) else type(model).__name__


def intermediate_bytes(graph: Module) -> int:
    """Bytes of every tensor computed at run time (batch 1), views excepted: what a plan
    without reuse would allocate."""
    return sum(r.type.static_size() * r.type.itemsize for op in needed_ops(graph.main)
               if not op.name.endswith(".weight") and not op.opdef.view for r in op.results)


def _stats(graph: Module, low: Module, weights_bytes: int, pass_stats: list[PassStat]) -> dict[str, Any]:
    static, per_event = low.main.attrs["arena"]
    inter = intermediate_bytes(graph)
    return {
        "ops": dict(sorted(op_counts(graph).items())),
        "arena_bytes": static + per_event,
        "arena_static_bytes": static,
        "arena_bytes_per_event": per_event,
        "intermediate_bytes": inter,
        "weights_bytes": weights_bytes,
        "passes": [{"name": s.name, "ops_before": s.ops_before, "ops_after": s.ops_after,
                    "seconds": round(s.seconds, 6)} for s in pass_stats],
    }
