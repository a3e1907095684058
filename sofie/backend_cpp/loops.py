"""`low.generic` as C++ loop nests that g++ vectorizes at -O3.

Loops run in the output's axis order (writes are contiguous), reductions innermost with a
local accumulator, finished by the `final` body when there is one. Adjacent loops that every
operand walks contiguously collapse into one, so an elementwise op over same-shape tensors is
a single flat loop. A parallel nest whose innermost loop reads an input across rows (a
transpose) is tiled: that loop and the loop the input walks contiguously run in TILE x TILE
blocks, so both sides stay in cache.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sofie.backend_cpp.kernels import emits
from sofie.backend_cpp.names import Names
from sofie.backend_cpp.scalar import Speller, literal
from sofie.backend_cpp.types import cpp_type
from sofie.errors import SofieError
from sofie.ir.core import Operation
from sofie.ir.dialects.low import REDUCTION
from sofie.ir.dialects.low import Generic as LowGeneric
from sofie.ir.dialects.scalar import Call, Expr, Var, parse_body, variables
from sofie.ir.types import Dim


@dataclass(frozen=True)
class Mono:
    """coef * product(syms): a stride or an extent."""

    coef: int
    syms: tuple[str, ...] = ()

    @staticmethod
    def of(dims: list[Dim] | tuple[Dim, ...]) -> Mono:
        coef, syms = 1, []
        for d in dims:
            if isinstance(d, int):
                coef *= d
            else:
                syms.append(d)
        return Mono(coef, tuple(sorted(syms)))

    def __mul__(self, other: Mono) -> Mono:
        coef = self.coef * other.coef
        return Mono(coef, tuple(sorted(self.syms + other.syms)) if coef else ())

    def cpp(self, n: Names) -> str:
        return n.size([self.coef, *self.syms])


TILE = 32  # 32 x 32 floats: 4 KB from each side per block, well inside L1


@dataclass
class Loop:
    extent: Mono
    reduction: bool
    strides: list[Mono]  # one per operand
    tiled: bool = field(default=False)


def _loops(op: Operation) -> list[Loop]:
    """The loop nest in emission order, before collapsing."""
    domain = op.opdef.domain(op)
    out_map = op.maps[-1]
    order = [loop for loop in out_map if loop >= 0]
    order += [i for i, it in enumerate(op.iterators) if it == REDUCTION]
    loops = []
    for loop in order:
        strides = []
        for v, m in zip(op.operands, op.maps):
            shape = v.type.shape
            s = Mono(0)
            for axis, at in enumerate(m):
                if at == loop:  # a loop on two axes (an Einsum diagonal) steps both
                    t = Mono.of(shape[axis + 1:])
                    if s.coef and s.syms != t.syms:
                        raise SofieError(f"{op.describe()}: loop {loop} walks axes of strides "
                                         f"{s.syms} and {t.syms}; a diagonal needs static inner dims")
                    s = Mono(s.coef + t.coef, t.syms)
            strides.append(s)
        loops.append(Loop(Mono.of([domain[loop]]), op.iterators[loop] == REDUCTION, strides))
    return loops


def _collapse(loops: list[Loop]) -> list[Loop]:
    out: list[Loop] = []
    for lp in loops:
        if out and out[-1].reduction == lp.reduction and all(
                outer == inner * lp.extent for outer, inner in zip(out[-1].strides, lp.strides)):
            prev = out[-1]
            out[-1] = Loop(prev.extent * lp.extent, lp.reduction, lp.strides)
        else:
            out.append(lp)
    return [lp for lp in out if lp.extent != Mono(1)] or out[:1]


def _tile(loops: list[Loop], n_inputs: int) -> list[Loop]:
    """Marks the innermost loop and the loop an input walks contiguously as tiled, when that
    input is read across rows by the innermost loop (all loops parallel)."""
    if len(loops) < 2 or any(lp.reduction for lp in loops):
        return loops
    inner = loops[-1]
    for k in range(n_inputs):
        if inner.strides[k] in (Mono(0), Mono(1)):
            continue
        for lp in loops[:-1]:
            if lp.strides[k] == Mono(1):
                lp.tiled = inner.tiled = True
                return loops
    return loops


def _order(loops: list[Loop]) -> list[tuple[int, str]]:
    """(loop number, kind) in nesting order: kind "" for a plain loop, "block" for the outer
    loop of a tiled pair, "in" for its loop within the block. Blocks go outside the loops
    between them; the loops are parallel, so any order is legal."""
    tiled = [d for d, lp in enumerate(loops) if lp.tiled]
    if not tiled:
        return [(d, "") for d in range(len(loops))]
    first, last = tiled
    return ([(d, "") for d in range(first)] + [(first, "block")] + [(d, "") for d in range(first + 1, last)]
            + [(last, "block"), (first, "in"), (last, "in")])


def _index(idx: list[str], loops: list[Loop], k: int, n: Names) -> str:
    terms = []
    for i, lp in zip(idx, loops):
        s = lp.strides[k]
        if s.coef == 0:
            continue
        terms.append(i if s == Mono(1) else f"{i} * {s.cpp(n)}")
    return " + ".join(terms) or "0"


LANES = 16  # partial results of a reduction's innermost loop (one AVX-512 vector of f32)
_ASSOCIATIVE = ("add", "mul", "max", "min", "and", "or")


def _lane_split(body: Expr) -> str | None:
    """The op of a body `op(acc, e)` (e free of acc) whose op is associative: the innermost
    reduction loop may then run as LANES independent partial results, combined at the end,
    which g++ vectorizes (a single running value is a chain it must keep in order)."""
    if isinstance(body, Call) and body.op in _ASSOCIATIVE:
        for acc_side, e in (body.args, body.args[::-1]):
            if acc_side == Var(-1) and -1 not in variables(e):
                return body.op
    return None


@emits(LowGeneric)
def _generic(op: Operation, n: Names) -> list[str]:
    *ins, out = op.operands
    loops = _tile(_collapse(_loops(op)), len(ins))
    idx = [f"i{d}" for d in range(len(loops))]
    types = [v.type.dtype for v in ins]
    reads = [f"{n[v]}[{_index(idx, loops, k, n)}]" for k, v in enumerate(ins)]
    y_type, t = out.type.dtype, cpp_type(out.type.dtype)
    reduction = any(lp.reduction for lp in loops)
    acc = ("acc", y_type) if reduction else None
    body = parse_body(op.body)
    speller = Speller(reads, types, acc)
    expr = speller.spell(body, y_type)
    result = speller.spell(parse_body(op.final), y_type) if op.final else "acc"
    target = f"{n[out]}[{_index(idx, loops, len(ins), n)}]"
    if not reduction:  # also a rank-0 nest, which has no loop at all
        return _parallel_nest(loops, idx, n, f"{target} = {expr};")
    if _interchange(loops):
        return _accumulate_in_place(op, n, loops, idx, reads, types, target)
    last = loops[-1]
    combine = _lane_split(body) if last.reduction else None
    if combine and isinstance(last.extent.coef, int) and not last.extent.syms and last.extent.coef < 2 * LANES:
        combine = None  # too short to gain
    lines: list[str] = []
    depth = 0
    for d, lp in enumerate(loops):
        pad = "  " * depth
        if lp.reduction and not any(p.reduction for p in loops[:d]):
            lines.append(pad + f"{t} acc = {literal(op.init, y_type)};")
            if combine:
                lines.append(pad + f"{t} lane[{LANES}];")
                lines.append(pad + f"for (std::size_t l = 0; l < {LANES}; ++l) lane[l] = acc;")
        if combine and d == len(loops) - 1:
            i, extent = idx[d], lp.extent.cpp(n)
            lane_reads = [f"{n[v]}[{_index(idx[:-1] + [f'({i} + l)'], loops, k, n)}]" for k, v in enumerate(ins)]
            lane_expr = Speller(lane_reads, types, ("lane[l]", y_type)).spell(body, y_type)
            lines += [pad + "{",
                      pad + f"  std::size_t {i} = 0;",
                      pad + f"  for (; {i} + {LANES} <= {extent}; {i} += {LANES})",
                      pad + f"    for (std::size_t l = 0; l < {LANES}; ++l) lane[l] = {lane_expr};",
                      pad + f"  for (; {i} < {extent}; ++{i}) acc = {expr};",
                      pad + "}"]
            if not any(p.reduction for p in loops[:d]):  # the only reduction loop: finish here
                lines += [pad + f"for (std::size_t l = 0; l < {LANES}; ++l) acc = {_fold(combine, acc)};",
                          pad + f"{target} = {result};"]
            break
        lines.append(pad + f"for (std::size_t {idx[d]} = 0; {idx[d]} < {lp.extent.cpp(n)}; ++{idx[d]}) {{")
        depth += 1
    else:
        lines.append("  " * depth + (f"acc = {expr};" if reduction else f"{target} = {expr};"))
    for d in reversed(range(depth)):
        lines.append("  " * d + "}")
        if loops[d].reduction and not any(p.reduction for p in loops[:d]):
            if combine:
                lines.append("  " * d + f"for (std::size_t l = 0; l < {LANES}; ++l) acc = {_fold(combine, acc)};")
            lines.append("  " * d + f"{target} = {result};")
    return lines


def _fold(combine: str, acc: tuple[str, str]) -> str:
    """acc combined with lane l."""
    return Speller(["lane[l]"], [acc[1]], acc).spell(Call(combine, (Var(-1), Var(0))), acc[1])


def _interchange(loops: list[Loop]) -> bool:
    """Whether no input reads the innermost reduction loop contiguously while the last
    parallel loop walks the output contiguously (a reduction over an outer axis): then
    the reduction loops go outside that parallel loop, which accumulates in the output."""
    parallel = [lp for lp in loops if not lp.reduction]
    if not parallel or parallel[-1].strides[-1] != Mono(1):
        return False
    inner = loops[-1]
    return all(s != Mono(1) for s in inner.strides[:-1]) and parallel[-1].extent != Mono(1)


def _accumulate_in_place(op: Operation, n: Names, loops: list[Loop], idx: list[str], reads: list[str],
                         types: list[str], target: str) -> list[str]:
    """A reduction over outer axes: for each block of the other parallel loops, the output
    row is set to init, updated once per reduction step along its contiguous loop (which
    g++ vectorizes), then finished."""
    y_type = op.operands[-1].type.dtype
    speller = Speller(reads, types, (target, y_type))
    p = max(d for d, lp in enumerate(loops) if not lp.reduction)
    outer = list(range(p))
    reds = [d for d, lp in enumerate(loops) if lp.reduction]

    def loop(d: int) -> str:
        return f"for (std::size_t {idx[d]} = 0; {idx[d]} < {loops[d].extent.cpp(n)}; ++{idx[d]})"

    lines: list[str] = []
    for depth, d in enumerate(outer):
        lines.append("  " * depth + loop(d) + " {")
    pad = "  " * len(outer)
    lines.append(pad + loop(p) + f" {target} = {literal(op.init, y_type)};")
    for k, d in enumerate(reds):
        lines.append(pad + "  " * k + loop(d) + " {")
    inner_pad = pad + "  " * len(reds)
    lines.append(inner_pad + loop(p) + f" {target} = {speller.spell(parse_body(op.body), y_type)};")
    for k in reversed(range(len(reds))):
        lines.append(pad + "  " * k + "}")
    if op.final:
        lines.append(pad + loop(p) + f" {target} = {speller.spell(parse_body(op.final), y_type)};")
    for depth in reversed(range(len(outer))):
        lines.append("  " * depth + "}")
    return lines


def _parallel_nest(loops: list[Loop], idx: list[str], n: Names, statement: str) -> list[str]:
    """An all-parallel nest around `statement`, tiled where `_tile` marked it."""
    lines: list[str] = []
    depth = 0
    for d, kind in _order(loops):
        lines.append("  " * depth + _header(idx[d], loops[d].extent.cpp(n), kind))
        depth += 1
    lines.append("  " * depth + statement)
    for d in reversed(range(depth)):
        lines.append("  " * d + "}")
    return lines


def _header(i: str, extent: str, kind: str) -> str:
    if kind == "block":
        return f"for (std::size_t {i}b = 0; {i}b < {extent}; {i}b += {TILE}) {{"
    if kind == "in":
        return f"for (std::size_t {i} = {i}b; {i} < std::min<std::size_t>({i}b + {TILE}, {extent}); ++{i}) {{"
    return f"for (std::size_t {i} = 0; {i} < {extent}; ++{i}) {{"
