"""Elementwise ops. Each is one table row: its ONNX name, its definition as a scalar body
(`sofie.ir.dialects.scalar`) over `x` (unary) or `a`, `b` (binary) and its float attributes,
and the element types it is defined on (ONNX's, less those without a kernel: f16 is accepted
in graph IR, as ONNX does, and refused by lowering; its values are storage only).

That body is the only definition: the numpy reference evaluates it, lowering turns it into a
loop body, and a Conv / Gemm / MatMul that fuses the op as its activation carries the same body
into its kernel's epilogue.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from sofie.errors import SofieError
from sofie.ir.core import Operation
from sofie.ir.dialects.scalar import Const, Expr, evaluate, parse_body
from sofie.ir.registry import COMMUTATIVE, INPLACE, PURE, SYMBOLIC, Attr, OpDef, register
from sofie.ir.types import FLOATS, NUMERIC, SIGNED_INTS, TensorType, broadcast_shapes

_INF = math.inf
SIGNED = FLOATS + SIGNED_INTS


def _f32(x: float) -> float:
    """An ONNX float attribute's default: a float32, also when the op runs on double (as in
    onnxruntime, where HardSigmoid's alpha = 0.2f is 0.20000000298023224 in a double model)."""
    return float(np.float32(x))


@dataclass(frozen=True)
class Unary:
    name: str
    onnx: str
    body: str                                      # over x and the parameter names
    params: tuple[tuple[str, float], ...] = ()
    types: tuple[str, ...] = FLOATS                # element types with a kernel


UNARY = [
    Unary("relu", "Relu", "max(x, 0)", types=SIGNED),
    Unary("sigmoid", "Sigmoid", "sigmoid(x)"),
    Unary("tanh", "Tanh", "tanh(x)"),
    Unary("leaky_relu", "LeakyRelu", "select(ge(x, 0), x, mul(alpha, x))", (("alpha", _f32(0.01)),)),
    Unary("elu", "Elu", "select(ge(x, 0), x, mul(alpha, expm1(x)))", (("alpha", 1.0),)),
    Unary("selu", "Selu", "mul(gamma, select(gt(x, 0), x, mul(alpha, expm1(x))))",
          (("alpha", _f32(1.6732632423543772)), ("gamma", _f32(1.0507009873554805)))),
    Unary("hard_sigmoid", "HardSigmoid", "min(max(add(mul(alpha, x), beta), 0), 1)",
          (("alpha", _f32(0.2)), ("beta", 0.5))),
    Unary("hard_swish", "HardSwish", "mul(x, min(max(add(div(x, 6), 0.5), 0), 1))"),
    Unary("clip", "Clip", "min(max(x, min), max)", (("min", -_INF), ("max", _INF)), NUMERIC),
    Unary("exp", "Exp", "exp(x)"),
    Unary("log", "Log", "log(x)"),
    Unary("sqrt", "Sqrt", "sqrt(x)"),
    Unary("abs", "Abs", "abs(x)", types=NUMERIC),
    Unary("neg", "Neg", "neg(x)", types=SIGNED),
    Unary("reciprocal", "Reciprocal", "div(1, x)"),
    Unary("floor", "Floor", "floor(x)"),
    Unary("ceil", "Ceil", "ceil(x)"),
    Unary("erf", "Erf", "erf(x)"),
    Unary("softplus", "Softplus", "log1p(exp(x))"),
    Unary("softsign", "Softsign", "div(x, add(1, abs(x)))"),
]


@dataclass(frozen=True)
class Binary:
    name: str
    onnx: str
    body: str  # over a and b
    commutative: bool = False
    types: tuple[str, ...] = NUMERIC


BINARY = [
    Binary("add", "Add", "add(a, b)", True),
    Binary("sub", "Sub", "sub(a, b)"),
    Binary("mul", "Mul", "mul(a, b)", True),
    Binary("div", "Div", "div(a, b)"),
    Binary("pow", "Pow", "pow(a, b)", types=FLOATS + ("i32", "i64")),
    Binary("max", "Max", "max(a, b)", True),
    Binary("min", "Min", "min(a, b)", True),
]


