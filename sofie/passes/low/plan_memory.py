"""Static memory plan: every `low.alloc` becomes a `low.buffer` at an offset in one arena.

Sizes are polynomials in the dim symbols (see `sofie.ir.liveness`), so an offset is one too: a
vector of byte coefficients over the function's terms ['1', 'N', ...], evaluated with the
Session's maxima. Two buffers that are live at once (interference from a sweep over live ranges) are placed
one *below* the other: the lower one ends before the upper one starts with every symbol at 1,
and its end grows no faster in any symbol term than the upper one's start (`below`). Then they
stay apart for every value of every symbol, while a fixed-size scratch and a per-event tensor
that are never live together may share bytes at batch 1. A kernel declaring in-place reuse
writes over its dying first input. Placement is best-fit, largest first, measured at batch 1
(the figure `--stats` reports), with the smaller growth per symbol breaking ties. The work is
linear in the pairs of buffers live together (`_lowest_fit`): a 2000-op chain makes ~50
overlap checks per buffer, where checking every candidate against every neighbor made ~775.

Recorded in the IR: `low.buffer {offset = [...]}` and, on the function, `arena_terms`, the
`arena` envelope (rows of coefficients; the arena is the largest row's value) and
`peak_live_bytes` (the most bytes live at once at batch 1, scratch included).
"""

from __future__ import annotations

import networkx as nx

from sofie.ir.core import Builder, Function, Module, Value
from sofie.ir.dialects.low import Alloc as LowAlloc
from sofie.ir.dialects.low import Buffer as LowBuffer
from sofie.ir.liveness import inplace_pairs, live_ranges, size_bytes, term_value
from sofie.passes.pass_manager import LOW, Pass, register_pass

Vec = tuple[int, ...]


def _add(a: Vec, b: Vec) -> Vec:
    return tuple(x + y for x, y in zip(a, b))


def _at_one(v: Vec) -> int:
    return sum(v)  # every symbol at 1: each term is 1


def below(end: Vec, start: Vec) -> bool:
    """Whether bytes ending at `end` stay below bytes starting at `start` for every value >= 1
    of every symbol: true with all symbols at 1, and no symbol term grows the end faster."""
    return _at_one(end) <= _at_one(start) and all(e <= s for e, s in zip(end[1:], start[1:]))


class _Slot:
    """Storage shared by one or more roots (in-place chains)."""

    def __init__(self, roots: list[Value], size: Vec, start: int, end: int) -> None:
        self.roots, self.size, self.start, self.end = roots, size, start, end
        self.offset: Vec | None = None


def _neighbors(slots: list[_Slot]) -> list[list[int]]:
    """Slots live at some common kernel (the interference graph as adjacency lists): a sweep
    over starts, each slot meeting only the slots that start before it ends."""
    adj: list[list[int]] = [[] for _ in slots]
    order = sorted(range(len(slots)), key=lambda i: slots[i].start)
    for pos, a in enumerate(order):
        end = slots[a].end
        for b in order[pos + 1:]:
            if slots[b].start > end:
                break
            adj[a].append(b)
            adj[b].append(a)
    return adj


def _place(slots: list[_Slot], adj: list[list[int]], nterms: int) -> None:
    zero = (0,) * nterms
    # largest at batch 1 first. (Placing per-event tensors first packs their growth tighter, 4.0
    # instead of 5.6 MB per event on ResNet-18, but then a fixed-size conv scratch must sit above
    # tensors live with it and the batch-1 arena is 1.24x the bytes ever live at once, not 1.0x.)
    for i in sorted(range(len(slots)), key=lambda i: (-_at_one(slots[i].size), slots[i].start)):
        s = slots[i]
        placed = [(p.offset, _add(p.offset, p.size)) for p in (slots[j] for j in adj[i]) if p.offset is not None]
        s.offset = _lowest_fit(placed, s.size, zero)


def _lowest_fit(placed: list[tuple[Vec, Vec]], size: Vec, zero: Vec) -> Vec:
    """The best start for `size` bytes clear of the (start, end) spans in `placed`.

    Candidates: zero, then just above every span ending at or below a threshold (a down-set),
    in order of that threshold; the last one (above all) always fits. Each candidate lies
    above the one before in the batch-1 value and in every growth term, so its cost never
    drops: the first that fits is the best. Spans whose end is among the candidate's
    thresholds lie below it; a span clashing with a candidate clashes with every later one
    until one lies above that span's end, so the search jumps there. Each span is looked at
    a bounded number of times instead of once per candidate."""
    ends = sorted({e for _, e in placed}, key=_at_one)
    rank = {e: k for k, e in enumerate(ends, 1)}  # candidate k lies above ends[:k]
    spans = sorted(placed, key=lambda p: rank[p[1]])
    cands = [zero]
    growth, top1 = zero[1:], 0

    def cand(k: int) -> Vec:
        nonlocal growth, top1
        while len(cands) <= k:  # _lowest_above(ends[:k]), kept incrementally
            e = ends[len(cands) - 1]
            growth = tuple(max(a, b) for a, b in zip(growth, e[1:]))
            top1 = max(top1, _at_one(e))
            cands.append((max(0, top1 - sum(growth)), *growth))
        return cands[k]

    k, first = 0, 0  # spans[first:] are those not yet known to lie below candidate k
    while True:
        c = cand(k)
        top = _add(c, size)
        while first < len(spans) and rank[spans[first][1]] <= k:
            first += 1
        clash = next((p for p in spans[first:] if not (below(top, p[0]) or below(p[1], c))), None)
        if clash is None:
            return c
        k += 1
        while not below(clash[1], cand(k)):
            k += 1


