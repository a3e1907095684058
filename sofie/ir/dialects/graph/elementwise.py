"""Elementwise ops. Each is one table row: ONNX name, numpy semantics, the C expression the
lowering uses for loop nests, and (for activations) the runtime epilogue it can fuse into."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from sofie.errors import SofieError
from sofie.ir.core import Operation
from sofie.ir.registry import Attr, OpDef, register
from sofie.ir.types import TensorType, broadcast_shapes

_INF = math.inf


@dataclass(frozen=True)
class Unary:
    name: str
    onnx: str
    fn: Callable[..., np.ndarray]   # fn(x, *params)
    c: str                           # C expression over `x`, `p0`, `p1`
    params: tuple[tuple[str, float], ...] = ()
    act: str | None = None           # sofie::rt::Act epilogue it fuses into


def _erf(x: np.ndarray) -> np.ndarray:
    return np.vectorize(math.erf, otypes=[x.dtype])(x)


UNARY = [
    Unary("relu", "Relu", lambda x: np.maximum(x, 0), "(x < 0 ? 0 : x)", act="Relu"),
    Unary("sigmoid", "Sigmoid", lambda x: 1 / (1 + np.exp(-x)), "1 / (1 + std::exp(-x))", act="Sigmoid"),
    Unary("tanh", "Tanh", np.tanh, "std::tanh(x)", act="Tanh"),
    Unary("leaky_relu", "LeakyRelu", lambda x, a: np.where(x >= 0, x, a * x), "(x >= 0 ? x : p0 * x)",
          (("alpha", 0.01),), act="LeakyRelu"),
    Unary("elu", "Elu", lambda x, a: np.where(x >= 0, x, a * (np.exp(x) - 1)),
          "(x >= 0 ? x : p0 * (std::exp(x) - 1))", (("alpha", 1.0),), act="Elu"),
    Unary("selu", "Selu", lambda x, a, g: g * np.where(x > 0, x, a * (np.exp(x) - 1)),
          "p1 * (x > 0 ? x : p0 * (std::exp(x) - 1))",
          (("alpha", 1.6732632423543772), ("gamma", 1.0507009873554805)), act="Selu"),
    Unary("hard_sigmoid", "HardSigmoid", lambda x, a, b: np.clip(a * x + b, 0, 1),
          "std::min(std::max(p0 * x + p1, 0.f), 1.f)", (("alpha", 0.2), ("beta", 0.5)), act="HardSigmoid"),
    Unary("hard_swish", "HardSwish", lambda x: x * np.clip(x / 6 + 0.5, 0, 1),
          "x * std::min(std::max(x / 6 + 0.5f, 0.f), 1.f)", act="HardSwish"),
    Unary("clip", "Clip", lambda x, lo, hi: np.minimum(np.maximum(x, lo), hi),
          "std::min(std::max(x, p0), p1)", (("min", -_INF), ("max", _INF)), act="Clip"),
    Unary("exp", "Exp", np.exp, "std::exp(x)"),
    Unary("log", "Log", np.log, "std::log(x)"),
    Unary("sqrt", "Sqrt", np.sqrt, "std::sqrt(x)"),
    Unary("abs", "Abs", np.abs, "std::abs(x)"),
    Unary("neg", "Neg", np.negative, "(-x)"),
    Unary("reciprocal", "Reciprocal", lambda x: 1 / x, "(1 / x)"),
    Unary("floor", "Floor", np.floor, "std::floor(x)"),
    Unary("ceil", "Ceil", np.ceil, "std::ceil(x)"),
    Unary("erf", "Erf", _erf, "std::erf(x)"),
    Unary("softplus", "Softplus", lambda x: np.log1p(np.exp(x)), "std::log1p(std::exp(x))"),
    Unary("softsign", "Softsign", lambda x: x / (1 + np.abs(x)), "(x / (1 + std::abs(x)))"),
]


@dataclass(frozen=True)
class Binary:
    name: str
    onnx: str
    fn: Callable[[np.ndarray, np.ndarray], np.ndarray]
    c: str  # C expression over `a`, `b`


BINARY = [
    Binary("add", "Add", np.add, "a + b"),
    Binary("sub", "Sub", np.subtract, "a - b"),
    Binary("mul", "Mul", np.multiply, "a * b"),
    Binary("div", "Div", lambda a, b: a / b if a.dtype.kind == "f" else a // b, "a / b"),
    Binary("pow", "Pow", np.power, "std::pow(a, b)"),
    Binary("max", "Max", np.maximum, "std::max(a, b)"),
    Binary("min", "Min", np.minimum, "std::min(a, b)"),
]


class UnaryOp(OpDef):
    """An elementwise function of one tensor; see the UNARY table."""

    operands = "X"
    inplace = True
    spec: Unary

    def shape(self, op: Operation, x: TensorType) -> TensorType:
        return x

    def params(self, op: Operation) -> list[float]:
        return [float(op.attr(k)) for k, _ in self.spec.params]

    def reference(self, op: Operation, x: np.ndarray) -> np.ndarray:
        p = [x.dtype.type(v) for v in self.params(op)]
        return np.asarray(self.spec.fn(x, *p)).astype(x.dtype)


class BinaryOp(OpDef):
    """An elementwise function of two tensors with numpy broadcasting; see the BINARY table."""

    operands = "A B"
    inplace = True
    spec: Binary

    def shape(self, op: Operation, a: TensorType, b: TensorType) -> TensorType:
        if a.dtype != b.dtype:
            raise SofieError(f"{op.describe()}: operand types differ ({a.dtype} vs {b.dtype})")
        return a.with_shape(broadcast_shapes(a.shape, b.shape))

    def reference(self, op: Operation, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.asarray(self.spec.fn(a, b)).astype(a.dtype)


def _declare() -> None:
    for u in UNARY:
        attrs = {k: Attr("float", d) for k, d in u.params}
        register(type(u.onnx, (UnaryOp,), {"name": f"graph.{u.name}", "onnx": u.onnx, "attrs": attrs,
                                           "spec": u, "doc": f"ONNX {u.onnx}"}))
    for b in BINARY:
        register(type(b.onnx, (BinaryOp,), {"name": f"graph.{b.name}", "onnx": b.onnx, "spec": b,
                                            "doc": f"ONNX {b.onnx}, numpy broadcasting"}))


_declare()


def activation_of(op: Operation) -> tuple[str, list[float]] | None:
    """The runtime epilogue (name, params) equivalent to `op`, if it is a fusable activation."""
    d = op.opdef
    if isinstance(d, UnaryOp) and d.spec.act:
        return d.spec.act, d.params(op)
    return None


ACTIVATIONS = {u.act: u for u in UNARY if u.act}

