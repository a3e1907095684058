"""Storage, sizes and live ranges of a low-dialect function: what the memory planner and the
plan verifier both reason about.

A *storage root* is the op that owns bytes: an allocation (`low.alloc`, or `low.buffer` once
planned), a caller's output, a function argument or a weight; views share their source's
root. A root is live from the first kernel that touches it to the last one. Sizes are
polynomials in the dim symbols, kept as vectors over *terms*: term 0 is the constant 1, the
others products of symbols ("N", "N*P"), one coefficient (bytes) per term.
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx

from sofie.ir.core import Function, Operation, Value
from sofie.ir.dialects.low import Alloc as LowAlloc
from sofie.ir.dialects.low import Buffer as LowBuffer
from sofie.ir.registry import INPLACE, VIEW
from sofie.ir.run_time_dims import at_bounds, table

ALIGN = 64  # bytes; every coefficient of every offset and size is a multiple of it

ARENA_OPS = (LowAlloc, LowBuffer)


def storage_root(v: Value) -> Value:
    while v.owner is not None and v.owner.has_trait(VIEW):
        v = v.owner.operands[0]
    return v


def term_of(symbols: tuple[str, ...]) -> str:
    """The term a tensor's size scales with: '1' or its symbols multiplied, sorted."""
    return "*".join(sorted(symbols)) or "1"


def term_value(term: str, values: dict[str, int]) -> int:
    out = 1
    for s in term.split("*"):
        out *= 1 if s == "1" else values[s]
    return out


def size_bytes(v: Value) -> tuple[str, int]:
    """(term, coefficient): the value's bytes are coefficient * term, rounded up to ALIGN; a
    tensor with run-time dims is sized at their bounds."""
    t = at_bounds(v.type, table(v.owner.parent if v.owner is not None else None))
    n = t.static_size() * t.itemsize
    return term_of(t.symbols), -(-n // ALIGN) * ALIGN


def is_kernel(op: Operation) -> bool:
    """Kernels are destination-passing calls with no SSA results; only they touch storage."""
    return op.opdef.results == 0


@dataclass
class LiveRange:
    root: Value
    start: int        # index (in f.ops) of the first kernel touching it
    end: int          # index of the last
    written_at: int   # first index where a kernel writes it (-1: never written)


def live_ranges(f: Function) -> dict[int, LiveRange]:
    """id(root value) -> its live range, for every arena allocation some kernel touches.
    Outputs are read by the caller after the function returns: their range runs to the end."""
    ranges: dict[int, LiveRange] = {}
    for i, op in enumerate(f.ops):
        if not is_kernel(op):
            continue
        written = {id(v) for v in op.written_operands()}
        for v in op.operands:
            if v is None:
                continue
            root = storage_root(v)
            r = ranges.get(id(root))
            if r is None:
                r = ranges[id(root)] = LiveRange(root, i, i, -1)
            r.end = i
            if id(v) in written and r.written_at < 0:
                r.written_at = i
    end = len(f.ops)
    for v in f.outputs:
        r = ranges.get(id(storage_root(v)))
        if r is not None:
            r.end = end
    return {k: r for k, r in ranges.items() if r.root.owner is not None and r.root.owner.isa(*ARENA_OPS)}


def inplace_pairs(f: Function, ranges: dict[int, LiveRange]) -> set[frozenset[int]]:
    """Pairs of roots that may share bytes: at a kernel declaring in-place reuse, its first
    input dies there and its output is first written there, with the same size. An
    elementwise kernel reads each element before writing the same index."""
    pairs: set[frozenset[int]] = set()
    for i, op in enumerate(f.ops):
        if (not op.has_trait(INPLACE) or not op.operands or op.operands[0] is None
                or not op.opdef.may_run_in_place(op)):
            continue
        src, dst = storage_root(op.operands[0]), [storage_root(v) for v in op.written_operands()]
        rs = ranges.get(id(src))
        for d in dst:
            rd = ranges.get(id(d))
            if (rs is not None and rd is not None and rs is not rd and rs.end == i and rd.start == i
                    and rd.written_at == i and op.operands[0].type == op.written_operands()[0].type
                    and size_bytes(src) == size_bytes(d)):
                pairs.add(frozenset((id(src), id(d))))
    return pairs


def interference(ranges: dict[int, LiveRange]) -> nx.Graph:
    """Roots whose live ranges intersect (both live at some kernel)."""
    g = nx.Graph()
    g.add_nodes_from(ranges)
    order = sorted(ranges, key=lambda k: ranges[k].start)
    for pos, a in enumerate(order):
        for b in order[pos + 1:]:
            if ranges[b].start > ranges[a].end:
                break
            g.add_edge(a, b)
    return g