def _envelope(rows: list[Vec]) -> list[Vec]:
    """The rows no other row dominates: the arena is the largest of their values."""
    rows = sorted(set(rows), key=lambda r: (-_at_one(r), r))
    keep: list[Vec] = []
    for r in rows:
        if not any(below(r, k) for k in keep):
            keep.append(r)
    return keep or [(0,)]


def plan_function(f: Function, reuse: bool = True) -> None:
    """Places every allocation; with reuse=False each gets its own bytes (`plan-memory-no-reuse`)."""
    ranges = live_ranges(f)
    terms = ["1"] + sorted({size_bytes(r.root)[0] for r in ranges.values()} - {"1"})
    index = {t: k for k, t in enumerate(terms)}

    def vec(v: Value) -> Vec:
        term, n = size_bytes(v)
        out = [0] * len(terms)
        out[index[term]] = n
        return tuple(out)

    # in-place chains share one slot: union-find over the declared pairs
    merge = nx.Graph()
    merge.add_nodes_from(ranges)
    if reuse:
        merge.add_edges_from(tuple(p) for p in inplace_pairs(f, ranges))
    slots: list[_Slot] = []
    for group in nx.connected_components(merge):
        rs = sorted((ranges[k] for k in group), key=lambda r: r.start)
        slots.append(_Slot([r.root for r in rs], vec(rs[0].root), rs[0].start, max(r.end for r in rs)))
    # an in-place chain's roots follow one another, so the slot's range is their union and two
    # slots interfere exactly when some of their roots do
    if reuse:
        adj = _neighbors(slots)
    else:
        adj = [[j for j in range(len(slots)) if j != i] for i in range(len(slots))]
    _place(slots, adj, len(terms))
    offset_of = {id(root): s.offset for s in slots for root in s.roots}
    _materialize(f, offset_of, len(terms))
    f.attrs["arena_terms"] = terms
    f.attrs["arena"] = [list(r) for r in _envelope([_add(s.offset, s.size) for s in slots])]
    f.attrs["peak_live_bytes"] = _peak(slots)


def _materialize(f: Function, offset_of: dict[int, Vec], nterms: int) -> None:
    """Replaces each allocation with a buffer at its offset (an untouched one at offset 0)."""
    for op in [op for op in f.ops if op.isa(LowAlloc)]:
        r = op.result
        offset = offset_of.get(id(r), (0,) * nterms)
        buf = Builder(f, before=op).create(LowBuffer, [], {"offset": list(offset)},
                                           result_types=[r.type], result_names=[r.name])
        r.replace_all_uses_with(buf.result)
        f.erase(op)


def _peak(slots: list[_Slot]) -> int:
    """Most bytes live at once at batch 1 (every symbol 1)."""
    events = sorted([(s.start, _at_one(s.size)) for s in slots] + [(s.end + 1, -_at_one(s.size)) for s in slots],
                    key=lambda e: (e[0], e[1]))
    live = peak = 0
    for _, d in events:
        live += d
        peak = max(peak, live)
    return peak


def arena_bytes(f: Function, values: dict[str, int] | None = None) -> int:
    """Arena size for the given symbol maxima (default: every symbol 1)."""
    terms = f.attrs["arena_terms"]
    values = values or {}
    return max(sum(c * term_value(t, {s: values.get(s, 1) for s in t.split("*") if s != "1"})
                   for c, t in zip(row, terms)) for row in f.attrs["arena"])


@register_pass
class PlanMemory(Pass):
    name = "plan-memory"
    summary = "place allocations in one arena from live ranges (in-place reuse the kernels declare)"
    level = LOW

    def run(self, module: Module) -> None:
        for f in module.functions.values():
            plan_function(f)



@register_pass
class PlanMemoryNoReuse(Pass):
    """Only when a pipeline names it: a build whose pipeline leaves out plan-memory still gets
    the plan with reuse, since the printer needs a plan and no reuse costs memory silently."""
    name = "plan-memory-no-reuse"
    summary = "place each allocation in its own bytes (no reuse: to rule out the plan when debugging)"
    level = LOW

    def run(self, module: Module) -> None:
        for f in module.functions.values():
            plan_function(f, reuse=False)
