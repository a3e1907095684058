"""Dense layers: Gemm and MatMul become one BLAS-shim GEMM with a bias/activation epilogue
(float, double), a batched MatMul a GEMM per batch element; a constant float32 B (a Linear
layer's weight) is packed here, once, for the built-in kernel (gemm_pack.py); on integers, a `low.generic`
reduction over (Y's axes, K). Det: a kernel (LU with partial pivoting in double); DFT: a
kernel (a direct sum over a twiddle table, in double)."""

from __future__ import annotations

from sofie.errors import SofieError
from sofie.ir.core import Operation, Value, is_constant
from sofie.ir.dialects.graph.elementwise import activation_body
from sofie.ir.dialects.graph.nn import Det, Gemm, MatMul
from sofie.ir.dialects.graph.signal import DFT
from sofie.ir.dialects.low import PARALLEL, REDUCTION
from sofie.ir.dialects.low import View as LowView
from sofie.ir.dialects.scalar import Call, Const, Expr, Var, substitute
from sofie.ir.registry import lookup
from sofie.lowering.context import LoweringContext, refuse, rule
from sofie.lowering.epilogue import epilogue
from sofie.lowering.gemm_pack import packed_b
from sofie.lowering.loops import broadcast_map, elementwise

# ONNX MatMul / Gemm integer types, computed by loops (the GEMM kernel has float and double)
INTEGER_TYPES = ("i32", "i64", "u32", "u64")


def _use_kernel(op: Operation) -> bool:
    """True for the GEMM kernel, False for integer loops; other types are refused."""
    dtype = op.result.type.dtype
    kernel = lookup("low.gemm").dtypes
    if dtype in kernel:
        return True
    if dtype not in INTEGER_TYPES:
        refuse(op, dtype, kernel + INTEGER_TYPES)
    return False


@rule(Gemm)
def _gemm(ctx: LoweringContext, op: Operation) -> None:
    if not _use_kernel(op):
        _integer_gemm(ctx, op)
        return
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
    b, packed_n = _packed(ctx, op.B, bool(op.transB))
    ctx.create("low.gemm", [ctx.value(op.A), b, c_low, y],
               {"transA": op.transA, "transB": op.transB, "alpha": op.alpha,
                "beta": op.beta, "bias": bias, "packed_n": packed_n, **epilogue(op)}, op)


def _packed(ctx: LoweringContext, b: Value, trans: bool) -> tuple[Value, int]:
    """(B packed for the built-in GEMM kernel, N) when B is a 2-D float32 constant with its
    data, else (B, 0). Packing once here saves the kernel a copy of B per call (a transpose
    for a Linear layer's [N, K] weight), which at batch 32 costs about as much as the product.
    The packed layout does not depend on the ISA, so the .dat serves any -march; the packed
    GEMM always runs the built-in kernel, whatever the BLAS backend."""
    w = ctx.graph.weight_of(b)
    if b.type.dtype != "f32" or b.type.rank != 2 or not is_constant(b) or w is None or w.data is None:
        return ctx.value(b), 0
    n = b.type.shape[0] if trans else b.type.shape[1]
    return ctx.constant(packed_b(w.data, trans), f"{w.name}.packed"), n


@rule(MatMul)
def _matmul(ctx: LoweringContext, op: Operation) -> None:
    """One GEMM when B has no batch (the batch folds into M), else a GEMM per batch element."""
    if not _use_kernel(op):
        _integer_matmul(ctx, op)
        return
    if op.B.type.rank == 2:
        packed, packed_n = _packed(ctx, op.B, False)
        if packed_n:
            ctx.create("low.gemm", [ctx.value(op.A), packed, None, ctx.dest(op)],
                       {"packed_n": packed_n, **epilogue(op)}, op)
            return
    _matmul_gemm(ctx, op, ctx.value(op.A), ctx.value(op.B), ctx.dest(op))


