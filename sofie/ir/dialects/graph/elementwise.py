"""Elementwise ops. Each is one table row: its ONNX name, its definition as a scalar body
(`sofie.ir.dialects.scalar`) over `x` (unary), `a`, `b` (binary) or the fold of `a`, `b` over
any number of inputs (variadic), its float attributes, and the element types it is defined on
(ONNX's, less those without a kernel). A string or int attribute that changes the function
(Gelu's approximate, Mod's fmod, BitShift's direction) picks one of several bodies (`Choice`).

That body is the only definition: the numpy reference evaluates it, lowering turns it into a
loop body, and a Conv / Gemm / MatMul that fuses the op as its activation carries the same body
into its kernel's epilogue. f16 and bf16 are storage only: on their operands the body reads
them as f32 and rounds a float result back (as onnxruntime computes most f16 ops).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from sofie.errors import SofieError
from sofie.ir.core import Operation
from sofie.ir.dialects.scalar import Call, Const, Expr, Var, evaluate, parse_body, result_type, substitute
from sofie.ir.registry import COMMUTATIVE, INPLACE, PURE, SYMBOLIC, Attr, OpDef, register
from sofie.ir.types import (
    COMPUTED_AS_F32,
    FLOATS,
    INTS,
    NUMERIC,
    SIGNED_INTS,
    TensorType,
    broadcast_shapes,
    numpy_dtype,
)

_INF = math.inf
SIGNED = FLOATS + SIGNED_INTS
BOOL = ("i1",)


def _f32(x: float) -> float:
    """An ONNX float attribute's default: a float32, also when the op runs on double (as in
    onnxruntime, where HardSigmoid's alpha = 0.2f is 0.20000000298023224 in a double model)."""
    return float(np.float32(x))


@dataclass(frozen=True)
class Choice:
    """An attribute that picks the body: {value: body}, the first value being the default."""

    attr: str
    kind: str  # "str" or "int"
    bodies: tuple[tuple[str | int, str], ...]


@dataclass(frozen=True)
class Unary:
    name: str
    onnx: str
    body: str | Choice                             # over x and the parameter names
    params: tuple[tuple[str, float], ...] = ()
    types: tuple[str, ...] = FLOATS                # element types with a kernel


# log(1 + e^x) without overflow for large x
_SOFTPLUS = "add(max(x, 0), log1p(exp(neg(abs(x)))))"
_GELU_TANH = "mul(mul(0.5, x), add(1, tanh(mul(0.7978845608028654, add(x, mul(0.044715, mul(x, mul(x, x))))))))"

