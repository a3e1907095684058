"""Binding run-time dims (`sofie.ir.run_time_dims`) in the low function: one `low.bind_dims`
per op whose result shape comes from tensor data, and the low function's table of the dims
so bound."""

from __future__ import annotations

from sofie.errors import SofieError
from sofie.ir.core import Function, Operation, Value
from sofie.ir.dialects.low import BindDims as LowBindDims
from sofie.ir.run_time_dims import ATTR, table
from sofie.ir.types import Dim
from sofie.lowering.context import LoweringContext


def bind_dims(ctx: LoweringContext, op: Operation, source: Value, rule: str, in_shape: tuple[Dim, ...],
              out_shape: tuple[Dim, ...], params: list[int] = ()) -> None:
    """Binds the run-time dims of `out_shape` from the data of `source` (low value) by `rule`."""
    ctx.create(LowBindDims, [source], {"rule": rule, "shape": [str(d) for d in in_shape],
                                       "dims": [str(d) for d in out_shape], "params": list(params)}, op)


def record_bound(graph_func: Function, low_func: Function) -> None:
    """Copies the bounds of the run-time dims the low function binds; refuses a run-time dim a
    low value's type uses without a binding (its value would be undefined in C++)."""
    bounds = table(graph_func)
    bound = [d for op in low_func.ops if op.isa(LowBindDims) for d in op.attr("dims") if d in bounds]
    for op in low_func.ops:
        for v in [*op.operands, *op.results]:
            loose = [s for s in (v.type.symbols if v is not None else ()) if s in bounds and s not in bound]
            if loose:
                raise SofieError(f"{op.loc or op.name}: the run-time dim {loose[0]} of %{v.name} is not bound "
                                 f"by the op that computes it; this op cannot follow a data-dependent shape yet")
    if bound:
        low_func.attrs[ATTR] = [[d, bounds[d]] for d in dict.fromkeys(bound)]
