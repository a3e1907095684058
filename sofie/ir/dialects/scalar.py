"""Scalar ops: the bodies of structured loops (`low.generic`) and the one definition of every
elementwise function and activation.

A body is an expression over the loop's operand elements `x0, x1, ...` (and `acc`, the running
value of a reduction), written with the ops below, e.g. `mul(x0, sigmoid(x0))`. Literals take
the element type of what they combine with. The numpy evaluation here is the reference the
graph dialect folds and tests with; the C++ backend spells the same tree for each element type.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from lark import Lark, Transformer, UnexpectedInput

from sofie.errors import SofieError
from sofie.ir.casting import ROUND_MODES, cast_array
from sofie.ir.types import DTYPES, FLOAT8, FLOATS, INTS, NUMERIC


@dataclass(frozen=True)
class ScalarOp:
    name: str
    arity: int
    numpy: Callable[..., np.ndarray]
    result: str = "same"  # "same": the operands' type; "bool": a comparison; "first": select's
    types: tuple[str, ...] | None = NUMERIC  # the operand types it computes on (None: any)


def _erf(x: np.ndarray) -> np.ndarray:
    return np.vectorize(math.erf, otypes=[x.dtype])(x)


def _div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if a.dtype.kind in "iu":  # C++ integer division truncates toward zero
        with np.errstate(all="ignore"):
            q = np.abs(a) // np.where(b == 0, 1, np.abs(b))
        return np.where((a < 0) != (b < 0), -q, q).astype(a.dtype)
    return a / b


def _pow(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if a.dtype.kind not in "iu":
        return np.power(a, b)
    # integers: exact, wrapping like the other integer ops; a negative exponent gives the
    # truncated quotient 1 / a**-b (0 unless a is 1 or -1; 0 for a == 0)
    a, b = np.broadcast_arrays(a, b)
    neg = b < 0
    out = np.power(a, np.where(neg, 0, b))
    odd = (np.abs(b) % 2) == 1
    inverse = np.where(a == 1, 1, np.where(a == -1, np.where(odd, -1, 1), 0))
    return np.where(neg, inverse, out).astype(a.dtype)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


# f16 is storage only: no op computes on it (cast_f32 it first)
_OPS = [
    ScalarOp("add", 2, np.add), ScalarOp("sub", 2, np.subtract), ScalarOp("mul", 2, np.multiply),
    ScalarOp("div", 2, _div), ScalarOp("pow", 2, _pow),
    ScalarOp("max", 2, np.maximum), ScalarOp("min", 2, np.minimum),
    ScalarOp("neg", 1, np.negative), ScalarOp("abs", 1, np.abs),
    ScalarOp("exp", 1, np.exp, types=FLOATS), ScalarOp("expm1", 1, np.expm1, types=FLOATS),
    ScalarOp("log", 1, np.log, types=FLOATS), ScalarOp("log1p", 1, np.log1p, types=FLOATS),
    ScalarOp("sqrt", 1, np.sqrt, types=FLOATS), ScalarOp("tanh", 1, np.tanh, types=FLOATS),
    ScalarOp("erf", 1, _erf, types=FLOATS), ScalarOp("sigmoid", 1, _sigmoid, types=FLOATS),
    ScalarOp("floor", 1, np.floor, types=FLOATS), ScalarOp("ceil", 1, np.ceil, types=FLOATS),
    ScalarOp("gt", 2, np.greater, "bool"), ScalarOp("ge", 2, np.greater_equal, "bool"),
    ScalarOp("lt", 2, np.less, "bool"), ScalarOp("le", 2, np.less_equal, "bool"),
    ScalarOp("eq", 2, np.equal, "bool", NUMERIC + ("i1",)),
    ScalarOp("ne", 2, np.not_equal, "bool", NUMERIC + ("i1",)),
    ScalarOp("and", 2, np.logical_and, "bool", ("i1",)), ScalarOp("or", 2, np.logical_or, "bool", ("i1",)),
    ScalarOp("not", 1, np.logical_not, "bool", ("i1",)),
    ScalarOp("select", 3, lambda c, a, b: np.where(c, a, b), "first", None),
]


def _gelu(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1 + _erf(x / np.asarray(math.sqrt(2), x.dtype)))


def _fmod(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """C's % and fmod: the remainder takes the sign of the dividend; an integer division by
    zero gives 0 (as the C++ helper does, instead of trapping)."""
    if a.dtype.kind in "iu":
        return np.where(b == 0, 0, np.fmod(a, np.where(b == 0, 1, b))).astype(a.dtype)
    return np.fmod(a, b)


def _mod(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Python's %: the remainder takes the sign of the divisor (integer division by zero: 0)."""
    if a.dtype.kind in "iu":
        return np.where(b == 0, 0, np.mod(a, np.where(b == 0, 1, b))).astype(a.dtype)
    return np.mod(a, b)


