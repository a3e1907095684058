"""Building `low.generic` loop nests: maps for numpy broadcasting and permutations."""

from __future__ import annotations

from sofie.ir.core import Operation, Value
from sofie.ir.dialects.low import PARALLEL
from sofie.ir.dialects.low import Generic as LowGeneric
from sofie.ir.dialects.scalar import Expr, Var, substitute
from sofie.ir.types import Dim
from sofie.lowering.context import LoweringContext


def broadcast_map(shape: tuple[Dim, ...], out: tuple[Dim, ...]) -> list[int]:
    """How an operand of `shape` follows the loops over `out` under numpy broadcasting:
    trailing axes align; a size-1 axis against a larger loop is read at index 0 (-1)."""
    lead = len(out) - len(shape)
    return [-1 if d == 1 and out[lead + i] != 1 else lead + i for i, d in enumerate(shape)]


def elementwise(ctx: LoweringContext, op: Operation | None, inputs: list[Value], out: Value, body: Expr) -> None:
    """out = body(inputs...) elementwise, inputs broadcast to out's shape. An operand given
    twice (x * x) is read once."""
    shape = out.type.shape
    operands: list[Value] = []
    renumber: dict[int, Expr] = {}
    for i, v in enumerate(inputs):
        if v not in operands:
            operands.append(v)
        renumber[i] = Var(operands.index(v))
    maps = [broadcast_map(v.type.shape, shape) for v in operands] + [list(range(len(shape)))]
    ctx.create(LowGeneric, [*operands, out],
               {"maps": maps, "iterators": [PARALLEL] * len(shape), "body": str(substitute(body, renumber))}, op)
