"""Reductions: Reduce* as one `low.generic` with reduction loops (finished by its `final`
body), ArgMax / ArgMin, CumSum / CumProd and TopK as kernels (sofie_rt/reduce.hxx)."""

from __future__ import annotations

from sofie.errors import SofieError
from sofie.ir.core import Operation, Value
from sofie.ir.dialects.graph.reduction import ArgMax, ArgMin, CumProd, CumSum, ReduceOp, TopK
from sofie.ir.dialects.graph.shape import run_time_operand
from sofie.ir.dialects.low import PARALLEL, REDUCTION
from sofie.ir.dialects.low import ArgReduce as LowArgReduce
from sofie.ir.dialects.low import Cumulative as LowCumulative
from sofie.ir.dialects.low import DimCount as LowDimCount
from sofie.ir.dialects.low import Generic as LowGeneric
from sofie.ir.dialects.low import ReduceAxes as LowReduceAxes
from sofie.ir.dialects.low import TopK as LowTopK
from sofie.ir.dialects.scalar import Call, Expr, Var, substitute
from sofie.ir.registry import all_ops
from sofie.ir.types import NUMERIC, TensorType, dims_product
from sofie.lowering.context import RULES, LoweringContext, refuse, rule
from sofie.lowering.loops import elementwise
from sofie.lowering.run_time_dims import bind_dims


def reduce_loop(ctx: LoweringContext, op: Operation, x: Value, out: Value, axes: list[int], pre: Expr,
                combine: str, init: float, post: Expr, scalars: list[Value] = ()) -> None:
    """out = post(combine over `axes` of pre(x)): one loop nest, reduction loops innermost.
    `out` has x's shape without the reduced axes, or with them as 1 (keepdims). `scalars`:
    one-element inputs post reads as x1, x2, ..."""
    rank = x.type.rank
    keepdims = out.type.rank == rank
    out_map = [-1 if i in axes else i for i in range(rank)] if keepdims else \
        [i for i in range(rank) if i not in axes]
    ctx.create(LowGeneric, [x, *scalars, out], {
        "maps": [list(range(rank)), *([-1] for _ in scalars), out_map],
        "iterators": [REDUCTION if i in axes else PARALLEL for i in range(rank)],
        "body": str(Call(combine, (Var(-1), pre))), "init": init,
        "final": "" if post == Var(-1) else str(post)}, op)


def count(op: Operation, x: Value, axes: list[int]) -> int:
    """The number of elements each result reduces; refused when it is a run-time size."""
    coef, syms = dims_product(tuple(x.type.shape[a] for a in axes))
    if syms:
        raise SofieError(f"{op.describe()}: the reduced element count depends on the run-time "
                         f"size {' * '.join(syms)}; only static reduced axes are supported here")
    return coef


def _run_time_count(ctx: LoweringContext, op: Operation, x: Value, axes: list[int]) -> Value:
    """A one-element buffer the count of reduced elements is written into at run time (a mean
    over a sequence of run-time length T)."""
    cnt = ctx.alloc(TensorType(x.type.dtype, (1,)), f"{op.results[0].name or 'op'}_count")
    ctx.create(LowDimCount, [cnt], {"dims": [str(x.type.shape[a]) for a in axes]}, op)
    return cnt


def _reduce(ctx: LoweringContext, op: Operation) -> None:
    d: ReduceOp = op.opdef
    x = ctx.value(op.data)
    dtype = x.type.dtype
    if dtype not in d.spec.types:  # f16: storage only
        refuse(op, dtype, d.spec.types)
    if d.run_time_axes(op):
        _reduce_run_time_axes(ctx, op, x)
        return
    axes = d.reduced_axes(op, x.type.rank)
    out = ctx.dest(op)
    symbolic = "n" in d.spec.post and bool(dims_product(tuple(x.type.shape[a] for a in axes))[1])
    n = None if symbolic else count(op, x, axes) if "n" in d.spec.post else 0
    pre, combine, init, post = d.bodies(dtype, n)
    if not axes:  # noop_with_empty_axes: post(pre(x)) elementwise
        elementwise(ctx, op, [x], out, substitute(post, {-1: pre}))
        return
    extra = [_run_time_count(ctx, op, x, axes)] if symbolic else []
    reduce_loop(ctx, op, x, out, axes, pre, combine, init, post, extra)


def _reduce_run_time_axes(ctx: LoweringContext, op: Operation, x: Value) -> None:
    """Axes read at run time: their dims bound (and checked), then one kernel folding over the
    axes they name, the count reduced passed to `post` at run time."""
    d: ReduceOp = op.opdef
    axes = ctx.value(op.axes_input)
    out = ctx.dest(op)
    flags = [op.attr("keepdims"), op.attr("noop_with_empty_axes")]
    bind_dims(ctx, op, axes, "reduce", x.type.shape, out.type.shape, flags)
    pre, combine, init, post = d.bodies(x.type.dtype, None)
    ctx.create(LowReduceAxes, [x, axes, out], {"body": str(Call(combine, (Var(-1), pre))), "init": init,
                                               "final": str(post), "noop": flags[1]}, op)


def _declare() -> None:
    for name, d in all_ops().items():
        if isinstance(d, ReduceOp):
            RULES[name] = _reduce


_declare()


@rule(ArgMax, ArgMin)
def _arg(ctx: LoweringContext, op: Operation) -> None:
    x = ctx.value(op.data)
    if x.type.dtype not in NUMERIC:
        refuse(op, x.type.dtype, NUMERIC)
    ctx.create(LowArgReduce, [x, ctx.dest(op)], {"axis": op.axis % x.type.rank, "largest": int(op.isa(ArgMax)),
                                                  "last": op.select_last_index}, op)


@rule(CumSum, CumProd)
def _cumulative(ctx: LoweringContext, op: Operation) -> None:
    x = ctx.value(op.x)
    axis = op.opdef.axis(op, x.type.rank)
    run_time = None if axis is not None else ctx.value(op.axis_input)
    ctx.create(LowCumulative, [x, run_time, ctx.dest(op)], {"axis": -1 if axis is None else axis,
                                                             "product": int(op.isa(CumProd)),
                                                             "exclusive": op.exclusive, "reverse": op.reverse}, op)


@rule(TopK)
def _top_k(ctx: LoweringContext, op: Operation) -> None:
    x = ctx.value(op.X)
    if x.type.dtype not in NUMERIC:
        refuse(op, x.type.dtype, NUMERIC)
    axis = op.axis % x.type.rank
    order = ctx.scratch(op, 8 * max(1, x.type.shape[axis]), "i64")
    values, indices = ctx.dest(op, 0), ctx.dest(op, 1)
    if run_time_operand(op, "K"):  # k read at run time (checked against the axis size)
        bind_dims(ctx, op, ctx.value(op.K), "top_k", x.type.shape, values.type.shape, [axis])
    ctx.create(LowTopK, [x, order, values, indices], {"axis": axis, "largest": op.largest}, op)