def _shift(left: bool) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """ONNX BitShift: wrapping left shift, arithmetic right shift; a shift by a negative amount
    or by the width or more leaves the sign fill (-1 for a right shift of a negative a, else 0)."""
    def shift(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        bits = a.dtype.itemsize * 8
        out_of_range = (b < 0) | (b >= bits)
        safe = np.where(out_of_range, 0, b).astype(a.dtype)
        out = np.left_shift(a, safe) if left else np.right_shift(a, safe)
        fill = 0 if left else np.where(a < 0, -1, 0)
        return np.where(out_of_range, fill, out).astype(a.dtype)
    return shift


# the trigonometric family, rounding, signs, bits and remainders (ONNX's elementwise math)
_OPS += [ScalarOp(name, 1, fn, types=FLOATS) for name, fn in (
    ("sin", np.sin), ("cos", np.cos), ("tan", np.tan), ("asin", np.arcsin), ("acos", np.arccos),
    ("atan", np.arctan), ("sinh", np.sinh), ("cosh", np.cosh), ("asinh", np.arcsinh),
    ("acosh", np.arccosh), ("atanh", np.arctanh), ("round", np.round), ("gelu", _gelu))]
_OPS += [
    ScalarOp("fmod", 2, _fmod), ScalarOp("mod", 2, _mod),
    ScalarOp("band", 2, np.bitwise_and, types=INTS), ScalarOp("bor", 2, np.bitwise_or, types=INTS),
    ScalarOp("bxor", 2, np.bitwise_xor, types=INTS), ScalarOp("bnot", 1, np.invert, types=INTS),
    ScalarOp("shl", 2, _shift(True), types=INTS), ScalarOp("shr", 2, _shift(False), types=INTS),
]
SCALAR_OPS: dict[str, ScalarOp] = {op.name: op for op in _OPS}
CAST_PREFIX = "cast_"  # cast_f32(x0), cast_i64(x0), ...
# ONNX Cast's options, spelled after the type: cast_f8e4m3fn_nosat(x0) is saturate=0 (the
# default saturates float8 results), cast_f8e8m0_nearest(x0) a round_mode other than up
_NOSAT = "nosat"


def cast_op(to: str, saturate: bool = True, round_mode: str = "up") -> str:
    """The scalar op name of a cast to `to`; the options are spelled only where they matter."""
    parts = [CAST_PREFIX + to]
    if not saturate and (to in FLOAT8 or to == "f8e8m0"):
        parts.append(_NOSAT)
    if round_mode != "up" and to == "f8e8m0":
        parts.append(round_mode)
    return "_".join(parts)


def cast_target(op: str) -> tuple[str, bool, str]:
    """(element type, saturate, round_mode) of a cast op name such as cast_f8e5m2_nosat."""
    to, *options = op[len(CAST_PREFIX):].split("_")
    saturate, round_mode = True, "up"
    for o in options:
        if o == _NOSAT:
            saturate = False
        elif o in ROUND_MODES:
            round_mode = o
        else:
            raise SofieError(f"scalar op '{op}': unknown cast option '{o}' (known: {_NOSAT}, {', '.join(ROUND_MODES)})")
    if to not in DTYPES:
        raise SofieError(f"scalar op '{op}': unknown element type '{to}'")
    return to, saturate, round_mode


# ---- the expression tree --------------------------------------------------------------------

@dataclass(frozen=True)
class Var:
    index: int  # -1: the reduction accumulator `acc`

    def __str__(self) -> str:
        return "acc" if self.index < 0 else f"x{self.index}"


@dataclass(frozen=True)
class Const:
    value: float | int | bool

    def __str__(self) -> str:
        v = self.value
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, float):
            from sofie.ir.printer import format_float  # the IR's one float spelling
            return format_float(v)
        return str(v)


@dataclass(frozen=True)
class Call:
    op: str
    args: tuple[Expr, ...]

    def __str__(self) -> str:
        return f"{self.op}({', '.join(map(str, self.args))})"


Expr = Var | Const | Call

_GRAMMAR = r"""
?expr: call | number | var
call: NAME "(" expr ("," expr)* ")"
var: VAR
number: SIGNED_NUMBER | SPECIAL
VAR.2: /x[0-9]+|acc/
SPECIAL.2: /-?inf|nan|true|false/
NAME: /[a-z_][a-z0-9_]*/
%import common.SIGNED_NUMBER
%import common.WS
%ignore WS
"""


class _Tree(Transformer):
    def call(self, items):
        return Call(str(items[0]), tuple(items[1:]))

    def var(self, items):
        s = str(items[0])
        return Var(-1 if s == "acc" else int(s[1:]))

    def number(self, items):
        s = str(items[0])
        if s in ("true", "false"):
            return Const(s == "true")
        if s.lstrip("-") in ("inf", "nan"):
            return Const(float(s))
        return Const(float(s) if any(c in s for c in ".eE") else int(s))


_PARSER = Lark(_GRAMMAR, start="expr", parser="lalr")


@lru_cache(maxsize=4096)
def parse_body(text: str) -> Expr:
    """The expression tree of a body; errors say what is wrong."""
    try:
        tree = _PARSER.parse(text)
    except UnexpectedInput as e:
        raise SofieError(f"scalar body '{text}': syntax error at column {e.column}") from None
    expr = _Tree().transform(tree)
    _check_ops(expr, text)
    return expr