def check_type(op: Operation, spec: Unary | Binary, dtype: str) -> None:
    """Refuses an element type the op is not defined on (f16 passes: ONNX defines every one
    of these on it; lowering refuses it for want of a kernel)."""
    if dtype not in spec.types and dtype != "f16":
        raise SofieError(f"{op.describe()}: {spec.onnx} is not defined on element type {dtype} "
                         f"(supported: {', '.join(spec.types)})")


def instantiate(body: str, variables: dict[str, str], params: dict[str, float]) -> Expr:
    """A declaration's body with its variables renamed (x -> x0) and parameters as literals."""
    names = {**variables, **{k: str(Const(float(v))) for k, v in params.items()}}
    text = re.sub(r"\b(" + "|".join(map(re.escape, names)) + r")\b(?!\()", lambda m: names[m.group(1)], body)
    return parse_body(text)


class UnaryOp(OpDef):
    """An elementwise function of one tensor; see the UNARY table."""

    operands = "X"
    traits = frozenset({PURE, INPLACE})
    spec: Unary

    def shape(self, op: Operation, x: TensorType) -> TensorType:
        check_type(op, self.spec, x.dtype)
        return x

    def params(self, op: Operation) -> dict[str, float]:
        return {k: float(op.attr(k)) for k, _ in self.spec.params}

    def body(self, op: Operation) -> Expr:
        """This op as a scalar body over x0."""
        return instantiate(self.spec.body, {"x": "x0"}, self.params(op))

    def reference(self, op: Operation, x: np.ndarray) -> np.ndarray:
        return evaluate(self.body(op), [x]).astype(x.dtype)


class BinaryOp(OpDef):
    """An elementwise function of two tensors with numpy broadcasting; see the BINARY table."""

    operands = "A B"
    spec: Binary

    def shape(self, op: Operation, a: TensorType, b: TensorType) -> TensorType:
        if a.dtype != b.dtype:
            raise SofieError(f"{op.describe()}: operand types differ ({a.dtype} vs {b.dtype})")
        check_type(op, self.spec, a.dtype)
        return a.with_shape(broadcast_shapes(a.shape, b.shape))

    def body(self, op: Operation) -> Expr:
        return instantiate(self.spec.body, {"a": "x0", "b": "x1"}, {})

    def reference(self, op: Operation, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return evaluate(self.body(op), [a, b]).astype(a.dtype)


def _declare() -> dict[str, type[OpDef]]:
    out = {}
    for u in UNARY:
        attrs = {k: Attr("float", d) for k, d in u.params}
        out[u.onnx] = register(type(u.onnx, (UnaryOp,), {"name": f"graph.{u.name}", "onnx": u.onnx,
                                                        "attrs": attrs, "spec": u, "doc": f"ONNX {u.onnx}"}))
    for b in BINARY:
        # SYMBOLIC: shape arithmetic (x.size(0) * x.size(1)) folds over dim symbols
        traits = frozenset({PURE, INPLACE, SYMBOLIC} | ({COMMUTATIVE} if b.commutative else set()))
        out[b.onnx] = register(type(b.onnx, (BinaryOp,), {"name": f"graph.{b.name}", "onnx": b.onnx, "spec": b,
                                                         "traits": traits,
                                                         "doc": f"ONNX {b.onnx}, numpy broadcasting"}))
    return out


DECLARED = _declare()
Add = DECLARED["Add"]  # the declarations passes match on by class
ACTIVATIONS = {u.name: u for u in UNARY}  # every unary op fuses into a Conv / Gemm epilogue


def activation_of(op: Operation) -> tuple[str, list[float]] | None:
    """(name, params) of `op` as an epilogue, if it is a unary elementwise op."""
    d = op.opdef
    if isinstance(d, UnaryOp):
        return d.spec.name, list(d.params(op).values())
    return None


def activation_body(name: str, params: list[float]) -> Expr:
    """The scalar body over x0 of the activation `name` with `params` (defaults when empty)."""
    spec = ACTIVATIONS[name]
    values = params or [d for _, d in spec.params]
    return instantiate(spec.body, {"x": "x0"}, dict(zip((k for k, _ in spec.params), values)))
