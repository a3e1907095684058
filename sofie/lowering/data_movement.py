"""Views, copies, casts, transposes and concatenation."""

from __future__ import annotations

from sofie.ir.core import Operation
from sofie.ir.dialects.graph.nn import Dropout
from sofie.ir.dialects.graph.shape import (
    BitCast,
    Cast,
    Concat,
    Flatten,
    Identity,
    Reshape,
    Squeeze,
    Transpose,
    Unsqueeze,
    run_time_operand,
)
from sofie.ir.dialects.low import PARALLEL
from sofie.ir.dialects.scalar import Call, Var, cast_op
from sofie.lowering.context import LoweringContext, rule
from sofie.lowering.loops import elementwise
from sofie.lowering.run_time_dims import bind_dims


@rule(Reshape, Flatten, Identity, Dropout, Squeeze, Unsqueeze)
def _view(ctx: LoweringContext, op: Operation) -> None:
    """A view; a target shape or axes known only at run time first bind (and check) the
    result's run-time dims."""
    shape_operand = {Reshape.name: "shape", Squeeze.name: "axes_input", Unsqueeze.name: "axes_input"}.get(op.name)
    if shape_operand is not None and run_time_operand(op, shape_operand) and not op.attrs.get("axes"):
        x = op.operands[0]
        params = [op.attr("allowzero")] if op.isa(Reshape) else []
        bind_dims(ctx, op, ctx.value(op.operand(shape_operand)), op.name.split(".")[1], x.type.shape,
                  op.results[0].type.shape, params)
    ctx.alias(op)


@rule(Cast)
def _cast(ctx: LoweringContext, op: Operation) -> None:
    """One loop whose body is `cast_<to>(x0)`: ONNX Cast semantics for every element type
    (spelled by `sofie.backend_cpp.scalar.cast`; the numpy reference is
    `sofie.ir.casting.cast_array`), `saturate` and `round_mode` spelled in the op's name."""
    if op.X.type.dtype == op.result.type.dtype:
        # a no-op Cast (exporters write them): a copy into its own buffer (not an alias: Cast
        # is no view, so its input may be reused after it)
        ctx.create("low.copy", [ctx.value(op.X), ctx.dest(op)], {}, op)
    elif not ctx.fold(op):
        to = cast_op(op.result.type.dtype, bool(op.attr("saturate")), op.attr("round_mode"))
        body = Call(to, (Var(0),))
        elementwise(ctx, op, [ctx.value(op.X)], ctx.dest(op), body)


@rule(BitCast)
def _bit_cast(ctx: LoweringContext, op: Operation) -> None:
    """A byte copy: reading the input's buffer through a pointer of another type would break
    C++'s aliasing rules."""
    if not ctx.fold(op):
        ctx.create("low.bit_copy", [ctx.value(op.X), ctx.dest(op)], {}, op)


@rule(Transpose)
def _transpose(ctx: LoweringContext, op: Operation) -> None:
    """A loop over the output; input axis perm[k] follows output loop k."""
    perm = op.opdef.perm(op, op.result.type.rank)
    in_map = [perm.index(axis) for axis in range(len(perm))]
    ctx.create("low.generic", [ctx.value(op.X), ctx.dest(op)],
               {"maps": [in_map, list(range(len(perm)))], "iterators": [PARALLEL] * len(perm), "body": "x0"}, op)


@rule(Concat)
def _concat(ctx: LoweringContext, op: Operation) -> None:
    rank = op.result.type.rank
    ctx.create("low.concat", [ctx.value(v) for v in op.inputs] + [ctx.dest(op)], {"axis": op.axis % rank}, op)
