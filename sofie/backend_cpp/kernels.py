"""C++ for each low op: one printer function per op name, nothing left to decide.

The runtime kernels are templates on the element type, deduced from the pointers; the low
dialect declares which types each kernel has (`Kernel.dtypes`) and the verifier holds every
call to them, so nothing here checks types. Scalars are spelled in the kernel's type.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sofie.backend_cpp.names import Names
from sofie.backend_cpp.scalar import literal, spell_lambda
from sofie.errors import SofieError
from sofie.ir.core import Operation

# the GEMM of each element type in the BLAS shim (blas.hxx)
GEMM_CALLS = {"f32": "sofie::rt::sgemm", "f64": "sofie::rt::dgemm"}


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


@emits("low.gemm")
def _gemm(op: Operation, n: Names) -> list[str]:
    a, bm, c, y = op.operands
    dt = y.type.dtype
    ta, tb = bool(op.attr("transA")), bool(op.attr("transB"))
    # a 1-D B (MatMul [..., K] @ [K]) is the column [K, 1]; a 1-D A is the row [1, K]
    b_shape = bm.type.shape if bm.type.rank == 2 else (bm.type.shape[0], 1)
    N = b_shape[0] if tb else b_shape[1]
    K = b_shape[1] if tb else b_shape[0]
    # M from A, not Y: Y drops the row dim of a 1-D A and the column dim of a 1-D B
    M = n.dim(a.type.shape[1]) if ta else n.size(a.type.shape[:-1]) if a.type.rank > 1 else "1"
    lda = n.dim(a.type.shape[-1])  # the batch when A is transposed: A is [K, batch]
    alpha, beta = op.attr("alpha"), op.attr("beta")
    lines = []
    if op.attr("bias") == "full":
        lines.append(f"sofie::rt::copy({n[c]}, {n[y]}, {n.size(y.type.shape)});")
    gemm_beta = beta if op.attr("bias") == "full" else 0.0
    lines.append(f"{GEMM_CALLS[dt]}({str(ta).lower()}, {str(tb).lower()}, {M}, {N}, {K}, {literal(alpha, dt)}, "
                 f"{n[a]}, {lda}, {n[bm]}, {b_shape[1]}, {literal(gemm_beta, dt)}, {n[y]}, {N});")
    bias = n[c] if op.attr("bias") == "row" else "nullptr"
    if op.attr("bias") == "row" and beta != 1.0:
        raise SofieError(f"{op.describe()}: a row bias with beta={beta} is not supported")
    if bias != "nullptr" or op.epilogue:
        lines.append(f"sofie::rt::bias_act({n[y]}, {bias}, {M}, {N}, false, {epilogue(op)});")
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
    _, C, H, W = x.type.shape
    M, _, kh, kw = w.type.shape
    _, _, OH, OW = y.type.shape
    return _call("conv2d", [n[x], n[w], n[bias], n[y], n[scratch]],
                 ("N, C, H, W", [n.dim(x.type.shape[0]), C, H, W]), ("M, group", [M, op.attr("group")]),
                 ("kH, kW", [kh, kw]), ("pads t, l, b, r", op.attr("pads")), ("strides", op.attr("strides")),
                 ("dilations", op.attr("dilations")), ("OH, OW", [OH, OW]), ("epilogue", [epilogue(op)]),
                 ("residual", [n[z]]), ("im2col rows per band", [op.attr("tile_rows")]))


@emits("low.conv2d_winograd")
def _conv_winograd(op: Operation, n: Names) -> list[str]:
    x, u, bias, z, scratch, y = op.operands
    _, C, H, W = x.type.shape
    _, _, OH, OW = y.type.shape
    return _call("conv2d_winograd", [n[x], n[u], n[bias], n[y], n[scratch]],
                 ("N, C, H, W", [n.dim(x.type.shape[0]), C, H, W]), ("M", [u.type.shape[1]]),
                 ("pads t, l", op.attr("pads")[:2]), ("OH, OW", [OH, OW]), ("epilogue", [epilogue(op)]),
                 ("residual", [n[z]]), ("tiles per block", [op.attr("tile_block")]))


@emits("low.pool2d")
def _pool(op: Operation, n: Names) -> list[str]:
    x, y = op.operands
    N, C, H, W = x.type.shape
    _, _, OH, OW = y.type.shape
    groups = [("N, C, H, W", [n.dim(N), C, H, W]), ("kH, kW", op.attr("kernel_shape")),
              ("pads t, l, b, r", op.attr("pads")), ("strides", op.attr("strides"))]
    if op.attr("kind") == "max":
        return _call("maxpool2d", [n[x], n[y]], *groups, ("dilations", op.attr("dilations")), ("OH, OW", [OH, OW]))
    include = "true" if op.attr("count_include_pad") else "false"
    return _call("avgpool2d", [n[x], n[y]], *groups, ("OH, OW", [OH, OW]), ("count_include_pad", [include]))


@emits("low.global_average_pool")
def _gap(op: Operation, n: Names) -> list[str]:
    x, y = op.operands
    return [f"sofie::rt::global_avgpool({n[x]}, {n[y]}, {n.size(x.type.shape[:2])}, "
            f"{n.size(x.type.shape[2:])});"]


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
    return [f"sofie::rt::softmax({n[x]}, {n[y]}, {n.size(s[:axis])}, {n.dim(s[axis])}, "
            f"{n.size(s[axis + 1:])});"]


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


@emits("low.copy")
def _copy(op: Operation, n: Names) -> list[str]:
    x, y = op.operands
    return [f"std::copy_n({n[x]}, {n.size(y.type.shape)}, {n[y]});"]


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
