"""`low.generic` as C++ loop nests that g++ vectorizes at -O3.

Loops run in the output's axis order (writes are contiguous), reductions innermost with a
local accumulator. Adjacent loops that every operand walks contiguously collapse into one, so
an elementwise op over same-shape tensors is a single flat loop.
"""

from __future__ import annotations

from dataclasses import dataclass

from sofie.backend_cpp.kernels import emits
from sofie.backend_cpp.names import Names
from sofie.backend_cpp.scalar import Speller, literal
from sofie.backend_cpp.types import cpp_type
from sofie.errors import SofieError
from sofie.ir.core import Operation
from sofie.ir.dialects.low import REDUCTION
from sofie.ir.dialects.low import Generic as LowGeneric
from sofie.ir.dialects.scalar import parse_body
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


@dataclass
class Loop:
    extent: Mono
    reduction: bool
    strides: list[Mono]  # one per operand


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


def _index(idx: list[str], loops: list[Loop], k: int, n: Names) -> str:
    terms = []
    for i, lp in zip(idx, loops):
        s = lp.strides[k]
        if s.coef == 0:
            continue
        terms.append(i if s == Mono(1) else f"{i} * {s.cpp(n)}")
    return " + ".join(terms) or "0"


@emits(LowGeneric)
def _generic(op: Operation, n: Names) -> list[str]:
    *ins, out = op.operands
    loops = _collapse(_loops(op))
    idx = [f"i{d}" for d in range(len(loops))]
    reads = [f"{n[v]}[{_index(idx, loops, k, n)}]" for k, v in enumerate(ins)]
    y_type = out.type.dtype
    reduction = any(lp.reduction for lp in loops)
    acc = ("acc", y_type) if reduction else None
    expr = Speller(reads, [v.type.dtype for v in ins], acc).spell(parse_body(op.body), y_type)
    target = f"{n[out]}[{_index(idx, loops, len(ins), n)}]"
    lines: list[str] = []
    depth = 0
    for d, lp in enumerate(loops):
        if lp.reduction and not any(p.reduction for p in loops[:d]):
            lines.append("  " * depth + f"{cpp_type(y_type)} acc = {literal(op.init, y_type)};")
        lines.append("  " * depth + f"for (std::size_t {idx[d]} = 0; {idx[d]} < {lp.extent.cpp(n)}; ++{idx[d]}) {{")
        depth += 1
    lines.append("  " * depth + (f"acc = {expr};" if reduction else f"{target} = {expr};"))
    for d in reversed(range(len(loops))):
        depth -= 1
        lines.append("  " * depth + "}")
        if loops[d].reduction and not any(p.reduction for p in loops[:d]):
            lines.append("  " * depth + f"{target} = acc;")
    return lines
