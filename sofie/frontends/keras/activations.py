"""Keras built-in activations (`activation="..."` of any layer, and the Activation layer) as
graph ops."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sofie.frontends.keras.context import Context
from sofie.ir.core import Value


def _unary(op: str, **attrs: Any) -> Callable[[Context, Value], Value]:
    return lambda ctx, x: ctx.op(op, [x], attrs, "activation")


def _scalar(ctx: Context, x: Value, v: float, what: str) -> Value:
    from sofie.ir.types import numpy_dtype
    return ctx.const(numpy_dtype(x.type.dtype).type(v), what)


def _log_sigmoid(ctx: Context, x: Value) -> Value:
    neg = ctx.op("graph.neg", [x], {}, "activation")
    return ctx.op("graph.neg", [ctx.op("graph.softplus", [neg], {}, "activation")], {}, "activation")


def _tanh_shrink(ctx: Context, x: Value) -> Value:
    return ctx.op("graph.sub", [x, ctx.op("graph.tanh", [x], {}, "activation")], {}, "activation")


def _squareplus(ctx: Context, x: Value) -> Value:
    # (x + sqrt(x^2 + b)) / 2 with b = 4
    sq = ctx.op("graph.mul", [x, x], {}, "activation")
    root = ctx.op("graph.sqrt", [ctx.op("graph.add", [sq, _scalar(ctx, x, 4.0, "b")], {}, "activation")])
    total = ctx.op("graph.add", [x, root], {}, "activation")
    return ctx.op("graph.mul", [total, _scalar(ctx, x, 0.5, "half")], {}, "activation")


def _relu6(ctx: Context, x: Value) -> Value:
    return ctx.op("graph.clip", [x], {"min": 0.0, "max": 6.0}, "activation")


# Keras 3 names (keras.activations); a few Keras 2 aliases map to the same ops
ACTIVATIONS: dict[str, Callable[[Context, Value], Value] | None] = {
    "linear": None,
    "relu": _unary("graph.relu"),
    "relu6": _relu6,
    "sigmoid": _unary("graph.sigmoid"),
    "tanh": _unary("graph.tanh"),
    "softmax": _unary("graph.softmax", axis=-1),
    "log_softmax": _unary("graph.log_softmax", axis=-1),
    "softplus": _unary("graph.softplus"),
    "softsign": _unary("graph.softsign"),
    "elu": _unary("graph.elu", alpha=1.0),
    "selu": _unary("graph.selu"),
    "celu": _unary("graph.celu", alpha=1.0),
    "exponential": _unary("graph.exp"),
    "swish": _unary("graph.swish", alpha=1.0),
    "silu": _unary("graph.swish", alpha=1.0),
    "gelu": _unary("graph.gelu", approximate="none"),
    "hard_sigmoid": _unary("graph.hard_sigmoid", alpha=1.0 / 6.0, beta=0.5),
    "hard_silu": _unary("graph.hard_swish"),
    "hard_swish": _unary("graph.hard_swish"),
    "leaky_relu": _unary("graph.leaky_relu", alpha=0.2),
    "mish": _unary("graph.mish"),
    "log_sigmoid": _log_sigmoid,
    "hard_tanh": _unary("graph.clip", min=-1.0, max=1.0),
    "tanh_shrink": _tanh_shrink,
    "soft_shrink": _unary("graph.shrink", lambd=0.5, bias=0.5),
    "hard_shrink": _unary("graph.shrink", lambd=0.5, bias=0.0),
    "squareplus": _squareplus,
}


def activation_name(spec: Any) -> str:
    """The name in a config: a string, or a serialized function {'config': 'relu', ...}."""
    if spec is None:
        return "linear"
    if isinstance(spec, dict):
        inner = spec.get("config")
        return inner if isinstance(inner, str) else str(spec.get("class_name", spec))
    return str(spec)


def apply_activation(ctx: Context, x: Value, spec: Any) -> Value:
    name = activation_name(spec)
    if name not in ACTIVATIONS:
        raise ctx.error(f"activation '{name}' is not supported (supported: {', '.join(sorted(ACTIVATIONS))})")
    fn = ACTIVATIONS[name]
    return x if fn is None else fn(ctx, x)
