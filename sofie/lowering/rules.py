"""Lowering rules: graph op -> low kernel calls. Each picks the kernel from the known shapes."""

from __future__ import annotations

import math
import re

import numpy as np

from sofie.errors import SofieError
from sofie.ir.core import Operation
from sofie.ir.dialects.graph.elementwise import BinaryOp, UnaryOp
from sofie.ir.printer import format_float
from sofie.ir.registry import all_ops
from sofie.lowering.context import RULES, LoweringContext, rule

VIEW_OPS = ("graph.reshape", "graph.flatten", "graph.identity", "graph.dropout",
            "graph.squeeze", "graph.unsqueeze")


@rule(*VIEW_OPS)
def _view(ctx: LoweringContext, op: Operation) -> None:
    ctx.alias(op)


def _epilogue(op: Operation) -> dict:
    return {"activation": op.attr("activation"), "activation_params": op.attr("activation_params")}


@rule("graph.gemm")
def _gemm(ctx: LoweringContext, op: Operation) -> None:
    a, b, c = op.padded_operands()
    m, n = op.results[0].type.shape
    y = ctx.dest(op)
    bias, c_low = "none", ctx.value(c)
    if c is not None:
        if c.type.shape in ((n,), (1, n)) and op.attr("beta") == 1.0:
            bias = "row"  # added by the GEMM epilogue
        elif c.type.shape == (m, n):
            bias = "full"
        else:
            # any other broadcast ([1], [M, 1], ...) or a row bias scaled by beta: broadcast C into
            # Y first, then the GEMM accumulates onto Y with beta (`full` with C == Y copies nothing)
            ctx.create("low.map", [c_low, y], {"expr": "v0"}, op)
            bias, c_low = "full", y
    ctx.create("low.gemm", [ctx.value(a), ctx.value(b), c_low, y],
               {"transA": op.attr("transA"), "transB": op.attr("transB"), "alpha": op.attr("alpha"),
                "beta": op.attr("beta"), "bias": bias, **_epilogue(op)}, op)


@rule("graph.matmul")
def _matmul(ctx: LoweringContext, op: Operation) -> None:
    a, b = op.operands
    if b.type.rank > 2:
        raise SofieError(f"{op.describe()}: MatMul with a {b.type.rank}-D right operand is not "
                         f"supported yet (only [K, N] or [K] weights/activations)")
    y = ctx.dest(op)
    ctx.create("low.gemm", [ctx.value(a), ctx.value(b), None, y], _epilogue(op), op)


@rule("graph.cast")
def _cast(ctx: LoweringContext, op: Operation) -> None:
    if op.operands[0].type.dtype == op.results[0].type.dtype:
        # a no-op Cast (exporters write them): a copy into its own planned buffer (not an alias:
        # the memory plan does not treat Cast as a view, so the input may be reused after it)
        ctx.create("low.copy", [ctx.value(op.operands[0]), ctx.dest(op)], {}, op)
    elif not ctx.fold(op):
        raise SofieError(f"no lowering for {op.describe()}: a run-time Cast from "
                         f"{op.operands[0].type.dtype} to {op.results[0].type.dtype} has no C++ kernel yet")


# Winograd F(2x2, 3x3): U = G g G^T
WINOGRAD_G = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])


def winograd_weights(w: np.ndarray) -> np.ndarray:
    """[M, C, 3, 3] conv weights -> U [16, M, C] float32 (computed in float64), index 4*row + col
    of G g G^T: the A operands of the 16 GEMMs of sofie::rt::conv2d_winograd."""
    u = np.einsum("ik,mckl,jl->ijmc", WINOGRAD_G, np.asarray(w, np.float64), WINOGRAD_G)
    return np.ascontiguousarray(u.reshape(16, *w.shape[:2]), dtype=np.float32)


