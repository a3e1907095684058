"""The activation epilogue a fused Conv / Gemm / MatMul carries into its kernel: the scalar body
of the fused elementwise op, defined once in its declaration."""

from __future__ import annotations

from sofie.ir.core import Operation
from sofie.ir.dialects.graph.elementwise import activation_body


def epilogue(op: Operation) -> dict:
    if not op.activation:
        return {}
    return {"epilogue": str(activation_body(op.activation, list(op.activation_params)))}
