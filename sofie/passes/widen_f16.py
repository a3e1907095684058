"""f16 and bf16 are storage types in sofie: elementwise bodies already compute through float,
but the dense kernels (GEMM, convolutions), softmax and the reductions run on f32 or f64 only.
This pass gives each such op on f16 (bf16) tensors f32 operands and casts its results back, so
a half-precision model (fp16 attention, a bf16 conv) compiles. Accumulating in f32 and rounding
once is what onnxruntime's CPU kernels do too.

It runs just before lowering in every build, since without it lowering refuses these ops."""

from __future__ import annotations

from sofie.ir.core import Module, Operation
from sofie.ir.dialects.graph.nn import Conv, ConvTranspose, Gemm, MatMul, Softmax
from sofie.ir.dialects.graph.normalization import LogSoftmax
from sofie.ir.dialects.graph.reduction import ReduceOp
from sofie.ir.registry import all_ops
from sofie.ir.types import COMPUTED_AS_F32
from sofie.passes.pass_manager import Pass, register_pass
from sofie.passes.rewrite import Pattern, Rewriter, apply_patterns

WIDE = "f32"  # what f16 and bf16 (COMPUTED_AS_F32) compute in


def _widened() -> tuple[str, ...]:
    """The ops whose kernels take no f16 (by name)."""
    fixed = (MatMul, Gemm, Conv, ConvTranspose, Softmax, LogSoftmax)
    reductions = tuple(d for d in all_ops().values() if isinstance(d, ReduceOp))
    return tuple(d.name for d in fixed) + tuple(d.name for d in reductions)


class ComputeInF32(Pattern):
    """op(x: f16, ...) -> cast_f16(op(cast_f32(x), ...)) (bf16 alike); operands of other types
    (a Reduce's axes) stay as they are."""

    root = _widened()

    def match(self, op: Operation, module: Module):
        narrow = [i for i, v in enumerate(op.operands) if v is not None and v.type.dtype in COMPUTED_AS_F32]
        results = {r.type.dtype for r in op.results} & set(COMPUTED_AS_F32)
        return (narrow, results.pop()) if narrow and len(results) == 1 else None

    def rewrite(self, op: Operation, match: tuple[list[int], str], rw: Rewriter) -> None:
        narrow, back = match
        operands = list(op.operands)
        for i in narrow:
            operands[i] = rw.create("graph.cast", [operands[i]], {"to": WIDE}, loc=op.loc).result
        wide = rw.create(op.name, operands, dict(op.attrs), loc=op.loc)
        rw.replace(op, [rw.create("graph.cast", [r], {"to": back}, loc=op.loc).result
                        if r.type.dtype == WIDE else r for r in wide.results])


@register_pass
class WidenF16(Pass):
    name = "widen-f16"
    summary = "ops with no f16 / bf16 kernel (GEMM, conv, reductions, softmax) compute in f32 between casts"

    def run(self, module: Module) -> None:
        apply_patterns(module, [ComputeInF32()])
