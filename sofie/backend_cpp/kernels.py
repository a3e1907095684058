"""C++ for each low op: one printer function per op name, nothing left to decide.

The runtime kernels are templates on the element type, deduced from the pointers; the low
dialect declares which types each kernel has (`Kernel.dtypes`) and the verifier holds every
call to them, so nothing here checks types. Scalars are spelled in the kernel's type.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from sofie.backend_cpp.names import Names
from sofie.backend_cpp.scalar import literal, spell_lambda
from sofie.backend_cpp.types import cpp_type
from sofie.errors import SofieError
from sofie.ir.core import Operation


def epilogue(op: Operation) -> str:
    """The fused activation as a functor for the kernel (the identity when there is none)."""
    return spell_lambda(op.epilogue, op.written_operands()[0].type.dtype)


Emitter = Callable[[Operation, Names], list[str]]
EMITTERS: dict[str, Emitter] = {}


def emits(kind: Any) -> Callable[[Emitter], Emitter]:
    """Registers the printer of a low op (its declaration class, or its name)."""
    def deco(fn: Emitter) -> Emitter:
        EMITTERS[kind if isinstance(kind, str) else kind.name] = fn
        return fn
    return deco


@emits("low.dim_count")
def _dim_count(op: Operation, n: Names) -> list[str]:
    (y,) = op.operands
    dims = [int(d) if d.lstrip("-").isdigit() else d for d in op.attr("dims")]
    return [f"{n[y]}[0] = static_cast<{cpp_type(y.type.dtype)}>({n.size(dims)});"]


@emits("low.gemm")
def _gemm(op: Operation, n: Names) -> list[str]:
    """gemm_fused (bias per column and activation in the kernel's tile stores), or with a B
    packed at compile time, gemm_packed_b."""
    a, bm, c, y = op.operands
    dt = y.type.dtype
    ta, tb = bool(op.attr("transA")), bool(op.attr("transB"))
    packed_n = op.attr("packed_n")
    if packed_n:
        N, K = packed_n, bm.type.shape[1]
    else:
        # a 1-D B (MatMul [..., K] @ [K]) is the column [K, 1]; a 1-D A is the row [1, K]
        b_shape = bm.type.shape if bm.type.rank == 2 else (bm.type.shape[0], 1)
        N = b_shape[0] if tb else b_shape[1]
        K = b_shape[1] if tb else b_shape[0]
    # M from A, not Y: Y drops the row dim of a 1-D A and the column dim of a 1-D B
    M = n.dim(a.type.shape[1]) if ta else n.size(a.type.shape[:-1]) if a.type.rank > 1 else "1"
    lda = n.dim(a.type.shape[-1])  # the batch when A is transposed: A is [K, batch]
    alpha, beta = op.attr("alpha"), op.attr("beta")
    if op.attr("bias") == "row" and beta != 1.0:
        raise SofieError(f"{op.describe()}: a row bias with beta={beta} is not supported")
    lines = []
    if op.attr("bias") == "full":
        lines.append(f"sofie::rt::copy({n[c]}, {n[y]}, {n.size(y.type.shape)});")
    gemm_beta = literal(beta if op.attr("bias") == "full" else 0.0, dt)
    bias = n[c] if op.attr("bias") == "row" else "nullptr"
    t = cpp_type(dt)
    fused = f"{bias}, false, nullptr, {epilogue(op)});"
    if packed_n:
        lines += [f"sofie::rt::gemm_packed_b<{t}>({str(ta).lower()}, {M}, {N}, {K}, {literal(alpha, dt)}, "
                  f"{n[a]}, {lda}, {n[bm]}, {gemm_beta}, {n[y]}, {N},", f"    {fused}"]
    else:
        lines += [f"sofie::rt::gemm_fused<{t}>({str(ta).lower()}, {str(tb).lower()}, {M}, {N}, {K}, "
                  f"{literal(alpha, dt)}, {n[a]}, {lda}, {n[bm]}, {b_shape[1]}, {gemm_beta}, {n[y]}, {N},",
                  f"    {fused}"]
    return lines


def _call(fn: str, pointers: list[str], *groups: tuple[str, list]) -> list[str]:
    """A kernel call with many size arguments, one labelled group per line."""
    lines = [f"sofie::rt::{fn}({', '.join(pointers)},"]
    for label, args in groups:
        lines.append(f"    /*{label}*/ {', '.join(str(a) for a in args)},")
    lines[-1] = lines[-1][:-1] + ");"
    return lines


def _as_2d(shape: tuple) -> tuple:
    """A 1-D conv's [N, C, L] as the [N, C, 1, L] of a 2-D one."""
    return shape if len(shape) == 4 else (*shape[:2], 1, *shape[2:])


@emits("low.conv2d")
def _conv(op: Operation, n: Names) -> list[str]:
    x, w, bias, z, scratch, y = op.operands
    _, C, H, W = _as_2d(x.type.shape)
    M, _, kh, kw = _as_2d(w.type.shape)
    _, _, OH, OW = _as_2d(y.type.shape)
    return _call("conv2d", [n[x], n[w], n[bias], n[y], n[scratch]],
                 ("N, C, H, W", [n.dim(x.type.shape[0]), C, H, W]), ("M, group", [M, op.attr("group")]),
                 ("kH, kW", [kh, kw]), ("pads t, l, b, r", op.attr("pads")), ("strides", op.attr("strides")),
                 ("dilations", op.attr("dilations")), ("OH, OW", [OH, OW]), ("epilogue", [epilogue(op)]),
                 ("residual", [n[z]]), ("im2col rows per band", [op.attr("tile_rows")]))


@emits("low.conv2d_small_n")
def _conv_small_n(op: Operation, n: Names) -> list[str]:
    x, w, bias, z, scratch, y = op.operands
    _, C, H, W = _as_2d(x.type.shape)
    _, M, OH, OW = _as_2d(y.type.shape)
    kernel = op.attr("kernel_shape")
    return _call("conv2d_small_n", [n[x], n[w], n[bias], n[y], n[scratch]],
                 ("N, C, H, W", [n.dim(x.type.shape[0]), C, H, W]), ("M", [M]), ("kH, kW", kernel),
                 ("pads t, l, b, r", op.attr("pads")), ("strides", op.attr("strides")),
                 ("dilations", op.attr("dilations")), ("OH, OW", [OH, OW]), ("epilogue", [epilogue(op)]),
                 ("residual", [n[z]]), ("im2col rows per band", [op.attr("tile_rows")]))


@emits("low.conv2d_depthwise_small")
def _conv_depthwise_small(op: Operation, n: Names) -> list[str]:
    x, w, bias, z, scratch, y = op.operands
    _, C, H, W = _as_2d(x.type.shape)
    M, _, kh, kw = _as_2d(w.type.shape)
    _, _, OH, OW = _as_2d(y.type.shape)
    return _call("conv2d_depthwise_small", [n[x], n[w], n[bias], n[y], n[scratch]],
                 ("N, C, H, W", [n.dim(x.type.shape[0]), C, H, W]), ("M", [M]), ("kH, kW", [kh, kw]),
                 ("pads t, l", op.attr("pads")[:2]), ("strides", op.attr("strides")), ("OH, OW", [OH, OW]),
                 ("epilogue", [epilogue(op)]), ("residual", [n[z]]))


@emits("low.conv2d_direct")
def _conv_direct(op: Operation, n: Names) -> list[str]:
    x, w, bias, z, scratch, y = op.operands
    _, C, H, W = x.type.shape
    M, _, kh, kw = w.type.shape
    _, _, OH, OW = y.type.shape
    return _call("conv2d_direct", [n[x], n[w], n[bias], n[y], n[scratch]],
                 ("N, C, H, W", [n.dim(x.type.shape[0]), C, H, W]), ("M", [M]), ("kH, kW", [kh, kw]),
                 ("pads t, l, b, r", op.attr("pads")), ("strides", op.attr("strides")), ("OH, OW", [OH, OW]),
                 ("epilogue", [epilogue(op)]), ("residual", [n[z]]))


@emits("low.conv2d_direct_max_pool")
def _conv_direct_max_pool(op: Operation, n: Names) -> list[str]:
    x, w, bias, scratch, y = op.operands
    _, C, H, W = x.type.shape
    M, _, kh, kw = w.type.shape
    _, _, PH, PW = y.type.shape
    pt, pl, pb, pr = op.attr("pads")
    sh, sw = op.attr("strides")
    pool_pads = op.attr("pool_pads")
    conv_out = [(H + pt + pb - kh) // sh + 1, (W + pl + pr - kw) // sw + 1]
    return _call("conv2d_direct_max_pool", [n[x], n[w], n[bias], n[y], n[scratch]],
                 ("N, C, H, W", [n.dim(x.type.shape[0]), C, H, W]), ("M", [M]), ("kH, kW", [kh, kw]),
                 ("pads t, l, b, r", op.attr("pads")), ("strides", op.attr("strides")), ("conv OH, OW", conv_out),
                 ("epilogue", [epilogue(op)]), ("pool kH, kW", op.attr("pool_kernel")),
                 ("pool pads t, l", [pool_pads[0], pool_pads[1]]), ("pool strides", op.attr("pool_strides")),
                 ("PH, PW", [PH, PW]))


@emits("low.conv2d_winograd")
def _conv_winograd(op: Operation, n: Names) -> list[str]:
    x, u, bias, z, scratch, y = op.operands
    _, C, H, W = x.type.shape
    _, _, OH, OW = y.type.shape
    m = op.attr("output_tile")
    r = math.isqrt(u.type.shape[0]) - m + 1  # U is [n*n, M, C] (or its packed panels), n = m + r - 1
    return _call(f"conv2d_winograd<{m}, {r}>", [n[x], n[u], n[bias], n[y], n[scratch]],
                 ("N, C, H, W", [n.dim(x.type.shape[0]), C, H, W]), ("M", [y.type.shape[1]]),
                 ("pads t, l", op.attr("pads")[:2]), ("OH, OW", [OH, OW]), ("epilogue", [epilogue(op)]),
                 ("residual", [n[z]]), ("tiles per block", [op.attr("tile_block")]),
                 ("U packed for gemm_small_n", ["true" if op.attr("small_n") else "false"]))


@emits("low.batch_normalization")
def _bn(op: Operation, n: Names) -> list[str]:
    x, scale, bias, mean, var, y = op.operands
    s = x.type.shape
    return [f"sofie::rt::batchnorm({n[x]}, {n[y]}, {n[scale]}, {n[bias]}, {n[mean]}, {n[var]}, "
            f"{literal(op.attr('epsilon'), y.type.dtype)}, {n.dim(s[0])}, {s[1]}, {n.size(s[2:])});"]


@emits("low.softmax")
def _softmax(op: Operation, n: Names) -> list[str]:
    x, y = op.operands
    s, axis = x.type.shape, op.attr("axis")
    log = ", true" if op.attr("log") else ""
    return [f"sofie::rt::softmax({n[x]}, {n[y]}, {n.size(s[:axis])}, {n.dim(s[axis])}, "
            f"{n.size(s[axis + 1:])}{log});"]


@emits("low.concat")
def _concat(op: Operation, n: Names) -> list[str]:
    *xs, y = op.operands
    axis = op.attr("axis")
    outer = n.size(y.type.shape[:axis])
    y_inner = n.size(y.type.shape[axis:])
    lines, offset = [], []
    for x in xs:
        x_inner = n.size(x.type.shape[axis:])
        at = " + ".join(offset) or "0"
        lines.append(f"sofie::rt::concat_copy({n[x]}, {n[y]}, {outer}, {x_inner}, {y_inner}, {at});")
        offset.append(x_inner)
    return lines


def _dims3(dims, fill: int) -> str:
    """1-3 per-spatial-dim values as the 3 the N-D kernels take (leading `fill`s)."""
    return "{" + ", ".join(str(d) for d in [fill] * (3 - len(dims)) + list(dims)) + "}"


def _pads3(pads: list[int]) -> str:
    nd = len(pads) // 2
    return "{" + ", ".join(str(p) for p in [0] * (3 - nd) + pads[:nd] + [0] * (3 - nd) + pads[nd:]) + "}"


def _window(op: Operation, x, y) -> list[tuple[str, list]]:
    return [("in", [_dims3(x.type.shape[2:], 1)]), ("out", [_dims3(y.type.shape[2:], 1)]),
            ("kernel", [_dims3(op.attr("kernel_shape"), 1)]), ("pads", [_pads3(op.attr("pads"))]),
            ("strides", [_dims3(op.attr("strides"), 1)]), ("dilations", [_dims3(op.attr("dilations"), 1)])]


@emits("low.max_pool")
def _max_pool(op: Operation, n: Names) -> list[str]:
    x, indices, y = op.padded_operands()
    if indices is not None:  # its own loop: the plain pool stays free of index bookkeeping
        return _call("max_pool_indices", [n[x], n[y], n[indices]], ("N*C", [n.size(x.type.shape[:2])]),
                     *_window(op, x, y), ("storage_order", [op.attr("storage_order")]))
    return _call("pool<sofie::rt::PoolKind::max>", [n[x], n[y]], ("N*C", [n.size(x.type.shape[:2])]),
                 *_window(op, x, y))


@emits("low.pool")
def _pool(op: Operation, n: Names) -> list[str]:
    x, y = op.operands
    kind = op.attr("kind")
    extra = (("count_include_pad, p", ["true" if op.attr("count_include_pad") else "false", op.attr("p")]),)
    return _call(f"pool<sofie::rt::PoolKind::{kind}>", [n[x], n[y]], ("N*C", [n.size(x.type.shape[:2])]),
                 *_window(op, x, y), *extra)


@emits("low.global_pool")
def _global_pool(op: Operation, n: Names) -> list[str]:
    x, y = op.operands
    return [f"sofie::rt::global_pool<sofie::rt::PoolKind::{op.attr('kind')}>({n[x]}, {n[y]}, "
            f"{n.size(x.type.shape[:2])}, {n.size(x.type.shape[2:])}, {op.attr('p')});"]


@emits("low.conv3d")
def _conv3d(op: Operation, n: Names) -> list[str]:
    x, w, bias, z, scratch, y = op.operands
    return _call("conv3d", [n[x], n[w], n[bias], n[y], n[scratch]],
                 ("N, C, in", [n.dim(x.type.shape[0]), x.type.shape[1], _dims3(x.type.shape[2:], 1)]),
                 ("M, group", [w.type.shape[0], op.attr("group")]), ("kernel", [_dims3(w.type.shape[2:], 1)]),
                 ("pads", [_pads3(op.attr("pads"))]), ("strides", [_dims3(op.attr("strides"), 1)]),
                 ("dilations", [_dims3(op.attr("dilations"), 1)]), ("out", [_dims3(y.type.shape[2:], 1)]),
                 ("epilogue", [epilogue(op)]), ("residual", [n[z]]),
                 ("output planes per band", [op.attr("tile_planes")]))


@emits("low.conv_transpose")
def _conv_transpose(op: Operation, n: Names) -> list[str]:
    x, w, bias, scratch, y = op.operands
    nd = x.type.rank - 2
    return _call("conv_transpose", [n[x], n[w], n[bias], n[y], n[scratch]],
                 ("N, C, in", [n.dim(x.type.shape[0]), x.type.shape[1], _dims3(x.type.shape[2:], 1)]),
                 ("M, group", [y.type.shape[1], op.attr("group")]), ("kernel", [_dims3(w.type.shape[2:], 1)]),
                 ("pads begin", [_dims3(op.attr("pads")[:nd], 0)]), ("strides", [_dims3(op.attr("strides"), 1)]),
                 ("dilations", [_dims3(op.attr("dilations"), 1)]), ("out", [_dims3(y.type.shape[2:], 1)]))


@emits("low.copy")
def _copy(op: Operation, n: Names) -> list[str]:
    x, y = op.operands
    return [f"std::copy_n({n[x]}, {n.size(y.type.shape)}, {n[y]});"]


@emits("low.bit_copy")
def _bit_copy(op: Operation, n: Names) -> list[str]:
    x, y = op.operands
    return [f"std::memcpy({n[y]}, {n[x]}, {n.size(y.type.shape)} * sizeof(*{n[y]}));"]


# ---- reductions and normalizations (sofie_rt/reduce.hxx) -------------------------------------

def _around(shape: tuple, axis: int, n: Names) -> list[str]:
    """outer, n, inner sizes of a tensor seen as [outer, n, inner] around `axis`."""
    return [n.size(shape[:axis]), n.dim(shape[axis]), n.size(shape[axis + 1:])]


def _flag(v: int) -> str:
    return "true" if v else "false"


@emits("low.hardmax")
def _hardmax(op: Operation, n: Names) -> list[str]:
    x, y = op.operands
    return [f"sofie::rt::hardmax({n[x]}, {n[y]}, {', '.join(_around(x.type.shape, op.attr('axis'), n))});"]


@emits("low.arg_reduce")
def _arg_reduce(op: Operation, n: Names) -> list[str]:
    x, y = op.operands
    return [f"sofie::rt::arg_reduce({n[x]}, {n[y]}, {', '.join(_around(x.type.shape, op.attr('axis'), n))}, "
            f"{_flag(op.attr('largest'))}, {_flag(op.attr('last'))});"]


@emits("low.cumulative")
def _cumulative(op: Operation, n: Names) -> list[str]:
    x, axis, y = op.operands
    flags = ", ".join(_flag(op.attr(k)) for k in ("product", "exclusive", "reverse"))
    if axis is None:
        return [f"sofie::rt::cumulative({n[x]}, {n[y]}, {', '.join(_around(x.type.shape, op.attr('axis'), n))}, "
                f"{flags});"]
    return [_dims_array("dims", [n.dim(d) for d in x.type.shape]),
            f"sofie::rt::cumulative_at({n[x]}, {n[y]}, dims, {x.type.rank}, {n[axis]}[0], {flags}, {_where(op)});"]


@emits("low.top_k")
def _top_k(op: Operation, n: Names) -> list[str]:
    x, order, values, indices = op.operands
    axis = op.attr("axis")
    return [f"sofie::rt::top_k({n[x]}, {n[order]}, {n[values]}, {n[indices]}, "
            f"{', '.join(_around(x.type.shape, axis, n))}, {n.dim(values.type.shape[axis])}, "
            f"{_flag(op.attr('largest'))});"]


@emits("low.layer_norm")
def _layer_norm(op: Operation, n: Names) -> list[str]:
    x, scale, bias, y, *stats = op.operands
    mean, inv_std = (stats + [None, None])[:2]
    s, axis = x.type.shape, op.attr("axis")
    eps = literal(op.attr("epsilon"), y.type.dtype)
    return [f"sofie::rt::layer_norm({n[x]}, {n[scale]}, {n[bias]}, {n[y]}, {n[mean]}, {n[inv_std]}, "
            f"{n.size(s[:axis])}, {n.size(s[axis:])}, {eps}, {_flag(op.attr('centered'))});"]


@emits("low.group_norm")
def _group_norm(op: Operation, n: Names) -> list[str]:
    x, scale, bias, y = op.operands
    s, g = x.type.shape, op.attr("groups")
    per_group = _flag(scale.type.shape[0] != s[1])
    return [f"sofie::rt::group_norm({n[x]}, {n[scale]}, {n[bias]}, {n[y]}, {n.dim(s[0])}, {s[1]}, {g}, "
            f"{n.size(s[2:])}, {literal(op.attr('epsilon'), y.type.dtype)}, {per_group});"]


@emits("low.lrn")
def _lrn(op: Operation, n: Names) -> list[str]:
    x, y = op.operands
    s, dt = x.type.shape, y.type.dtype
    params = ", ".join(literal(op.attr(k), dt) for k in ("alpha", "beta", "bias"))
    return [f"sofie::rt::lrn({n[x]}, {n[y]}, {n.dim(s[0])}, {s[1]}, {n.size(s[2:])}, {op.attr('size')}, {params});"]


# ---- indexing (sofie_rt/indexing.hxx) ---------------------------------------------------------

def _dims_array(name: str, dims: list[str]) -> str:
    return f"const std::size_t {name}[] = {{{', '.join(dims) or '0'}}};"


def _where(op: Operation) -> str:
    """The node name the run-time index check reports, as a C++ string literal."""
    return '"' + (op.loc or op.name).replace("\\", "\\\\").replace('"', '\\"') + '"'


_REDUCE = {r: f"sofie::rt::detail::Reduce::{r}" for r in ("none", "add", "mul", "max", "min")}


@emits("low.take_axes")
def _take_axes(op: Operation, n: Names) -> list[str]:
    x, table, y = op.operands
    tabled = op.attr("tabled")
    tables, at = [], 0
    for axis, flag in enumerate(tabled):
        if flag:
            tables.append(f"{n[table]} + {at}")
            at += int(y.type.shape[axis])
        else:
            tables.append("nullptr")
    rank = y.type.rank
    return ["{",
            "  " + _dims_array("in_dims", [n.dim(d) for d in x.type.shape]),
            "  " + _dims_array("out_dims", [n.dim(d) for d in y.type.shape]),
            f"  const std::int64_t* const tables[] = {{{', '.join(tables) or 'nullptr'}}};",
            f"  sofie::rt::take_axes({n[x]}, {n[y]}, {rank}, in_dims, out_dims, tables, "
            f"{literal(op.attr('fill'), y.type.dtype) if op.attr('fill') else '{}'});",
            "}"]


@emits("low.gather")
def _gather(op: Operation, n: Names) -> list[str]:
    x, idx, y = op.operands
    s, axis = x.type.shape, op.attr("axis")
    return [f"sofie::rt::gather({n[x]}, {n[idx]}, {n[y]}, {n.size(s[:axis])}, {n.dim(s[axis])}, "
            f"{n.size(s[axis + 1:])}, {n.size(idx.type.shape)}, {_where(op)});"]


@emits("low.gather_elements")
@emits("low.scatter_elements")
def _elements(op: Operation, n: Names) -> list[str]:
    x, idx, *upd, y = op.operands
    args = [n[x], n[idx], *(n[u] for u in upd), n[y], str(x.type.rank), "x_dims", "idx_dims", str(op.attr("axis"))]
    if upd:
        args.append(_REDUCE[op.attr("reduction")])
    return ["{",
            "  " + _dims_array("x_dims", [n.dim(d) for d in x.type.shape]),
            "  " + _dims_array("idx_dims", [n.dim(d) for d in idx.type.shape]),
            f"  sofie::rt::{op.name.split('.')[1]}({', '.join(args)}, {_where(op)});",
            "}"]


@emits("low.gather_nd")
def _gather_nd(op: Operation, n: Names) -> list[str]:
    x, idx, y = op.operands
    b, k = op.attr("batch_dims"), int(idx.type.shape[-1])
    s = x.type.shape
    return ["{",
            "  " + _dims_array("dims", [n.dim(d) for d in s[b:b + k]]),
            f"  sofie::rt::gather_nd({n[x]}, {n[idx]}, {n[y]}, {n.size(s[:b])}, {n.size(idx.type.shape[b:-1])}, "
            f"{k}, dims, {n.size(s[b + k:])}, {_where(op)});",
            "}"]


@emits("low.scatter_nd")
def _scatter_nd(op: Operation, n: Names) -> list[str]:
    x, idx, upd, y = op.operands
    k = int(idx.type.shape[-1])
    s = x.type.shape
    return ["{",
            "  " + _dims_array("dims", [n.dim(d) for d in s[:k]]),
            f"  sofie::rt::scatter_nd({n[x]}, {n[idx]}, {n[upd]}, {n[y]}, {n.size(idx.type.shape[:-1])}, {k}, dims, "
            f"{n.size(s[k:])}, {_REDUCE[op.attr('reduction')]}, {_where(op)});",
            "}"]


@emits("low.dft")
def _dft(op: Operation, n: Names) -> list[str]:
    x, scratch, y = op.operands
    s, a = x.type.shape, op.attr("axis")
    kernel = "irfft" if y.type.shape[-1] == 1 else "dft"
    inverse = "" if kernel == "irfft" else f"{'true' if op.attr('inverse') else 'false'}, "
    return [f"sofie::rt::{kernel}({n[x]}, {n[y]}, {n.size(s[:a])}, {n.dim(s[a])}, {n.size(s[a + 1:-1])}, {s[-1]}, "
            f"{op.attr('n')}, {y.type.shape[a]}, {inverse}reinterpret_cast<double*>({n[scratch]}));"]


@emits("low.det")
def _det(op: Operation, n: Names) -> list[str]:
    x, scratch, y = op.operands
    s = x.type.shape
    return [f"sofie::rt::det({n[x]}, {n[y]}, {n.size(s[:-2])}, {n.dim(s[-1])}, "
            f"reinterpret_cast<double*>({n[scratch]}));"]


@emits("low.reverse_sequence")
def _reverse_sequence(op: Operation, n: Names) -> list[str]:
    x, lens, y = op.operands
    s, tm = x.type.shape, op.attr("time_major")
    return [f"sofie::rt::reverse_sequence({n[x]}, {n[lens]}, {n[y]}, {n.dim(s[tm])}, {n.dim(s[1 - tm])}, "
            f"{n.size(s[2:])}, {'true' if tm else 'false'}, {_where(op)});"]


@emits("low.trilu")
def _trilu(op: Operation, n: Names) -> list[str]:
    x, k, y = op.operands
    s = x.type.shape
    return [f"sofie::rt::trilu({n[x]}, {n[k]}, {n[y]}, {n.size(s[:-2])}, {n.dim(s[-2])}, {n.dim(s[-1])}, "
            f"{'true' if op.attr('upper') else 'false'});"]


@emits("low.batched_gemm")
def _batched_gemm(op: Operation, n: Names) -> list[str]:
    a, b, y = op.operands
    sa = a.type.shape if a.type.rank > 1 else (1,) + a.type.shape
    sb = b.type.shape if b.type.rank > 1 else b.type.shape + (1,)
    (m, k), cols = sa[-2:], sb[-1]
    batch = broadcast_batch(sa[:-2], sb[:-2])
    a_stride = batch_strides(sa, len(batch), batch, n)
    b_stride = batch_strides(sb, len(batch), batch, n)
    dims = ", ".join(n.dim(d) for d in batch)
    return ["{",
            f"    const std::size_t batch[] = {{{dims}}};",
            f"    const std::size_t a_stride[] = {{{', '.join(a_stride)}}};",
            f"    const std::size_t b_stride[] = {{{', '.join(b_stride)}}};",
            f"    sofie::rt::batched_gemm({n[a]}, {n[b]}, {n[y]}, {len(batch)}, batch, a_stride, b_stride, "
            f"{n.dim(m)}, {n.dim(cols)}, {n.dim(k)}, {epilogue(op)});",
            "}"]


def broadcast_batch(a: tuple, b: tuple) -> tuple:
    """The batch dims of a matmul's result: numpy broadcasting of the operands' batch dims."""
    rank = max(len(a), len(b))
    a, b = (1,) * (rank - len(a)) + tuple(a), (1,) * (rank - len(b)) + tuple(b)
    return tuple(y if x == 1 else x for x, y in zip(a, b))


def batch_strides(shape: tuple, rank: int, batch: tuple, n: Names) -> list[str]:
    """Element strides of an operand's batch axes aligned to `batch`; 0 where it broadcasts."""
    lead = (1,) * (rank - (len(shape) - 2)) + tuple(shape[:-2])
    out = []
    for i, d in enumerate(lead):
        out.append("0" if d == 1 and batch[i] != 1 else n.size(lead[i + 1:] + tuple(shape[-2:])))
    return out


@emits("low.resize_axis")
def _resize_axis(op: Operation, n: Names) -> list[str]:
    x, index, weight, y = op.operands
    axis, dt = op.attr("axis"), y.type.dtype
    s = x.type.shape
    return _call("resize_axis", [n[x], n[y], n[index], n[weight]], ("taps", [index.type.shape[1]]),
                 ("outer, in, out, inner", [n.size(s[:axis]), s[axis], y.type.shape[axis], n.size(s[axis + 1:])]),
                 ("extrapolation", [literal(op.attr("extrapolation_value"), dt)]))


@emits("low.rnn")
@emits("low.gru")
@emits("low.lstm")
def _recurrent(op: Operation, n: Names) -> list[str]:
    """One call per direction; direction 1 of a bidirectional layer runs in reverse."""
    kind = op.name.split(".")[1]
    ins = op.padded_operands()
    x, w = ins[0], ins[1]
    pointers = [n[v] for v in ins]  # the kernel's pointer parameters are the operands in order
    dt = x.type.dtype
    layout = op.attr("layout")
    seq, batch = x.type.shape[:2][::-1] if layout else x.type.shape[:2]
    d = w.type.shape[0]
    hidden = op.written_operands()[1].type.shape[-1]
    acts = op.attr("activations")
    per_dir = len(acts) // d
    flag = {"gru": "linear_before_reset", "lstm": "input_forget"}.get(kind)
    clip = op.attr("clip") or float("inf")
    lines = []
    for k in range(d):
        reverse = op.attr("direction") == "reverse" or k == 1
        shape = (f"sofie::rt::RecurrentShape{{{n.dim(seq)}, {n.dim(batch)}, {x.type.shape[2]}, {hidden}, {d}, {k}, "
                 f"{str(reverse).lower()}, {str(bool(layout)).lower()}}}")
        options = [literal(clip, dt)] + ([str(bool(op.attr(flag))).lower()] if flag else [])
        functors = [spell_lambda(body, dt) for body in acts[k * per_dir:(k + 1) * per_dir]]
        lines += _call(kind, pointers,
                       ("T, N, I, H, directions, this one, reverse, layout 1", [shape]),
                       ("clip" + (f", {flag}" if flag else ""), options),
                       ("activations", functors))
    return lines


@emits("low.grid_sample")
def _grid_sample(op: Operation, n: Names) -> list[str]:
    x, grid, y = op.operands
    spatial = x.type.shape[2:]
    dims = "{" + ", ".join([n.dim(d) for d in spatial] + ["1"] * (3 - len(spatial))) + "}"
    return _call("grid_sample", [n[x], n[grid], n[y]],
                 ("N, C", [n.dim(x.type.shape[0]), n.dim(x.type.shape[1])]), ("nd, in", [len(spatial), dims]),
                 ("points", [n.size(y.type.shape[2:])]),
                 ("mode, padding", [f"sofie::rt::GridMode::{op.attr('mode')}",
                                    f"sofie::rt::GridPadding::{op.attr('padding_mode')}"]),
                 ("align_corners", ["true" if op.attr("align_corners") else "false"]))


@emits("low.col2im")
def _col2im(op: Operation, n: Names) -> list[str]:
    x, y = op.operands
    image = y.type.shape[2:]
    nd = len(image)
    pads, strides, dil, k = op.attr("pads"), op.attr("strides"), op.attr("dilations"), op.attr("block_shape")
    blocks = [(image[i] + pads[i] + pads[i + nd] - dil[i] * (k[i] - 1) - 1) // strides[i] + 1 for i in range(nd)]
    return _call("col2im", [n[x], n[y]], ("N*C", [n.size(y.type.shape[:2])]), ("blocks", [_dims3(blocks, 1)]),
                 ("image", [_dims3(image, 1)]), ("block", [_dims3(k, 1)]), ("pads_begin", [_dims3(pads[:nd], 0)]),
                 ("strides", [_dims3(strides, 1)]), ("dilations", [_dims3(dil, 1)]))


@emits("low.max_unpool")
def _max_unpool(op: Operation, n: Names) -> list[str]:
    x, idx, y = op.operands
    return _call("max_unpool", [n[x], n[idx], n[y]], ("N*C", [n.size(x.type.shape[:2])]),
                 ("in", [n.size(x.type.shape[2:])]), ("unpooled", [_dims3(op.attr("unpooled"), 1)]),
                 ("out", [_dims3(y.type.shape[2:], 1)]), ("node", [_where(op)]))


@emits("low.roi_align")
def _roi_align(op: Operation, n: Names) -> list[str]:
    x, rois, idx, y = op.operands
    dt = y.type.dtype
    R, _, OH, OW = y.type.shape
    return _call("roi_align", [n[x], n[rois], n[idx], n[y]],
                 ("N, C, H, W", [n.dim(d) for d in x.type.shape]), ("rois, OH, OW", [n.dim(R), OH, OW]),
                 ("max, half_pixel", ["true" if op.attr("mode") == "max" else "false",
                                      "true" if op.attr("half_pixel") else "false"]),
                 ("sampling_ratio, spatial_scale", [op.attr("sampling_ratio"), literal(op.attr("spatial_scale"), dt)]),
                 ("node", [_where(op)]))


@emits("low.deform_conv")
def _deform_conv(op: Operation, n: Names) -> list[str]:
    x, w, offset, bias, mask, scratch, y = op.operands
    _, C, H, W = x.type.shape
    M, _, kh, kw = w.type.shape
    _, _, OH, OW = y.type.shape
    return _call("deform_conv", [n[x], n[w], n[offset], n[bias], n[mask], n[y], n[scratch]],
                 ("N, C, H, W", [n.dim(x.type.shape[0]), C, H, W]), ("M, group, offset_group",
                                                                   [M, op.attr("group"), op.attr("offset_group")]),
                 ("kH, kW", [kh, kw]), ("pads t, l", op.attr("pads")[:2]), ("strides", op.attr("strides")),
                 ("dilations", op.attr("dilations")), ("OH, OW", [OH, OW]))
