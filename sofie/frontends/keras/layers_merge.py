"""Shape layers (Flatten, Reshape, Permute, RepeatVector) and merge layers (Concatenate, Add,
Subtract, Multiply, Average, Maximum, Minimum, Dot)."""

from __future__ import annotations

from functools import reduce

from sofie.frontends.keras.context import Context, Layer
from sofie.ir.core import Value


def flatten(ctx: Context, layer: Layer, xs: list[Value]) -> Value:
    x = xs[0]
    if (layer.get("data_format") or "channels_last") == "channels_first" and x.type.rank > 2:
        x = ctx.to_channels_last(x)  # Keras flattens channels-first data in channels-last order
    return ctx.op("graph.flatten", [x], {"axis": 1})


def reshape(ctx: Context, layer: Layer, xs: list[Value]) -> Value:
    target = [int(d) for d in layer.get("target_shape")]
    return ctx.op("graph.reshape", [xs[0], ctx.ints([0, *target], "shape")])


def permute(ctx: Context, layer: Layer, xs: list[Value]) -> Value:
    return ctx.op("graph.transpose", [xs[0]], {"perm": [0, *(int(d) for d in layer.get("dims"))]})


def repeat_vector(ctx: Context, layer: Layer, xs: list[Value]) -> Value:
    n = int(layer.get("n"))
    y = ctx.op("graph.unsqueeze", [xs[0]], {"axes": [1]})
    return ctx.op("graph.tile", [y, ctx.ints([1, n, 1], "repeats")])


def concatenate(ctx: Context, layer: Layer, xs: list[Value]) -> Value:
    return ctx.op("graph.concat", xs, {"axis": ctx.axis(int(layer.get("axis", -1)), xs[0].type.rank)})


def _fold(op: str):
    def convert(ctx: Context, layer: Layer, xs: list[Value]) -> Value:
        if len(xs) < 2:
            raise ctx.error(f"expected at least 2 inputs, got {len(xs)}")
        return reduce(lambda a, b: ctx.op(op, [a, b]), xs)
    return convert


def _variadic(op: str):
    def convert(ctx: Context, layer: Layer, xs: list[Value]) -> Value:
        return ctx.op(op, xs)
    return convert


def subtract(ctx: Context, layer: Layer, xs: list[Value]) -> Value:
    if len(xs) != 2:
        raise ctx.error(f"Subtract takes exactly 2 inputs, got {len(xs)}")
    return ctx.op("graph.sub", xs)


def dot(ctx: Context, layer: Layer, xs: list[Value]) -> Value:
    """Batched dot products of two rank-2 or rank-3 tensors over one axis each."""
    if len(xs) != 2:
        raise ctx.error(f"Dot takes exactly 2 inputs, got {len(xs)}")
    a, b = xs
    ra, rb = a.type.rank, b.type.rank
    axes = layer.get("axes")
    axes = [axes, axes] if isinstance(axes, int) else list(axes)
    ax, bx = ctx.axis(int(axes[0]), ra), ctx.axis(int(axes[1]), rb)
    if layer.get("normalize"):
        a = ctx.op("graph.lp_normalization", [a], {"axis": ax, "p": 2}, "normalize")
        b = ctx.op("graph.lp_normalization", [b], {"axis": bx, "p": 2}, "normalize")
    if ra == rb == 2:
        prod = ctx.op("graph.mul", [a, b])
        return ctx.op("graph.reduce_sum", [prod, ctx.ints([1], "axes")], {"keepdims": 1})
    if ra != 3 or rb != 3 or 0 in (ax, bx):
        raise ctx.error(f"Dot of ranks {ra} and {rb} over axes {axes} is not supported "
                        f"(rank 2 with rank 2, or rank 3 with rank 3)")
    # out[n, i, j] = sum_k a[n, i, k] b[n, k, j] with k moved to a's last and b's middle axis
    if ax == 1:
        a = ctx.op("graph.transpose", [a], {"perm": [0, 2, 1]}, "a")
    if bx == 2:
        b = ctx.op("graph.transpose", [b], {"perm": [0, 2, 1]}, "b")
    return ctx.op("graph.matmul", [a, b])


CONVERTERS = {
    "Flatten": flatten, "Reshape": reshape, "Permute": permute, "RepeatVector": repeat_vector,
    "Concatenate": concatenate, "Add": _fold("graph.add"), "Subtract": subtract,
    "Multiply": _fold("graph.mul"), "Average": _variadic("graph.mean"), "Maximum": _variadic("graph.max"),
    "Minimum": _variadic("graph.min"), "Dot": dot,
}
