"""Scalar bodies (`sofie.ir.dialects.scalar`) spelled in C++ for each element type.

Transcendental functions go through `sofie::rt::vmath`, branch-free approximations accurate to
the type's rounding that g++ vectorizes, instead of a scalar libm call per element.
"""

from __future__ import annotations

import math

import numpy as np

from sofie.backend_cpp.types import cpp_type
from sofie.errors import SofieError
from sofie.ir.dialects.scalar import (
    CAST_PREFIX,
    SCALAR_OPS,
    Call,
    Const,
    Expr,
    Var,
    cast_target,
    parse_body,
    result_type,
)
from sofie.ir.types import FLOAT8, FLOATS, INTS, NARROW_INTS, STORAGE_FLOATS, numpy_dtype

_INFIX = {"add": "+", "sub": "-", "mul": "*", "div": "/", "gt": ">", "ge": ">=", "lt": "<", "le": "<=",
          "eq": "==", "ne": "!=", "and": "&&", "or": "||", "band": "&", "bor": "|", "bxor": "^"}
_VMATH = {"exp", "expm1", "log", "log1p", "tanh", "erf", "sigmoid", "gelu"}
# std:: for now: the trigonometric family is a libm call per element (no vmath routine yet)
_STD = {"sqrt", "pow", "sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh",
        "asinh", "acosh", "atanh"}
# sofie_rt/elementwise.hxx: defined where the C++ operator traps or is undefined
_HELPERS = {"fmod": "trunc_mod", "mod": "floor_mod", "shl": "shift_left", "shr": "shift_right"}
# C++ computes these in int: results are brought back to the type, so they wrap at every step
# as the numpy reference does
_PROMOTED = ("i8", "i16", "u8", "u16")
_UNSIGNED = ("i1", "u8", "u16", "u32", "u64")


def literal(value: float | int | bool, dtype: str) -> str:
    """A constant in the element type `dtype`. In an integer type +-inf (Clip's open bounds)
    and values beyond the range are the type's limits, as in the numpy reference."""
    if dtype == "i1":
        return "true" if value else "false"
    if dtype in FLOATS:
        if isinstance(value, float) and math.isnan(value):
            return f"std::numeric_limits<{cpp_type(dtype)}>::quiet_NaN()"
        if isinstance(value, float) and math.isinf(value):
            return ("" if value > 0 else "-") + f"std::numeric_limits<{cpp_type(dtype)}>::infinity()"
        text = repr(float(value))
        return text + ("f" if dtype == "f32" else "")
    if dtype not in INTS:
        raise SofieError(f"C++ backend: no literal of element type {dtype} (storage only)")
    if isinstance(value, float) and (math.isnan(value) or (math.isfinite(value) and not value.is_integer())):
        raise SofieError(f"C++ backend: the literal {value} is not an integer of type {dtype}")
    info = np.iinfo(numpy_dtype(dtype))
    t = cpp_type(dtype)
    if value >= info.max:
        return f"std::numeric_limits<{t}>::max()"
    if value <= info.min:
        return f"std::numeric_limits<{t}>::lowest()"
    return f"{t}({int(value)}{'ull' if dtype in _UNSIGNED else ''})"  # 2^63 and up: no signed literal


def cast(arg: str, src: str, dst: str, saturate: bool = True, round_mode: str = "up") -> str:
    """`arg` of element type `src` converted to `dst` as ONNX Cast does: float -> integer
    truncates toward zero, integer -> narrower integer wraps, anything -> bool is `!= 0`
    (NaN is true), bool -> number is 0 / 1. The storage-only types (stored as their bits)
    convert through float, or int for the 4- and 2-bit integers: exactly from them, rounding to
    nearest even into the floats (float8 saturating unless `saturate` is false; float8e8m0
    as `round_mode` says); sofie_rt/narrow_types.hxx."""
    if src == dst:
        return arg
    if src in STORAGE_FLOATS or src in NARROW_INTS:
        arg, src = _decode(arg, src)
        if src == dst:
            return arg
    if dst in STORAGE_FLOATS:
        x = arg if src in FLOATS else f"static_cast<double>({arg})"
        if dst == "f16":
            return f"sofie::rt::float_to_half({x})"
        if dst == "f8e8m0":
            return f"sofie::rt::float_to_f8e8m0({x}, {_bool(saturate)}, sofie::rt::E8M0Round::{round_mode})"
        if dst in FLOAT8:
            return f"sofie::rt::float_to_{dst}({x}, {_bool(saturate)})"
        return f"sofie::rt::float_to_{dst}({x})"
    if dst in NARROW_INTS:
        return f"sofie::rt::to_{dst}({arg})"
    if dst == "i1":
        return f"({arg} != {literal(0, src)})"
    return f"static_cast<{cpp_type(dst)}>({arg})"


def _decode(arg: str, src: str) -> tuple[str, str]:
    """A storage-only value read as f32 (floats) or i32 (the 4- and 2-bit integers)."""
    if src == "f16":
        return f"sofie::rt::half_to_float({arg})", "f32"
    if src in NARROW_INTS:
        return f"sofie::rt::{src}_to_int({arg})", "i32"
    return f"sofie::rt::{src}_to_float({arg})", "f32"


