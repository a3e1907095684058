"""Dense layers: Gemm and MatMul become one BLAS-shim GEMM with a bias/activation epilogue."""

from __future__ import annotations

from sofie.errors import SofieError
from sofie.ir.core import Operation
from sofie.ir.dialects.graph.nn import Gemm, MatMul
from sofie.ir.dialects.scalar import Var
from sofie.lowering.context import LoweringContext, rule
from sofie.lowering.epilogue import epilogue
from sofie.lowering.loops import elementwise


@rule(Gemm)
def _gemm(ctx: LoweringContext, op: Operation) -> None:
    c = op.C
    m, n = op.result.type.shape
    y = ctx.dest(op)
    bias, c_low = "none", ctx.value(c)
    if c is not None:
        if c.type.shape in ((n,), (1, n)) and op.beta == 1.0:
            bias = "row"  # added by the GEMM epilogue
        elif c.type.shape == (m, n):
            bias = "full"
        else:
            # any other broadcast ([1], [M, 1], ...) or a row bias scaled by beta: broadcast C into
            # Y first, then the GEMM accumulates onto Y with beta (`full` with C == Y copies nothing)
            elementwise(ctx, op, [c_low], y, Var(0))
            bias, c_low = "full", y
    ctx.create("low.gemm", [ctx.value(op.A), ctx.value(op.B), c_low, y],
               {"transA": op.transA, "transB": op.transB, "alpha": op.alpha,
                "beta": op.beta, "bias": bias, **epilogue(op)}, op)


@rule(MatMul)
def _matmul(ctx: LoweringContext, op: Operation) -> None:
    if op.B.type.rank > 2:
        raise SofieError(f"{op.describe()}: MatMul with a {op.B.type.rank}-D right operand is not "
                         f"supported yet (only [K, N] or [K] weights/activations)")
    y = ctx.dest(op)
    ctx.create("low.gemm", [ctx.value(op.A), ctx.value(op.B), None, y], epilogue(op), op)
