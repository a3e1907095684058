"""A direct conv whose output only a MaxPool reads (ResNet's stem: Conv 7x7 s2 + ReLU, then
MaxPool 3x3 s2) becomes one `low.conv2d_direct_max_pool`: each conv row is pooled from a ring
of window rows in scratch as soon as its window is complete, so the conv's output (3.2 MB for
ResNet at 224x224) is neither written to memory nor read back by the pool.

The pool must have no Indices output, dilation 1, a window of at most 16 rows and 2 or 3
columns at column stride 1 or 2 (sofie_rt/pool.hxx's row kernels, which the fused kernel calls),
and the conv no residual."""

from __future__ import annotations

from sofie.ir.core import Builder, Function, Module, Operation
from sofie.ir.dialects.low import Alloc, Conv2dDirect, MaxPool, direct_max_pool_scratch_floats, pool_window_fits
from sofie.ir.types import TensorType
from sofie.passes.pass_manager import LOW, Pass, register_pass


def _pool_fits(pool: Operation) -> bool:
    return (pool.indices is None and pool.attr("dilations") == [1, 1]
            and pool_window_fits(pool.attr("kernel_shape"), pool.attr("strides")))


def _conv_feeding(pool: Operation) -> Operation | None:
    """The direct conv that writes the pool's input, when only the pair touches that buffer."""
    buf = pool.X
    if buf.owner is None or not buf.owner.isa(Alloc) or len(buf.uses) != 2:
        return None
    conv = next((op for op, _ in buf.uses if op is not pool), None)
    if conv is None or not conv.isa(Conv2dDirect) or conv.operands[-1] is not buf or conv.Z is not None:
        return None
    return conv


def fuse_pair(f: Function, conv: Operation, pool: Operation) -> Operation:
    x, w, y = conv.X, conv.W, pool.Y
    _, c, _, _ = x.type.shape
    _, kh, kw = w.type.shape[1:]
    _, m, oh, ow = conv.operands[-1].type.shape
    sh, sw = conv.attr("strides")
    floats = direct_max_pool_scratch_floats(c, kh, kw, sh, sw, oh, ow, m, pool.attr("kernel_shape")[0])
    b = Builder(f, before=pool)
    scratch = b.create(Alloc, [], result_types=[TensorType(y.type.dtype, (floats,))],
                       result_names=[f"{y.name or 'pool'}_scratch"]).result
    attrs = {"epilogue": conv.attr("epilogue"), "pads": conv.attr("pads"), "strides": conv.attr("strides"),
             "pool_kernel": pool.attr("kernel_shape"), "pool_pads": pool.attr("pads"),
             "pool_strides": pool.attr("strides")}
    fused = b.create("low.conv2d_direct_max_pool", [x, w, conv.B, scratch, y], attrs,
                     loc=conv.loc or pool.loc)
    buf, old_scratch = pool.X, conv.operand("scratch")
    f.erase(pool)
    f.erase(conv)
    for alloc in (buf.owner, old_scratch.owner if old_scratch is not None else None):
        if alloc is not None and not alloc.result.uses:
            f.erase(alloc)
    return fused


@register_pass
class FuseConvPool(Pass):
    name = "fuse-conv-pool"
    summary = "a direct conv into the MaxPool that alone reads it: the conv rows pooled from a ring in scratch"
    level = LOW

    def run(self, module: Module) -> None:
        for f in module.functions.values():
            for pool in [op for op in f.ops if op.isa(MaxPool)]:
                conv = _conv_feeding(pool)
                if conv is not None and _pool_fits(pool):
                    fuse_pair(f, conv, pool)