def _bool(b: bool) -> str:
    return "true" if b else "false"


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
            (a,) = e.args
            src = self.type_of(a) or ("f64" if isinstance(a, Const) and isinstance(a.value, float) else "i64")
            return cast(self.spell(a, src), src, *cast_target(e.op))
        spec = SCALAR_OPS[e.op]
        t = self._operand_type(e, want)
        fused = _fused_call(e)
        if fused is not None and t in FLOATS:  # one vmath routine for the whole pattern
            return f"sofie::rt::vmath::{fused[0]}({self.spell(fused[1], t)})"
        if spec.result == "first":
            c, a, b = e.args
            cond, yes, no = self.spell(c, 'i1'), self.spell(a, t), self.spell(b, t)
            if t in FLOATS:  # both arms computed, so g++ vectorizes a vmath call in one
                return f"sofie::rt::select({cond}, {yes}, {no})"
            return f"({cond} ? {yes} : {no})"
        if t in STORAGE_FLOATS or t in NARROW_INTS:
            raise SofieError(f"C++ backend: {e.op} on {t} has no kernel ({t} is storage only: cast it first)")
        args = [self.spell(a, t) for a in e.args]
        text = self._call(e.op, args, t)
        if spec.result == "same" and t in _PROMOTED:
            text = f"static_cast<{cpp_type(t)}>({text})"
        return text

    def _call(self, op: str, args: list[str], t: str) -> str:
        if op == "mul" and t == "u16":  # promoted to int, 65535 * 65535 would overflow it
            args = [f"static_cast<std::uint32_t>({args[0]})", args[1]]
        if op in _INFIX:
            return f"({args[0]} {_INFIX[op]} {args[1]})"
        if op == "max":
            return f"({args[0]} < {args[1]} ? {args[1]} : {args[0]})"
        if op == "min":
            return f"({args[1]} < {args[0]} ? {args[1]} : {args[0]})"
        if op == "neg":
            return f"(-{args[0]})"
        if op == "not":
            return f"(!{args[0]})"
        if op == "bnot":
            return f"(~{args[0]})"
        if op in _HELPERS:
            return f"sofie::rt::{_HELPERS[op]}({args[0]}, {args[1]})"
        if op == "abs":
            return f"std::abs({args[0]})" if t not in _UNSIGNED else args[0]
        if op == "pow" and t in INTS:
            return f"sofie::rt::ipow({args[0]}, {args[1]})"
        if t not in FLOATS:
            raise SofieError(f"C++ backend: {op} on {t} has no kernel (floating-point types only)")
        if op in _VMATH:
            return f"sofie::rt::vmath::{op}({args[0]})"
        if op in ("floor", "ceil"):  # sofie_rt/elementwise.hxx: vectorizes
            return f"sofie::rt::{op}({args[0]})"
        if op == "round":  # half to even in the default rounding mode; vectorizes (roundps)
            return f"std::nearbyint({args[0]})"
        if op in _STD:
            return f"std::{op}({', '.join(args)})"
        raise SofieError(f"C++ backend: no spelling for scalar op {op}")

    def _operand_type(self, e: Call, want: str | None) -> str:
        """The type the operands of `e` share (literals adopt it)."""
        args = e.args[1:] if SCALAR_OPS[e.op].result == "first" else e.args
        for a in args:
            t = self.type_of(a)
            if t is not None:
                return t
        return want or "f32"


def _fused_call(e: Call) -> tuple[str, Expr] | None:
    """x * sigmoid(x) is SiLU: vmath has it as one routine (one exp, one division); so is
    Swish's x * sigmoid(1 * x)."""
    if e.op == "mul" and len(e.args) == 2:
        for a, b in (e.args, e.args[::-1]):
            if isinstance(b, Call) and b.op == "sigmoid" and (b.args[0] == a or _is_one_times(b.args[0], a)):
                return "silu", a
    return None


def _is_one_times(e: Expr, x: Expr) -> bool:
    return isinstance(e, Call) and e.op == "mul" and any(
        isinstance(c, Const) and c.value == 1 and v == x for c, v in (e.args, e.args[::-1]))


def spell_body(body: str, names: list[str], types: list[str], out_type: str,
               acc: tuple[str, str] | None = None) -> str:
    return Speller(names, types, acc).spell(parse_body(body), out_type)


def _clip_bounds(e: Expr) -> tuple[float, float] | None:
    """(lo, hi) when `e` is min(max(x0, lo), hi) with constant bounds (Clip's body)."""
    if not (isinstance(e, Call) and e.op == "min" and isinstance(e.args[1], Const)):
        return None
    inner = e.args[0]
    if not (isinstance(inner, Call) and inner.op == "max" and inner.args[0] == Var(0)
            and isinstance(inner.args[1], Const)):
        return None
    return float(inner.args[1].value), float(e.args[1].value)


def spell_lambda(body: str, dtype: str) -> str:
    """An epilogue functor: `body` over x0 as a C++ lambda on `dtype`, or the identity."""
    if not body:
        return "sofie::rt::Identity{}"
    if dtype == "f32":
        # the GEMM kernels apply these in registers; the lambda gives each op a type of its own
        # (sofie_rt/gemm_kernels.hxx, Relu and Clip)
        e = parse_body(body)
        if e == Call("max", (Var(0), Const(0))):
            return "sofie::rt::relu([] {})"
        bounds = _clip_bounds(e)
        if bounds is not None:
            return f"sofie::rt::clip({literal(bounds[0], dtype)}, {literal(bounds[1], dtype)}, [] {{}})"
    t = cpp_type(dtype)
    # SOFIE_EPILOGUE_INLINE (sofie_rt/kernels.hxx): always inlined into the kernel's loop
    return (f"[]({t} x0) SOFIE_EPILOGUE_INLINE {{ return static_cast<{t}>("
            f"{spell_body(body, ['x0'], [dtype], dtype)}); }}")
