"""Epilogue fusion: a residual Add into the Conv that feeds it (operand Z), and a unary
activation into the Conv / Gemm / MatMul that feeds it, SiLU spelled x * Sigmoid(x) (as
torch exports it) among them. The kernels apply both while the
output tile is still in registers, saving a full pass over the tensor each.

Order matters for Conv -> Add -> Relu: act(conv + z) is the Conv epilogue, so the Add must
fuse first; the driver revisits the Relu once its operand became the fused Conv."""

from __future__ import annotations

from sofie.ir.core import Module, Operation, Value
from sofie.ir.dialects.graph.elementwise import Add, Mul, Sigmoid, activation_of
from sofie.ir.dialects.graph.nn import Conv, Gemm, MatMul
from sofie.passes.pass_manager import Pass, register_pass
from sofie.passes.rewrite import Pattern, Rewriter, apply_patterns, is_output, producer, sole_use

EPILOGUE_OPS = (Conv, Gemm, MatMul)


def _fusable_producer(v: Value, kinds) -> Operation | None:
    """The producer of v, when v has no other observer and no epilogue was fused yet."""
    op = producer(v, kinds)
    if op is None or not sole_use(v) or op.activation:
        return None
    return op


class FuseResidualAdd(Pattern):
    """Add(Conv(x), z) with z of the Conv's own type = Conv(x, Z=z)."""

    root = Add

    def match(self, add: Operation, module: Module) -> tuple[Operation, Value] | None:
        for conv_out, other in ((add.A, add.B), (add.B, add.A)):
            conv = _fusable_producer(conv_out, Conv)
            same_type = other.type == add.result.type == conv_out.type
            if conv is not None and conv.Z is None and same_type:
                return conv, other
        return None

    def rewrite(self, add: Operation, match: tuple[Operation, Value], rw: Rewriter) -> None:
        conv, z = match
        new = rw.create(Conv, [conv.X, conv.W, conv.B, z], dict(conv.attrs), loc=conv.loc)
        rw.replace(add, new.results)


class FuseActivation(Pattern):
    """act(Conv | Gemm | MatMul) = the same op with activation epilogue `act`."""

    root = None  # any unary activation; activation_of decides

    def match(self, op: Operation, module: Module) -> tuple[Operation, str, list[float]] | None:
        act = activation_of(op)
        if act is None:
            return None
        prod = _fusable_producer(op.X, EPILOGUE_OPS)
        return None if prod is None else (prod, *act)

    def rewrite(self, op: Operation, match: tuple[Operation, str, list[float]], rw: Rewriter) -> None:
        prod, act, params = match
        attrs = {**prod.attrs, "activation": act, "activation_params": params}
        new = rw.create(prod.name, list(prod.operands), attrs, loc=prod.loc)
        rw.replace(op, new.results)


class FuseSiLU(Pattern):
    """Mul(y, Sigmoid(y)) with y = Conv | Gemm | MatMul used by these two ops only = the same op
    with activation epilogue swish (alpha 1): SiLU, which the C++ backend spells vmath::silu."""

    root = Mul

    def match(self, mul: Operation, module: Module) -> Operation | None:
        for y, s in ((mul.A, mul.B), (mul.B, mul.A)):
            sig = producer(s, Sigmoid)
            if sig is None or sig.X is not y or not sole_use(s) or len(y.uses) != 2 or is_output(y):
                continue
            prod = producer(y, EPILOGUE_OPS)
            if prod is not None and not prod.activation and activation_of(sig) is not None:
                return prod
        return None

    def rewrite(self, mul: Operation, prod: Operation, rw: Rewriter) -> None:
        attrs = {**prod.attrs, "activation": "swish", "activation_params": [1.0]}
        new = rw.create(prod.name, list(prod.operands), attrs, loc=prod.loc)
        rw.replace(mul, new.results)  # the Sigmoid and the old op go dead: cleanup erases them


@register_pass
class Fuse(Pass):
    name = "fuse"
    summary = "fuse residual Adds and activations into Conv / Gemm / MatMul epilogues"

    def run(self, module: Module) -> None:
        apply_patterns(module, [FuseResidualAdd(), FuseSiLU(), FuseActivation()])
