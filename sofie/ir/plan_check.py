"""The verifier of a planned low function (after `plan-memory`): the memory plan is sound.

- No two buffers live at the same kernel share bytes, unless that kernel declares in-place
  reuse of its dying first input for its output.
- Every buffer lies inside the arena, for every value of the dim symbols.
- No returned value lives in an input or a weight, and each output is written once.
Offsets and sizes are coefficient vectors over the function's `arena_terms` (see
`sofie.ir.liveness`). Bytes ending at e lie below bytes starting at s for every value >= 1 of
every symbol when e <= s with every symbol at 1 and no symbol coefficient of e exceeds s's.
"""

from __future__ import annotations

from sofie.errors import SofieError
from sofie.ir.core import Function, Value
from sofie.ir.dialects.low import Alloc as LowAlloc
from sofie.ir.dialects.low import Output as LowOutput
from sofie.ir.liveness import inplace_pairs, interference, live_ranges, size_bytes, storage_root


def check_plan(f: Function) -> None:
    """Raises SofieError naming the first two values whose storage conflicts."""
    terms = f.attrs.get("arena_terms")
    if terms is None:
        return
    leftover = [op for op in f.ops if op.isa(LowAlloc)]
    if leftover:
        raise SofieError(f"plan: %{leftover[0].result.name} is still an unplaced low.alloc")
    ranges = live_ranges(f)
    span = {k: _span(r.root, terms) for k, r in ranges.items()}
    rows = [tuple(r) for r in f.attrs["arena"]]
    for k, (_, hi) in span.items():
        if not any(_below(hi, row) for row in rows):
            raise SofieError(f"plan: %{ranges[k].root.name} ends at {list(hi)}, outside the arena {rows}")
    shared_ok = inplace_pairs(f, ranges)
    for a, b in interference(ranges).edges:
        (lo_a, hi_a), (lo_b, hi_b) = span[a], span[b]
        apart = _below(hi_a, lo_b) or _below(hi_b, lo_a)
        if not apart and frozenset((a, b)) not in shared_ok:
            ra, rb = ranges[a], ranges[b]
            raise SofieError(f"plan: %{ra.root.name} (ops {ra.start}..{ra.end}) and %{rb.root.name} "
                             f"(ops {rb.start}..{rb.end}) are live together and overlap "
                             f"([{list(lo_a)}, {list(hi_a)}) vs [{list(lo_b)}, {list(hi_b)}))")
    _check_outputs(f)


def _span(root: Value, terms: list[str]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    term, n = size_bytes(root)
    lo = tuple(root.owner.attrs["offset"])
    if len(lo) != len(terms):
        raise SofieError(f"plan: %{root.name} has {len(lo)} offset coefficients for {len(terms)} terms")
    size = tuple(n if t == term else 0 for t in terms)
    return lo, tuple(a + b for a, b in zip(lo, size))


def _below(end: tuple[int, ...], start: tuple[int, ...]) -> bool:
    return sum(end) <= sum(start) and all(e <= s for e, s in zip(end[1:], start[1:]))


def _check_outputs(f: Function) -> None:
    args = {id(a) for a in f.args}
    seen: dict[int, int] = {}
    for k, v in enumerate(f.outputs):
        root = storage_root(v)
        if id(root) in args or (root.owner is not None and root.owner.has_trait("constant_like")):
            raise SofieError(f"plan: output {k} (%{v.name}) aliases an input or a weight; it must be copied")
        if root.owner is None or not root.owner.isa(LowOutput) or root.owner.index != k:
            raise SofieError(f"plan: output {k} (%{v.name}) is not written into the caller's output {k}")
        if id(root) in seen:
            raise SofieError(f"plan: outputs {seen[id(root)]} and {k} share storage")
        seen[id(root)] = k
