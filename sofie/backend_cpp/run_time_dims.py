"""C++ for run-time dims: `low.bind_dims` (printed at the top of run(), so the dims it
declares are in scope for every later kernel) and the kernels that run on them
(sofie_rt/run_time_dims.hxx, sofie_rt/reduce.hxx)."""

from __future__ import annotations

from sofie.backend_cpp.kernels import _where, emits
from sofie.backend_cpp.names import Names
from sofie.backend_cpp.scalar import Speller, literal
from sofie.backend_cpp.types import cpp_type
from sofie.errors import SofieError
from sofie.ir.core import Operation
from sofie.ir.dialects.scalar import parse_body
from sofie.ir.run_time_dims import table
from sofie.ir.types import Dim, dim_factors


def _dim(text: str) -> Dim:
    return int(text) if text.lstrip("-").isdigit() else text


def _sizes(dims: list[str], n: Names) -> str:
    return "{" + ", ".join(n.dim(_dim(d)) for d in dims) + "}"


def _bool(v: int) -> str:
    return "true" if v else "false"


# each rule's parameters after the input's shape (sofie_rt/run_time_dims.hxx: bind_<rule>)
_EXTRA = {"reduce": lambda p: [_bool(p[0]), _bool(p[1])], "reshape": lambda p: [_bool(p[0])],
          "squeeze": lambda p: [], "unsqueeze": lambda p: [], "top_k": lambda p: [str(p[0])]}


@emits("low.bind_dims")
def _bind_dims(op: Operation, n: Names) -> list[str]:
    """The result's dims into a local array by the op's rule, then one `d_R<k>` per run-time dim
    (also kept in the Session, which reports the outputs' shapes)."""
    (src,) = op.operands
    shape, dims, params = op.attr("shape"), op.attr("dims"), op.attr("params")
    values = n.fresh("dims_" + (op.loc or "op"))
    count = n.size(src.type.shape)
    rule = op.attr("rule")
    if rule not in _EXTRA:
        raise SofieError(f"C++ backend: {op.describe()}: no binding for rule '{rule}'")
    extra = "".join(f", {x}" for x in _EXTRA[rule](params))
    call = f"bind_{rule}({n[src]}, {count}, in.data(), {len(shape)}{extra}"
    bounds = table(op.parent)
    order = list(bounds)
    lines = [f"std::array<std::size_t, {len(dims)}> {values};",
             "{",
             f"  const std::array<std::size_t, {len(shape)}> in{_sizes(shape, n)};",
             f"  sofie::rt::{call}, {values}.data(), {len(dims)}, {_where(op)});",
             "}"]
    for k, d in enumerate(dims):
        if d in order:
            lines += [f"const std::size_t {n.symbol(d)} = sofie::rt::checked_run_time_dim({values}[{k}], "
                      f"{_bound(bounds[d], n)}, \"{d}\", {_where(op)});",
                      f"run_time_dims_[{order.index(d)}] = {n.symbol(d)};"]
    return lines


def _bound(bound: Dim, n: Names) -> str:
    """A run-time dim's bound at this call's dims, each at least 1 (`bound_sizes`)."""
    coef, syms = dim_factors(bound)
    return " * ".join([str(coef)] + [f"std::max<std::size_t>({n.symbol(s)}, 1)" for s in syms])


@emits("low.reduce_axes")
def _reduce_axes(op: Operation, n: Names) -> list[str]:
    x, axes, y = op.operands
    dt = y.type.dtype
    t = cpp_type(dt)
    body = Speller(["x0"], [dt], ("acc", dt)).spell(parse_body(op.attr("body")), dt)
    final = Speller(["x0", "n"], [dt, dt], ("acc", dt)).spell(parse_body(op.attr("final")), dt) \
        if op.attr("final") else "acc"
    rank = x.type.rank
    return [f"const std::array<std::size_t, {rank}> shape{_sizes([str(d) for d in x.type.shape], n)};",
            f"const std::uint64_t mask = sofie::rt::reduce_axes_mask({n[axes]}, {n.size(axes.type.shape)}, "
            f"{rank}, {_bool(op.attr('noop'))}, {_where(op)});",
            f"sofie::rt::reduce_masked({n[x]}, {n[y]}, shape.data(), {rank}, mask, {literal(op.attr('init'), dt)},",
            f"    []({t} acc, {t} x0) {{ return static_cast<{t}>({body}); }},",
            f"    []({t} acc, {t} n) {{ (void)n; return static_cast<{t}>({final}); }});"]