def _matmul_gemm(ctx: LoweringContext, op: Operation, a: Value, b: Value, y: Value) -> None:
    if b.type.rank > 2 and all(d == 1 for d in b.type.shape[:-2]):
        b = ctx.create(LowView, [b], {}, op, [b.type.with_shape(b.type.shape[-2:])]).result
    kind = "low.gemm" if b.type.rank <= 2 else "low.batched_gemm"
    ctx.create(kind, [a, b, None, y] if kind == "low.gemm" else [a, b, y], epilogue(op), op)


# ---- integers: loops ------------------------------------------------------------------------

def _integer_matmul(ctx: LoweringContext, op: Operation) -> None:
    """numpy.matmul as loops over Y's axes, then K; batch dims broadcast."""
    ra, rb, ry = op.A.type.rank, op.B.type.rank, op.result.type.rank
    yb = ry - (ra > 1) - (rb > 1)  # Y's batch axes, then M (if A is 2-D+), then N (if B is)
    batch = op.result.type.shape[:yb]
    a_map = [ry] if ra == 1 else broadcast_map(op.A.type.shape[:-2], batch) + [yb, ry]
    b_map = [ry] if rb == 1 else broadcast_map(op.B.type.shape[:-2], batch) + [ry, ry - 1]
    _reduce(ctx, op, a_map, b_map, ry, None, 1.0, 1.0)


def _integer_gemm(ctx: LoweringContext, op: Operation) -> None:
    """Loops (m, n, k); alpha and beta must be integers, the result is alpha AB + beta C."""
    for key in ("alpha", "beta"):
        if not float(op.attr(key)).is_integer():
            raise SofieError(f"{op.describe()}: {key}={op.attr(key)} is not an integer; an "
                             f"{op.result.type.dtype} Gemm takes integer alpha and beta")
    a_map = [2, 0] if op.transA else [0, 2]
    b_map = [1, 2] if op.transB else [2, 1]
    _reduce(ctx, op, a_map, b_map, 2, op.C, op.alpha, op.beta)


def _reduce(ctx: LoweringContext, op: Operation, a_map: list[int], b_map: list[int], ry: int,
            c: Value | None, alpha: float, beta: float) -> None:
    """Y = act(alpha * sum_k A B + beta * C): the reduction loop, then, when alpha, C or an
    activation remain, one elementwise loop over its result."""
    y = ctx.dest(op)
    post: Expr = Var(0)
    if alpha != 1.0:
        post = Call("mul", (Const(int(alpha)), post))
    inputs: list[Value] = []
    if c is not None:
        inputs.append(ctx.value(c))
        term: Expr = Var(1) if beta == 1.0 else Call("mul", (Const(int(beta)), Var(1)))
        post = Call("add", (post, term))
    if op.activation:
        post = substitute(activation_body(op.activation, list(op.activation_params)), {0: post})
    product = y if post == Var(0) else ctx.alloc(y.type, f"{op.result.name or 'matmul'}_product")
    ctx.create("low.generic", [ctx.value(op.A), ctx.value(op.B), product],
               {"maps": [a_map, b_map, list(range(ry))], "iterators": [PARALLEL] * ry + [REDUCTION],
                "body": "add(acc, mul(x0, x1))"}, op)
    if product is not y:
        elementwise(ctx, op, [product, *inputs], y, post)


@rule(Det)
def _det(ctx: LoweringContext, op: Operation) -> None:
    if ctx.fold(op):
        return
    n = op.X.type.shape[-1]
    # n * n doubles, typed as X for the kernel's verifier (the kernel reads them as double)
    scratch = ctx.scratch(op, max(n * n, 1) * 8, op.X.type.dtype)
    ctx.create("low.det", [ctx.value(op.X), scratch, ctx.dest(op)], {}, op)


@rule(DFT)
def _dft(ctx: LoweringContext, op: Operation) -> None:
    if ctx.fold(op):
        return
    x = op.input.type
    axis = op.opdef.axis(op, x.rank)
    n = op.opdef.length(op, x.shape[axis])
    # n (cos, sin) pairs of doubles, typed as X for the kernel's verifier
    scratch = ctx.scratch(op, 2 * n * 8, x.dtype)
    ctx.create("low.dft", [ctx.value(op.input), scratch, ctx.dest(op)],
               {"axis": axis, "n": n, "inverse": op.attr("inverse")}, op)
