"""C++ for each low op: one printer function per op name, nothing left to decide."""

from __future__ import annotations

import math
import re
from collections.abc import Callable

from sofie.errors import SofieError
from sofie.ir.core import Operation, Value
from sofie.ir.dialects.graph.elementwise import ACTIVATIONS
from sofie.ir.printer import format_float, unique_name
from sofie.ir.types import Dim, cpp_type

CPP_KEYWORDS = {"int", "float", "double", "char", "auto", "case", "class", "const", "default", "delete",
                "do", "else", "enum", "for", "if", "new", "return", "static", "struct", "switch",
                "this", "union", "while", "b", "mb", "W", "A", "std", "sofie"}


class Names:
    """C++ identifiers for low values: the tensor's name, made unique and legal."""

    def __init__(self) -> None:
        self._names: dict[int, str] = {}
        self._taken: set[str] = set(CPP_KEYWORDS)

    def define(self, v: Value, prefix: str = "t_") -> str:
        base = prefix + re.sub(r"[^A-Za-z0-9_]", "_", v.name or "v").strip("_")
        name = unique_name(re.sub(r"_+", "_", base), self._taken)
        self._names[id(v)] = name
        return name

    def __getitem__(self, v: Value | None) -> str:
        return "nullptr" if v is None else self._names[id(v)]


def dim_expr(d: Dim) -> str:
    """A dim in C++: the batch symbol is the chunk size `b`."""
    return "b" if isinstance(d, str) else str(d)


def size_expr(dims: tuple[Dim, ...] | list[Dim]) -> str:
    n = math.prod(d for d in dims if isinstance(d, int))
    syms = [d for d in dims if isinstance(d, str)]
    if not syms:
        return str(n)
    return "b" if n == 1 else f"b * {n}"


def _f(x: float) -> str:
    if math.isnan(x):
        return "NAN"  # <cmath>; format_float's "nan" would print the function nanf
    if math.isinf(x):
        return "INFINITY" if x > 0 else "-INFINITY"
    return format_float(x) + "f"


def act_args(op: Operation) -> str:
    act = op.attr("activation")
    if not act:
        return "sofie::rt::Act::None, 0.0f, 0.0f"
    params = list(op.attr("activation_params")) or [d for _, d in ACTIVATIONS[act].params]
    params = (params + [0.0, 0.0])[:2]
    return f"sofie::rt::Act::{act}, {_f(params[0])}, {_f(params[1])}"


Emitter = Callable[[Operation, Names], list[str]]
EMITTERS: dict[str, Emitter] = {}


def emits(name: str) -> Callable[[Emitter], Emitter]:
    def deco(fn: Emitter) -> Emitter:
        EMITTERS[name] = fn
        return fn
    return deco


def _require_f32(op: Operation, *values: Value | None) -> None:
    for v in values:
        if v is not None and v.type.dtype != "f32":
            raise SofieError(f"{op.describe()}: the {op.name} kernel handles float32 only, got {v.type}")


@emits("low.gemm")
def _gemm(op: Operation, n: Names) -> list[str]:
    a, bm, c, y = op.operands
    _require_f32(op, a, bm, c, y)
    ta, tb = bool(op.attr("transA")), bool(op.attr("transB"))
    # a 1-D B (MatMul [..., K] @ [K]) is the column [K, 1]; a 1-D A is the row [1, K]
    b_shape = bm.type.shape if bm.type.rank == 2 else (bm.type.shape[0], 1)
    N = b_shape[0] if tb else b_shape[1]
    K = b_shape[1] if tb else b_shape[0]
    # M from A, not Y: Y drops the row dim of a 1-D A and the column dim of a 1-D B
    M = dim_expr(a.type.shape[1]) if ta else size_expr(a.type.shape[:-1]) if a.type.rank > 1 else "1"
    lda = dim_expr(a.type.shape[-1])  # the batch when A is transposed: A is [K, batch]
    alpha, beta = op.attr("alpha"), op.attr("beta")
    lines = []
    if op.attr("bias") == "full":
        lines.append(f"sofie::rt::copy({n[c]}, {n[y]}, {size_expr(y.type.shape)});")
    gemm_beta = beta if op.attr("bias") == "full" else 0.0
    lines.append(f"sofie::rt::sgemm({str(ta).lower()}, {str(tb).lower()}, {M}, {N}, {K}, {_f(alpha)}, "
                 f"{n[a]}, {lda}, {n[bm]}, {b_shape[1]}, {_f(gemm_beta)}, {n[y]}, {N});")
    bias = n[c] if op.attr("bias") == "row" else "nullptr"
    if op.attr("bias") == "row" and beta != 1.0:
        raise SofieError(f"{op.describe()}: a row bias with beta={beta} is not supported")
    if bias != "nullptr" or op.attr("activation"):
        lines.append(f"sofie::rt::bias_act({n[y]}, {bias}, {M}, {N}, false, {act_args(op)});")
    return lines


