"""Normalization: BatchNormalization (when not folded away), the softmax family, Layer / RMS /
Group / Instance normalization and LRN as kernels (sofie_rt/reduce.hxx); LpNormalization and
MeanVarianceNormalization as reduction loops and one elementwise loop."""

from __future__ import annotations

from sofie.ir.core import Operation, Value
from sofie.ir.dialects.graph.nn import BatchNormalization, Softmax
from sofie.ir.dialects.graph.normalization import (
    LRN,
    MVN_EPSILON,
    GroupNormalization,
    Hardmax,
    InstanceNormalization,
    LayerNormalization,
    LogSoftmax,
    LpNormalization,
    MeanVarianceNormalization,
    RMSNormalization,
)
from sofie.ir.dialects.low import BatchNormalization as LowBatchNormalization
from sofie.ir.dialects.low import GroupNorm as LowGroupNorm
from sofie.ir.dialects.low import Hardmax as LowHardmax
from sofie.ir.dialects.low import LayerNorm as LowLayerNorm
from sofie.ir.dialects.low import Lrn as LowLrn
from sofie.ir.dialects.low import Softmax as LowSoftmax
from sofie.ir.dialects.scalar import Var, parse_body
from sofie.lowering.context import LoweringContext, rule
from sofie.lowering.loops import elementwise
from sofie.lowering.reduction import count, reduce_loop


@rule(BatchNormalization)
def _bn(ctx: LoweringContext, op: Operation) -> None:
    ctx.create(LowBatchNormalization, [ctx.value(v) for v in op.operands] + [ctx.dest(op)],
               {"epsilon": op.epsilon}, op)


@rule(Softmax, LogSoftmax)
def _softmax(ctx: LoweringContext, op: Operation) -> None:
    rank = op.result.type.rank
    ctx.create(LowSoftmax, [ctx.value(op.X), ctx.dest(op)], {"axis": op.axis % rank, "log": int(op.isa(LogSoftmax))},
               op)


@rule(Hardmax)
def _hardmax(ctx: LoweringContext, op: Operation) -> None:
    ctx.create(LowHardmax, [ctx.value(op.X), ctx.dest(op)], {"axis": op.axis % op.result.type.rank}, op)


def _full(ctx: LoweringContext, op: Operation, v: Value | None, shape: tuple) -> Value | None:
    """A scale / bias as the kernel reads it: one value per normalized element (broadcast
    into a buffer when ONNX gave a smaller shape)."""
    if v is None or tuple(v.type.shape) == tuple(shape):
        return v
    out = ctx.alloc(v.type.with_shape(shape), f"{v.name or 'param'}_full")
    elementwise(ctx, op, [v], out, Var(0))
    return out


def _dest_if_used(ctx: LoweringContext, op: Operation, i: int) -> Value | None:
    r = op.results[i]
    return ctx.dest(op, i) if r.uses or id(r) in ctx.outputs else None


@rule(LayerNormalization, RMSNormalization)
def _layer_norm(ctx: LoweringContext, op: Operation) -> None:
    x = ctx.value(op.X)
    axis = op.opdef.first_axis(op, x.type.rank)
    norm = x.type.shape[axis:]
    centered = op.isa(LayerNormalization)
    scale = _full(ctx, op, ctx.value(op.operands[1]), norm)
    bias = _full(ctx, op, ctx.value(op.B), norm) if centered else None
    stats = [_dest_if_used(ctx, op, 1), _dest_if_used(ctx, op, 2)] if centered else []
    ctx.create(LowLayerNorm, [x, scale, bias, ctx.dest(op), *stats],
               {"axis": axis, "epsilon": op.epsilon, "centered": int(centered)}, op)


@rule(GroupNormalization, InstanceNormalization)
def _group_norm(ctx: LoweringContext, op: Operation) -> None:
    x = ctx.value(op.X)
    groups = op.opdef.groups(op, x.type.shape[1])
    ctx.create(LowGroupNorm, [x, ctx.value(op.scale), ctx.value(op.B), ctx.dest(op)],
               {"groups": groups, "epsilon": op.epsilon}, op)


@rule(LRN)
def _lrn(ctx: LoweringContext, op: Operation) -> None:
    ctx.create(LowLrn, [ctx.value(op.X), ctx.dest(op)],
               {"alpha": op.alpha, "beta": op.beta, "bias": op.bias, "size": op.attr("size")}, op)


def _stat(ctx: LoweringContext, op: Operation, x: Value, axes: list[int], pre: str, post: str, what: str) -> Value:
    """A keepdims reduction of x over axes into a new buffer."""
    shape = tuple(1 if i in axes else d for i, d in enumerate(x.type.shape))
    out = ctx.alloc(x.type.with_shape(shape), f"{op.results[0].name or 'op'}_{what}")
    reduce_loop(ctx, op, x, out, axes, parse_body(pre), "add", 0.0, parse_body(post))
    return out


@rule(LpNormalization)
def _lp_norm(ctx: LoweringContext, op: Operation) -> None:
    x = ctx.value(op.X)
    axis = op.axis % x.type.rank
    # 1 / norm, 0 for a zero norm (whose row is all zeros): one division per row, not per
    # element; and a conditional division in the elementwise loop trips g++ 12's AVX-512
    # vectorizer (wrong results past the first event)
    pre, norm = ("abs(x0)", "acc") if op.p == 1 else ("mul(x0, x0)", "sqrt(acc)")
    inv = _stat(ctx, op, x, [axis], pre, f"select(eq(acc, 0), 0, div(1, {norm}))", "inv_norm")
    elementwise(ctx, op, [x, inv], ctx.dest(op), parse_body("mul(x0, x1)"))


@rule(MeanVarianceNormalization)
def _mvn(ctx: LoweringContext, op: Operation) -> None:
    x = ctx.value(op.X)
    axes = op.opdef.axes(op, x.type.rank)
    n = count(op, x, axes)
    mean = _stat(ctx, op, x, axes, "x0", f"div(acc, {n})", "mean")
    square = _stat(ctx, op, x, axes, "mul(x0, x0)", f"div(acc, {n})", "mean_square")
    body = f"div(sub(x0, x1), add(sqrt(sub(x2, mul(x1, x1))), {MVN_EPSILON!r}))"
    elementwise(ctx, op, [x, mean, square], ctx.dest(op), parse_body(body))
