"""Scalar bodies (`sofie.ir.dialects.scalar`) spelled in C++ for each element type.

Transcendental functions go through `sofie::rt::vmath`, branch-free approximations accurate to
the type's rounding that g++ vectorizes, instead of a scalar libm call per element.
"""

from __future__ import annotations

import math

from sofie.backend_cpp.types import cpp_type
from sofie.errors import SofieError
from sofie.ir.dialects.scalar import CAST_PREFIX, SCALAR_OPS, Call, Const, Expr, Var, parse_body, result_type

_INFIX = {"add": "+", "sub": "-", "mul": "*", "div": "/", "gt": ">", "ge": ">=", "lt": "<", "le": "<=",
          "eq": "==", "ne": "!=", "and": "&&", "or": "||"}
_VMATH = {"exp", "expm1", "log", "log1p", "tanh", "erf", "sigmoid"}
_STD = {"sqrt", "floor", "ceil", "pow"}
FLOATS = ("f32", "f64")


def literal(value: float | int | bool, dtype: str) -> str:
    """A constant in the element type `dtype`."""
    if dtype == "i1":
        return "true" if value else "false"
    if dtype in FLOATS:
        if isinstance(value, float) and math.isnan(value):
            return f"std::numeric_limits<{cpp_type(dtype)}>::quiet_NaN()"
        if isinstance(value, float) and math.isinf(value):
            return ("" if value > 0 else "-") + f"std::numeric_limits<{cpp_type(dtype)}>::infinity()"
        text = repr(float(value))
        return text + ("f" if dtype == "f32" else "")
    if isinstance(value, float) and not value.is_integer():
        raise SofieError(f"C++ backend: the literal {value} is not an integer of type {dtype}")
    return f"{cpp_type(dtype)}({int(value)})"


class Speller:
    """Spells one body; `names[i]` is the C++ expression reading x<i>, `types[i]` its type."""

    def __init__(self, names: list[str], types: list[str], acc: tuple[str, str] | None = None) -> None:
        self.names, self.types, self.acc = names, types, acc

    def type_of(self, e: Expr) -> str | None:
        return result_type(e, self.types, self.acc[1] if self.acc else None)

    def spell(self, e: Expr, want: str | None = None) -> str:
        """C++ for `e`; a bare literal takes type `want`."""
        if isinstance(e, Var):
            return self.acc[0] if e.index < 0 else self.names[e.index]
        if isinstance(e, Const):
            return literal(e.value, want or "f32")
        if e.op.startswith(CAST_PREFIX):
            return f"static_cast<{cpp_type(e.op[len(CAST_PREFIX):])}>({self.spell(e.args[0])})"
        spec = SCALAR_OPS[e.op]
        t = self._operand_type(e, want)
        fused = _fused_call(e)
        if fused is not None and t in FLOATS:  # one vmath routine for the whole pattern
            return f"sofie::rt::vmath::{fused[0]}({self.spell(fused[1], t)})"
        if spec.result == "first":
            c, a, b = e.args
            return f"({self.spell(c, 'i1')} ? {self.spell(a, t)} : {self.spell(b, t)})"
        args = [self.spell(a, t) for a in e.args]
        if e.op in _INFIX:
            return f"({args[0]} {_INFIX[e.op]} {args[1]})"
        if e.op == "max":
            return f"({args[0]} < {args[1]} ? {args[1]} : {args[0]})"
        if e.op == "min":
            return f"({args[1]} < {args[0]} ? {args[1]} : {args[0]})"
        if e.op == "neg":
            return f"(-{args[0]})"
        if e.op == "not":
            return f"(!{args[0]})"
        if e.op == "abs":
            return f"std::abs({args[0]})" if t not in ("i1", "u8", "u16", "u32", "u64") else args[0]
        if t not in FLOATS:
            raise SofieError(f"C++ backend: {e.op} on {t} has no kernel (floating-point types only)")
        if e.op in _VMATH:
            return f"sofie::rt::vmath::{e.op}({args[0]})"
        if e.op in _STD:
            return f"std::{e.op}({', '.join(args)})"
        raise SofieError(f"C++ backend: no spelling for scalar op {e.op}")

    def _operand_type(self, e: Call, want: str | None) -> str:
        """The type the operands of `e` share (literals adopt it)."""
        args = e.args[1:] if SCALAR_OPS[e.op].result == "first" else e.args
        for a in args:
            t = self.type_of(a)
            if t is not None:
                return t
        return want or "f32"


def _fused_call(e: Call) -> tuple[str, Expr] | None:
    """x * sigmoid(x) is SiLU: vmath has it as one routine (one exp, one division)."""
    if e.op == "mul" and len(e.args) == 2:
        for a, b in (e.args, e.args[::-1]):
            if isinstance(b, Call) and b.op == "sigmoid" and b.args[0] == a:
                return "silu", a
    return None


def spell_body(body: str, names: list[str], types: list[str], out_type: str,
               acc: tuple[str, str] | None = None) -> str:
    return Speller(names, types, acc).spell(parse_body(body), out_type)


def spell_lambda(body: str, dtype: str) -> str:
    """An epilogue functor: `body` over x0 as a C++ lambda on `dtype`, or the identity."""
    if not body:
        return "sofie::rt::Identity{}"
    t = cpp_type(dtype)
    return f"[]({t} x0) {{ return static_cast<{t}>({spell_body(body, ['x0'], [dtype], dtype)}); }}"