def _call(fn: str, pointers: list[str], *groups: tuple[str, list]) -> list[str]:
    """A kernel call with many size arguments, one labelled group per line."""
    lines = [f"sofie::rt::{fn}({', '.join(pointers)},"]
    for label, args in groups:
        lines.append(f"    /*{label}*/ {', '.join(str(a) for a in args)},")
    lines[-1] = lines[-1][:-1] + ");"
    return lines


@emits("low.conv2d")
def _conv(op: Operation, n: Names) -> list[str]:
    x, w, bias, z, scratch, y = op.operands
    _require_f32(op, x, w, bias, z, y)
    _, C, H, W = x.type.shape
    M, _, kh, kw = w.type.shape
    _, _, OH, OW = y.type.shape
    return _call("conv2d", [n[x], n[w], n[bias], n[y], n[scratch]],
                 ("N, C, H, W", [dim_expr(x.type.shape[0]), C, H, W]), ("M, group", [M, op.attr("group")]),
                 ("kH, kW", [kh, kw]), ("pads t, l, b, r", op.attr("pads")), ("strides", op.attr("strides")),
                 ("dilations", op.attr("dilations")), ("OH, OW", [OH, OW]), ("epilogue", [act_args(op)]),
                 ("residual", [n[z]]), ("im2col rows per band", [op.attr("tile_rows")]))


@emits("low.conv2d_winograd")
def _conv_winograd(op: Operation, n: Names) -> list[str]:
    x, u, bias, z, scratch, y = op.operands
    _require_f32(op, x, u, bias, z, y)
    _, C, H, W = x.type.shape
    _, _, OH, OW = y.type.shape
    return _call("conv2d_winograd", [n[x], n[u], n[bias], n[y], n[scratch]],
                 ("N, C, H, W", [dim_expr(x.type.shape[0]), C, H, W]), ("M", [u.type.shape[1]]),
                 ("pads t, l", op.attr("pads")[:2]), ("OH, OW", [OH, OW]), ("epilogue", [act_args(op)]),
                 ("residual", [n[z]]), ("tiles per block", [op.attr("tile_block")]))


@emits("low.pool2d")
def _pool(op: Operation, n: Names) -> list[str]:
    x, y = op.operands
    _require_f32(op, x, y)
    N, C, H, W = x.type.shape
    _, _, OH, OW = y.type.shape
    groups = [("N, C, H, W", [dim_expr(N), C, H, W]), ("kH, kW", op.attr("kernel_shape")),
              ("pads t, l, b, r", op.attr("pads")), ("strides", op.attr("strides"))]
    if op.attr("kind") == "max":
        return _call("maxpool2d", [n[x], n[y]], *groups, ("dilations", op.attr("dilations")), ("OH, OW", [OH, OW]))
    include = "true" if op.attr("count_include_pad") else "false"
    return _call("avgpool2d", [n[x], n[y]], *groups, ("OH, OW", [OH, OW]), ("count_include_pad", [include]))


@emits("low.global_average_pool")
def _gap(op: Operation, n: Names) -> list[str]:
    x, y = op.operands
    _require_f32(op, x, y)
    return [f"sofie::rt::global_avgpool({n[x]}, {n[y]}, {size_expr(x.type.shape[:2])}, "
            f"{size_expr(x.type.shape[2:])});"]


@emits("low.batch_normalization")
def _bn(op: Operation, n: Names) -> list[str]:
    x, scale, bias, mean, var, y = op.operands
    _require_f32(op, x, scale, bias, mean, var, y)
    s = x.type.shape
    return [f"sofie::rt::batchnorm({n[x]}, {n[y]}, {n[scale]}, {n[bias]}, {n[mean]}, {n[var]}, "
            f"{_f(op.attr('epsilon'))}, {dim_expr(s[0])}, {s[1]}, {size_expr(s[2:])});"]


@emits("low.softmax")
def _softmax(op: Operation, n: Names) -> list[str]:
    x, y = op.operands
    _require_f32(op, x, y)
    s, axis = x.type.shape, op.attr("axis")
    return [f"sofie::rt::softmax({n[x]}, {n[y]}, {size_expr(s[:axis])}, {dim_expr(s[axis])}, "
            f"{size_expr(s[axis + 1:])});"]