def _check_ops(e: Expr, text: str) -> None:
    if isinstance(e, Call):
        if e.op.startswith(CAST_PREFIX):
            cast_target(e.op)
            arity = 1
        elif e.op in SCALAR_OPS:
            arity = SCALAR_OPS[e.op].arity
        else:
            raise SofieError(f"scalar body '{text}': unknown op '{e.op}' (known: {', '.join(SCALAR_OPS)}, cast_<type>)")
        if len(e.args) != arity:
            raise SofieError(f"scalar body '{text}': {e.op} takes {arity} operand(s), got {len(e.args)}")
        for a in e.args:
            _check_ops(a, text)


def substitute(e: Expr, mapping: dict[int, Expr]) -> Expr:
    """`e` with each variable x<i> in `mapping` replaced by its expression."""
    if isinstance(e, Var):
        return mapping.get(e.index, e)
    if isinstance(e, Call):
        return Call(e.op, tuple(substitute(a, mapping) for a in e.args))
    return e


def variables(e: Expr) -> set[int]:
    if isinstance(e, Var):
        return {e.index}
    if isinstance(e, Call):
        return set().union(*(variables(a) for a in e.args))
    return set()


# ---- types ----------------------------------------------------------------------------------

def result_type(e: Expr, var_types: list[str], acc_type: str | None = None) -> str | None:
    """The element type of `e` given its variables' types ('i1' for bool); None for a bare
    literal, which takes its type from context."""
    if isinstance(e, Var):
        if e.index < 0:
            if acc_type is None:
                raise SofieError("scalar body uses 'acc' outside a reduction")
            return acc_type
        if e.index >= len(var_types):
            raise SofieError(f"scalar body reads x{e.index}, but the loop has {len(var_types)} operand(s)")
        return var_types[e.index]
    if isinstance(e, Const):
        return None
    types = [result_type(a, var_types, acc_type) for a in e.args]
    if e.op.startswith(CAST_PREFIX):
        return cast_target(e.op)[0]
    spec = SCALAR_OPS[e.op]
    if spec.result == "first":
        if types[0] not in (None, "i1"):
            raise SofieError(f"scalar '{e}': the condition of select is {types[0]}, expected i1")
        return _same(e, types[1:])
    t = _same(e, types)
    if t is not None and spec.types is not None and t not in spec.types:
        raise SofieError(f"scalar '{e}': {e.op} has no kernel for element type {t} "
                         f"(supported: {', '.join(spec.types)})")
    return "i1" if spec.result == "bool" else t


def _same(e: Expr, types: list[str | None]) -> str | None:
    known = {t for t in types if t is not None}
    if len(known) > 1:
        raise SofieError(f"scalar '{e}': operand types differ ({', '.join(sorted(known))})")
    return known.pop() if known else None


# ---- numpy evaluation (the reference) -------------------------------------------------------

def literal_value(value: float | int | bool, dtype: np.dtype) -> np.ndarray:
    """A literal in `dtype`. In an integer type, +-inf (Clip's open bounds) and values beyond
    the range are the type's limits; a non-integer float is refused (the C++ spelling agrees)."""
    dtype = np.dtype(dtype)
    if dtype.kind in "iu" and not isinstance(value, bool):
        if isinstance(value, float) and math.isnan(value):
            raise SofieError(f"the literal nan has no value in integer type {dtype}")
        if isinstance(value, float) and math.isfinite(value) and not value.is_integer():
            raise SofieError(f"the literal {value} is not an integer of type {dtype}")
        info = np.iinfo(dtype)
        if value >= info.max:
            return np.asarray(info.max, dtype)
        if value <= info.min:
            return np.asarray(info.min, dtype)
        return np.asarray(int(value), dtype)
    return np.asarray(value, dtype)


def evaluate(e: Expr, values: list[np.ndarray], acc: np.ndarray | None = None) -> np.ndarray:
    """`e` over numpy arrays (broadcasting); literals take the dtype of their siblings."""
    if isinstance(e, Var):
        return acc if e.index < 0 else values[e.index]
    if isinstance(e, Const):
        return np.asarray(e.value)
    args = [evaluate(a, values, acc) for a in e.args]
    if e.op.startswith(CAST_PREFIX):
        return cast_array(np.asarray(args[0]), *cast_target(e.op))
    spec = SCALAR_OPS[e.op]
    first = 1 if spec.result == "first" else 0  # select's condition keeps its own type
    typed = [a for a, sub in zip(args[first:], e.args[first:]) if not isinstance(sub, Const)]
    dtype = np.result_type(*typed) if typed else None
    if dtype is not None:  # literals take the type of what they combine with
        args = args[:first] + [literal_value(sub.value, dtype) if isinstance(sub, Const) else a
                               for a, sub in zip(args[first:], e.args[first:])]
    with np.errstate(all="ignore"):
        out = spec.numpy(*args)
    if dtype is not None and spec.result == "same":
        out = np.asarray(out).astype(dtype, copy=False)
    return np.asarray(out)