UNARY = [
    Unary("relu", "Relu", "max(x, 0)", types=SIGNED),
    Unary("sigmoid", "Sigmoid", "sigmoid(x)"),
    Unary("tanh", "Tanh", "tanh(x)"),
    Unary("leaky_relu", "LeakyRelu", "select(ge(x, 0), x, mul(alpha, x))", (("alpha", _f32(0.01)),)),
    Unary("elu", "Elu", "select(ge(x, 0), x, mul(alpha, expm1(x)))", (("alpha", 1.0),)),
    Unary("selu", "Selu", "mul(gamma, select(gt(x, 0), x, mul(alpha, expm1(x))))",
          (("alpha", _f32(1.6732632423543772)), ("gamma", _f32(1.0507009873554805)))),
    Unary("celu", "Celu", "add(max(x, 0), min(0, mul(alpha, expm1(div(x, alpha)))))", (("alpha", 1.0),)),
    Unary("hard_sigmoid", "HardSigmoid", "min(max(add(mul(alpha, x), beta), 0), 1)",
          (("alpha", _f32(0.2)), ("beta", 0.5))),
    Unary("hard_swish", "HardSwish", "mul(x, min(max(add(div(x, 6), 0.5), 0), 1))"),
    Unary("thresholded_relu", "ThresholdedRelu", "select(gt(x, alpha), x, 0)", (("alpha", 1.0),)),
    Unary("shrink", "Shrink", "select(lt(x, neg(lambd)), add(x, bias), select(gt(x, lambd), sub(x, bias), 0))",
          (("lambd", 0.5), ("bias", 0.0))),
    Unary("gelu", "Gelu", Choice("approximate", "str", (("none", "gelu(x)"), ("tanh", _GELU_TANH)))),
    Unary("mish", "Mish", f"mul(x, tanh({_SOFTPLUS}))"),
    Unary("swish", "Swish", "mul(x, sigmoid(mul(alpha, x)))", (("alpha", 1.0),)),
    Unary("clip", "Clip", "min(max(x, min), max)", (("min", -_INF), ("max", _INF)), NUMERIC),
    Unary("exp", "Exp", "exp(x)"),
    Unary("log", "Log", "log(x)"),
    Unary("sqrt", "Sqrt", "sqrt(x)"),
    Unary("abs", "Abs", "abs(x)", types=NUMERIC),
    Unary("neg", "Neg", "neg(x)", types=SIGNED),
    # -0 gives +0 (as onnxruntime), NaN gives NaN
    Unary("sign", "Sign", "select(gt(x, 0), 1, select(lt(x, 0), -1, select(eq(x, 0), 0, x)))", types=NUMERIC),
    Unary("reciprocal", "Reciprocal", "div(1, x)"),
    Unary("floor", "Floor", "floor(x)"),
    Unary("ceil", "Ceil", "ceil(x)"),
    Unary("round", "Round", "round(x)"),
    Unary("erf", "Erf", "erf(x)"),
    Unary("softplus", "Softplus", _SOFTPLUS),
    Unary("softsign", "Softsign", "div(x, add(1, abs(x)))"),
    *(Unary(f, f.capitalize(), f"{f}(x)") for f in (
        "sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "asinh", "acosh", "atanh")),
    Unary("is_nan", "IsNaN", "ne(x, x)"),
    Unary("is_inf", "IsInf", "or(and(eq(x, inf), detect_positive), and(eq(x, -inf), detect_negative))",
          (("detect_positive", 1.0), ("detect_negative", 1.0))),
    Unary("not", "Not", "not(x)", types=BOOL),
    Unary("bitwise_not", "BitwiseNot", "bnot(x)", types=INTS),
]


@dataclass(frozen=True)
class Binary:
    name: str
    onnx: str
    body: str | Choice  # over a and b
    commutative: bool = False
    types: tuple[str, ...] = NUMERIC
    mixed: bool = False  # b may have another element type than a (Pow); the result has a's


_COMPARABLE = NUMERIC + BOOL

BINARY = [
    Binary("add", "Add", "add(a, b)", True),
    Binary("sub", "Sub", "sub(a, b)"),
    Binary("mul", "Mul", "mul(a, b)", True),
    Binary("div", "Div", "div(a, b)"),
    Binary("pow", "Pow", "pow(a, b)", types=FLOATS + ("i32", "i64"), mixed=True),
    Binary("mod", "Mod", Choice("fmod", "int", ((0, "mod(a, b)"), (1, "fmod(a, b)")))),
    Binary("prelu", "PRelu", "select(lt(a, 0), mul(b, a), a)"),
    Binary("equal", "Equal", "eq(a, b)", True, _COMPARABLE),
    Binary("less", "Less", "lt(a, b)"),
    Binary("less_or_equal", "LessOrEqual", "le(a, b)"),
    Binary("greater", "Greater", "gt(a, b)"),
    Binary("greater_or_equal", "GreaterOrEqual", "ge(a, b)"),
    Binary("and", "And", "and(a, b)", True, BOOL),
    Binary("or", "Or", "or(a, b)", True, BOOL),
    Binary("xor", "Xor", "ne(a, b)", True, BOOL),
    Binary("bitwise_and", "BitwiseAnd", "band(a, b)", True, INTS),
    Binary("bitwise_or", "BitwiseOr", "bor(a, b)", True, INTS),
    Binary("bitwise_xor", "BitwiseXor", "bxor(a, b)", True, INTS),
    Binary("bit_shift", "BitShift", Choice("direction", "str", (("LEFT", "shl(a, b)"), ("RIGHT", "shr(a, b)"))),
           types=INTS),  # signed since opset 28
]


@dataclass(frozen=True)
class Variadic:
    """An op over one or more inputs: `step` folds a (the inputs so far) with b (the next),
    `finish` turns the fold s into the result, n being the input count."""

    name: str
    onnx: str
    step: str
    finish: str = "s"
    types: tuple[str, ...] = NUMERIC


VARIADIC = [
    Variadic("max", "Max", "max(a, b)"),
    Variadic("min", "Min", "min(a, b)"),
    Variadic("sum", "Sum", "add(a, b)", types=FLOATS),
    Variadic("mean", "Mean", "add(a, b)", "div(s, n)", FLOATS),
]


def check_type(op: Operation, spec: Unary | Binary | Variadic, dtype: str) -> None:
    """Refuses an element type the op is not defined on (f16 and bf16 pass where f32 does:
    they compute in f32)."""
    if dtype not in spec.types and not (dtype in COMPUTED_AS_F32 and "f32" in spec.types):
        raise SofieError(f"{op.describe()}: {spec.onnx} is not defined on element type {dtype} "
                         f"(supported: {', '.join(spec.types)})")


def instantiate(body: str, variables: dict[str, str], params: dict[str, float]) -> Expr:
    """A declaration's body with its variables renamed (x -> x0) and parameters as literals."""
    names = {**variables, **{k: str(Const(float(v))) for k, v in params.items()}}
    text = re.sub(r"\b(" + "|".join(map(re.escape, names)) + r")\b(?!\()", lambda m: names[m.group(1)], body)
    return parse_body(text)


def chosen(op: Operation, body: str | Choice) -> str:
    """The body `op`'s attributes pick."""
    if isinstance(body, str):
        return body
    value = op.attr(body.attr)
    for k, text in body.bodies:
        if k == value:
            return text
    raise SofieError(f"{op.describe()}: {body.attr}={value!r} is not supported "
                     f"(expected one of {', '.join(repr(k) for k, _ in body.bodies)})")


def _choice_attrs(body: str | Choice) -> dict[str, Attr]:
    return {body.attr: Attr(body.kind, body.bodies[0][0])} if isinstance(body, Choice) else {}


def through_f32(e: Expr, types: list[str]) -> Expr:
    """`e` over operands of `types` where f16 / bf16 ones are read as f32 and a float result
    is rounded back to that type (they are storage only: no scalar op computes on them)."""
    narrow = [t for t in types if t in COMPUTED_AS_F32]
    if not narrow:
        return e
    e = substitute(e, {i: Call("cast_f32", (Var(i),)) for i, t in enumerate(types) if t in COMPUTED_AS_F32})
    out = result_type(e, ["f32" if t in COMPUTED_AS_F32 else t for t in types])
    return Call(f"cast_{narrow[0]}", (e,)) if out == "f32" else e


class Elementwise(OpDef):
    """An op whose result element i is a scalar body over element i of its (broadcast)
    operands; lowering makes it one `low.generic`."""

    traits = frozenset({PURE, INPLACE})

    def body(self, op: Operation) -> Expr:
        """This op as a scalar body over x0, x1, ... on its operands' element types."""
        raise NotImplementedError

    def shape(self, op: Operation, *types: TensorType | None) -> TensorType:
        self.check(op, [t for t in types if t is not None])
        present = [t for t in types if t is not None]
        shape = present[0].shape
        for t in present[1:]:
            shape = broadcast_shapes(shape, t.shape)
        return TensorType(result_type(self.body(op), [t.dtype for t in present]) or present[0].dtype, shape)

    def check(self, op: Operation, types: list[TensorType]) -> None:
        """Refuses operand element types the op is not defined on."""
        for t in types[1:]:
            if t.dtype != types[0].dtype:
                raise SofieError(f"{op.describe()}: operand types differ ({types[0].dtype} vs {t.dtype})")
        check_type(op, self.spec, types[0].dtype)

    def reference(self, op: Operation, *arrays: np.ndarray | None) -> np.ndarray:
        present = [a for a in arrays if a is not None]
        out = np.asarray(evaluate(self.body(op), present))
        if any(a.dtype == object for a in present):  # shape arithmetic over dim symbols (SYMBOLIC)
            return out
        return out.astype(numpy_dtype(op.results[0].type.dtype) if op.results else present[0].dtype)

    def _operand_types(self, op: Operation) -> list[str]:
        return [v.type.dtype for v in op.operands if v is not None]


class UnaryOp(Elementwise):
    """An elementwise function of one tensor; see the UNARY table."""

    operands = "X"
    spec: Unary

    def params(self, op: Operation) -> dict[str, float]:
        return {k: float(op.attr(k)) for k, _ in self.spec.params}

    def body(self, op: Operation) -> Expr:
        return through_f32(instantiate(chosen(op, self.spec.body), {"x": "x0"}, self.params(op)),
                           self._operand_types(op))


class BinaryOp(Elementwise):
    """An elementwise function of two tensors with numpy broadcasting; see the BINARY table."""

    operands = "A B"
    spec: Binary

    def check(self, op: Operation, types: list[TensorType]) -> None:
        if self.spec.mixed:
            check_type(op, self.spec, types[0].dtype)
            if types[1].dtype not in NUMERIC + COMPUTED_AS_F32:
                raise SofieError(f"{op.describe()}: {self.spec.onnx} is not defined on element type "
                                 f"{types[1].dtype} for its second operand")
        else:
            super().check(op, types)

    def body(self, op: Operation) -> Expr:
        e = instantiate(chosen(op, self.spec.body), {"a": "x0", "b": "x1"}, {})
        types = self._operand_types(op)
        if len(set(types)) > 1:  # Pow(int base, float exponent) computes in double, like onnxruntime
            ta, tb = types
            common = ta if ta not in COMPUTED_AS_F32 else "f32"
            if ta in INTS and tb in FLOATS + COMPUTED_AS_F32:
                common = "f64"
            read = {0: Var(0) if ta == common else Call(f"cast_{common}", (Var(0),)),
                    1: Var(1) if tb == common else Call(f"cast_{common}", (Var(1),))}
            e = substitute(e, read)
            return e if common == ta else Call(f"cast_{ta}", (e,))
        return through_f32(e, types)


class VariadicOp(Elementwise):
    """An elementwise function of one or more tensors with numpy broadcasting; see VARIADIC."""

    operands = "inputs*"
    traits = frozenset({PURE, INPLACE, COMMUTATIVE, SYMBOLIC})
    spec: Variadic

    def shape(self, op: Operation, *types: TensorType | None) -> TensorType:
        if not types:
            raise SofieError(f"{op.describe()}: {self.spec.onnx} needs at least one input")
        return super().shape(op, *types)

    def body(self, op: Operation) -> Expr:
        n = len(op.operands)
        text = "x0"
        for i in range(1, n):
            text = re.sub(r"\bb\b", f"x{i}", re.sub(r"\ba\b", text, self.spec.step))
        text = re.sub(r"\bn\b", str(n), re.sub(r"\bs\b", text, self.spec.finish))
        return through_f32(parse_body(text), self._operand_types(op))


@dataclass(frozen=True)
class _WhereSpec:
    onnx: str = "Where"
    types: tuple[str, ...] = NUMERIC + BOOL


@register
class Where(Elementwise):
    """ONNX Where: X where the bool condition holds, else Y, all three broadcast."""

    name = "graph.where"
    onnx = "Where"
    operands = "condition X Y"
    spec = _WhereSpec()
    # SYMBOLIC: torch's expand(n, -1, -1) picks dims with Where(Equal(shape, -1), ones, shape)
    traits = frozenset({PURE, INPLACE, SYMBOLIC})

    def check(self, op: Operation, types: list[TensorType]) -> None:
        if types[0].dtype != "i1":
            raise SofieError(f"{op.describe()}: the condition is {types[0].dtype}, expected bool")
        super().check(op, types[1:])

    def body(self, op: Operation) -> Expr:
        return parse_body("select(x0, x1, x2)")  # select moves f16 bits without computing


def _declare() -> dict[str, type[OpDef]]:
    out = {}
    for u in UNARY:
        attrs = {k: Attr("float", d) for k, d in u.params} | _choice_attrs(u.body)
        out[u.onnx] = register(type(u.onnx, (UnaryOp,), {"name": f"graph.{u.name}", "onnx": u.onnx,
                                                        "attrs": attrs, "spec": u, "doc": f"ONNX {u.onnx}"}))
    for b in BINARY:
        # SYMBOLIC: shape arithmetic (x.size(0) * x.size(1)) folds over dim symbols
        traits = frozenset({PURE, INPLACE, SYMBOLIC} | ({COMMUTATIVE} if b.commutative else set()))
        out[b.onnx] = register(type(b.onnx, (BinaryOp,), {"name": f"graph.{b.name}", "onnx": b.onnx, "spec": b,
                                                         "traits": traits, "attrs": _choice_attrs(b.body),
                                                         "doc": f"ONNX {b.onnx}, numpy broadcasting"}))
    for v in VARIADIC:
        out[v.onnx] = register(type(v.onnx, (VariadicOp,), {"name": f"graph.{v.name}", "onnx": v.onnx, "spec": v,
                                                           "doc": f"ONNX {v.onnx}, numpy broadcasting"}))
    return out


DECLARED = _declare()
Add = DECLARED["Add"]  # the declarations passes match on by class
Mul = DECLARED["Mul"]
Sigmoid = DECLARED["Sigmoid"]
Max, Min = DECLARED["Max"], DECLARED["Min"]


def _activations() -> dict[str, tuple[str, tuple[tuple[str, float], ...]]]:
    """Every unary op as an epilogue: name -> (body over x, params). A body picked by an
    attribute is its own activation, named after the value unless it is the default."""
    out = {}
    for u in UNARY:
        if isinstance(u.body, Choice):
            for k, (value, text) in enumerate(u.body.bodies):
                out[u.name if k == 0 else f"{u.name}_{value}".lower()] = (text, u.params)
        else:
            out[u.name] = (u.body, u.params)
    return out


ACTIVATIONS = _activations()


def activation_of(op: Operation) -> tuple[str, list[float]] | None:
    """(name, params) of `op` as an epilogue, if it is a unary elementwise op that keeps its
    operand's element type."""
    d = op.opdef
    if not isinstance(d, UnaryOp) or op.result.type.dtype != op.X.type.dtype or op.X.type.dtype in COMPUTED_AS_F32:
        return None
    name = d.spec.name
    if isinstance(d.spec.body, Choice):
        value = op.attr(d.spec.body.attr)
        if value != d.spec.body.bodies[0][0]:
            name = f"{name}_{value}".lower()
    return (name, list(d.params(op).values())) if name in ACTIVATIONS else None


def activation_body(name: str, params: list[float]) -> Expr:
    """The scalar body over x0 of the activation `name` with `params` (defaults when empty)."""
    text, spec = ACTIVATIONS[name]
    values = params or [d for _, d in spec]
    return instantiate(text, {"x": "x0"}, dict(zip((k for k, _ in spec), values)))