@rule("graph.conv")
def _conv(ctx: LoweringContext, op: Operation) -> None:
    x, w, bias, z = op.padded_operands()
    pads, strides, dilations, _ = op.opdef.geometry(op)
    tiles = op.opdef.winograd_tiles(op)
    if tiles:
        u = ctx.constant(winograd_weights(ctx.weight_data(w)), f"{w.owner.attrs['ref']}.winograd")
        y = ctx.dest(op)
        ctx.create("low.conv2d_winograd", [ctx.value(x), u, ctx.value(bias), ctx.value(z), ctx.scratch(op), y],
                   {"pads": pads, "tile_block": tiles, **_epilogue(op)}, op)
        return
    y = ctx.dest(op)
    ctx.create("low.conv2d", [ctx.value(x), ctx.value(w), ctx.value(bias), ctx.value(z), ctx.scratch(op), y],
               {"pads": pads, "strides": strides, "dilations": dilations, "group": op.attr("group"),
                "kernel_shape": list(w.type.shape[2:]), "tile_rows": op.opdef.tile_rows(op),
                **_epilogue(op)}, op)


@rule("graph.max_pool", "graph.average_pool")
def _pool(ctx: LoweringContext, op: Operation) -> None:
    pads, strides, dilations, _ = op.opdef.geometry(op)
    kind = op.opdef.kind
    attrs = {"kind": kind, "kernel_shape": list(op.attr("kernel_shape")), "pads": pads,
             "strides": strides, "dilations": dilations}
    if kind == "avg":
        attrs["count_include_pad"] = op.attr("count_include_pad")
    ctx.create("low.pool2d", [ctx.value(op.operands[0]), ctx.dest(op)], attrs, op)


@rule("graph.global_average_pool")
def _gap(ctx: LoweringContext, op: Operation) -> None:
    ctx.create("low.global_average_pool", [ctx.value(op.operands[0]), ctx.dest(op)], {}, op)


@rule("graph.batch_normalization")
def _bn(ctx: LoweringContext, op: Operation) -> None:
    ctx.create("low.batch_normalization", [ctx.value(v) for v in op.operands] + [ctx.dest(op)],
               {"epsilon": op.attr("epsilon")}, op)


@rule("graph.softmax")
def _softmax(ctx: LoweringContext, op: Operation) -> None:
    rank = op.results[0].type.rank
    ctx.create("low.softmax", [ctx.value(op.operands[0]), ctx.dest(op)],
               {"axis": op.attr("axis") % rank}, op)


@rule("graph.transpose")
def _transpose(ctx: LoweringContext, op: Operation) -> None:
    perm = op.opdef.perm(op, op.results[0].type.rank)
    ctx.create("low.transpose", [ctx.value(op.operands[0]), ctx.dest(op)], {"perm": perm}, op)


@rule("graph.concat")
def _concat(ctx: LoweringContext, op: Operation) -> None:
    rank = op.results[0].type.rank
    ctx.create("low.concat", [ctx.value(v) for v in op.operands] + [ctx.dest(op)],
               {"axis": op.attr("axis") % rank}, op)


def _c_expr(template: str, variables: dict[str, str], params: list[float]) -> str:
    """Substitutes operand names and attribute values into a declaration's C expression."""
    names = dict(variables)
    names.update({f"p{i}": f"{format_float(p)}f" if math.isfinite(p) else
                  ("INFINITY" if p > 0 else "-INFINITY") for i, p in enumerate(params)})
    return re.sub(r"\b(" + "|".join(map(re.escape, names)) + r")\b", lambda m: names[m.group(1)], template)


def _unary(ctx: LoweringContext, op: Operation) -> None:
    d = op.opdef
    expr = _c_expr(d.spec.c, {"x": "v0"}, d.params(op))
    ctx.create("low.map", [ctx.value(op.operands[0]), ctx.dest(op)], {"expr": expr}, op)


def _binary(ctx: LoweringContext, op: Operation) -> None:
    expr = _c_expr(op.opdef.spec.c, {"a": "v0", "b": "v1"}, [])
    ctx.create("low.map", [ctx.value(v) for v in op.operands] + [ctx.dest(op)], {"expr": expr}, op)


def _declare_elementwise() -> None:
    for name, d in all_ops().items():
        if isinstance(d, UnaryOp):
            RULES[name] = _unary
        elif isinstance(d, BinaryOp):
            RULES[name] = _binary


_declare_elementwise()
