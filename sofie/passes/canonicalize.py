"""The canonicalize pass: the patterns of `canonical_patterns` to a fixpoint."""

from __future__ import annotations

from sofie.ir.core import Module
from sofie.passes.canonical_patterns import CANONICAL_PATTERNS
from sofie.passes.pass_manager import Pass, register_pass
from sofie.passes.rewrite import apply_patterns


@register_pass
class Canonicalize(Pass):
    name = "canonicalize"
    summary = ("drop identity/dropout, merge reshape and transpose chains, MatMul+Add -> Gemm, "
               "fold transposes into Gemm transA/transB")

    def run(self, module: Module) -> None:
        apply_patterns(module, CANONICAL_PATTERNS)