@emits("low.transpose")
def _transpose(op: Operation, n: Names) -> list[str]:
    x, y = op.operands
    _require_f32(op, x, y)
    shape = ", ".join(dim_expr(d) for d in x.type.shape)
    perm = ", ".join(str(p) for p in op.attr("perm"))
    return [f"const std::size_t shape[] = {{{shape}}};",
            f"const std::size_t perm[] = {{{perm}}};",
            f"sofie::rt::transpose({n[x]}, {n[y]}, {x.type.rank}, shape, perm);"]


@emits("low.concat")
def _concat(op: Operation, n: Names) -> list[str]:
    *xs, y = op.operands
    _require_f32(op, *xs, y)
    axis = op.attr("axis")
    outer = size_expr(y.type.shape[:axis])
    y_inner = size_expr(y.type.shape[axis:])
    lines, offset = [], []
    for x in xs:
        x_inner = size_expr(x.type.shape[axis:])
        at = " + ".join(offset) or "0"
        lines.append(f"sofie::rt::concat_copy({n[x]}, {n[y]}, {outer}, {x_inner}, {y_inner}, {at});")
        offset.append(x_inner)
    return lines


@emits("low.copy")
def _copy(op: Operation, n: Names) -> list[str]:
    x, y = op.operands
    return [f"std::copy_n({n[x]}, {size_expr(y.type.shape)}, {n[y]});"]


@emits("low.map")
def _map(op: Operation, n: Names) -> list[str]:
    *xs, y = op.operands
    shape = y.type.shape
    loads = []
    if all(x.type.shape == shape for x in xs):
        loads = [f"const {cpp_type(x.type.dtype)} v{k} = {n[x]}[i];" for k, x in enumerate(xs)]
        return [f"for (std::size_t i = 0; i < {size_expr(shape)}; ++i) {{",
                *("  " + s for s in loads),
                f"  {n[y]}[i] = {op.attr('expr')};", "}"]
    dims, strides = _loop_dims(shape, [x.type.shape for x in xs])
    idx = [f"i{d}" for d in range(len(dims))]
    out_index = _linear(idx, _contiguous_strides(dims))
    lines = []
    for d, extent in enumerate(dims):
        lines.append("  " * d + f"for (std::size_t i{d} = 0; i{d} < {dim_expr(extent)}; ++i{d})"
                     + (" {" if d == len(dims) - 1 else ""))
    pad = "  " * len(dims)
    for k, (x, st) in enumerate(zip(xs, strides)):
        lines.append(f"{pad}const {cpp_type(x.type.dtype)} v{k} = {n[x]}[{_linear(idx, st)}];")
    lines.append(f"{pad}{n[y]}[{out_index}] = {op.attr('expr')};")
    lines.append("  " * (len(dims) - 1) + "}")
    return lines


def _contiguous_strides(dims: list[Dim]) -> list[str]:
    out, acc = [], []
    for d in reversed(dims):
        out.append(size_expr(acc) if acc else "1")
        acc.append(d)
    return out[::-1]


def _linear(idx: list[str], strides: list[str]) -> str:
    terms = [i if s == "1" else f"{i} * {s}" for i, s in zip(idx, strides) if s != "0"]
    return " + ".join(terms) or "0"


def _loop_dims(shape: tuple[Dim, ...], inputs: list[tuple[Dim, ...]]) -> tuple[list[Dim], list[list[str]]]:
    """Output dims with adjacent static dims merged where every input agrees, and per-input
    strides over them ('0' where an input broadcasts)."""
    rank = len(shape)
    padded = [(1,) * (rank - len(s)) + tuple(s) for s in inputs]
    bcast = [[s[d] == 1 and shape[d] != 1 for d in range(rank)] for s in padded]
    groups: list[list[int]] = []
    for d in range(rank):
        if (groups and isinstance(shape[d], int) and all(isinstance(shape[e], int) for e in groups[-1])
                and all(b[d] == b[groups[-1][-1]] for b in bcast)):
            groups[-1].append(d)
        else:
            groups.append([d])
    dims = [math.prod(shape[d] for d in g) if len(g) > 1 else shape[g[0]] for g in groups]
    strides = []
    for s, b in zip(padded, bcast):
        st = []
        for g in groups:
            if b[g[0]]:
                st.append("0")
            else:
                st.append(size_expr([s[e] for e in range(g[-1] + 1, rank)]) if g[-1] + 1 < rank else "1")
        strides.append(st)
    return dims, strides
