"""One greedy pattern-rewrite driver for the local rewrites of every graph pass.

A pattern names the op kinds it is rooted at and says whether an op matches (None or False:
no; anything else, e.g. the values it found, is handed back to `rewrite`); it rewrites through
a `Rewriter`, which keeps the driver's worklist informed. `apply_patterns` revisits what a
rewrite touched until nothing matches, then removes the ops (and weights) that the rewrites
left without users.

    class DropIdentity(Pattern):
        root = "graph.identity"
        def match(self, op, module): return True
        def rewrite(self, op, match, rw): rw.replace(op, [op.operands[0]])
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from sofie.ir.core import Builder, Function, Module, Operation, Value, is_constant


class Pattern:
    """A local rewrite. `root`: op name(s) it applies to; None applies to every op."""

    root: Any = None  # declaration class(es) or op name(s)

    def match(self, op: Operation, module: Module) -> Any:
        raise NotImplementedError

    def rewrite(self, op: Operation, match: Any, rw: Rewriter) -> None:
        raise NotImplementedError

    def roots(self) -> tuple[str, ...] | None:
        if self.root is None:
            return None
        kinds = self.root if isinstance(self.root, tuple) else (self.root,)
        return tuple(k if isinstance(k, str) else k.name for k in kinds)


class Rewriter:
    """What a pattern may do to the function; every change is reported to the worklist."""

    def __init__(self, module: Module, func: Function, worklist: Worklist) -> None:
        self.module = module
        self.func = func
        self.worklist = worklist
        self.root: Operation | None = None

    def create(self, name: Any, operands: list[Value | None], attrs: dict[str, Any] | None = None,
               loc: str = "", before: Operation | None = None) -> Operation:
        """A new op placed before `before` (default: the op being rewritten), where every value
        the root can see is already defined."""
        op = Builder(self.func, before=before or self.root).create(name, operands, attrs, loc=loc)
        self.worklist.push(op)
        return op

    def weight(self, data: np.ndarray, name: str, loc: str = "", before: Operation | None = None) -> Value:
        """A new module weight holding `data`, and the op that reads it."""
        v = Builder(self.func, before=before or self.root).weight(data, name, loc=loc)
        self.worklist.push(v.owner)
        return v

    def replace(self, op: Operation, values: Sequence[Value]) -> None:
        """Points every use of op's results at `values`, then erases op. A fresh value takes
        over the replaced value's name, so source tensor names survive in the IR and C++. A
        returned value's name is part of the model's interface, so it wins over the new one's."""
        for old, new in zip(op.results, values, strict=True):
            if new.name is None or (is_output(old) and not is_constant(new) and new.owner is not None
                                    and not is_output(new)):
                new.name = old.name
            self.replace_uses(old, new)
        self.erase(op)

    def replace_uses(self, old: Value, new: Value) -> None:
        self.worklist.push_users(old)
        old.replace_all_uses_with(new)
        self.worklist.push_users(new)

    def set_operand(self, op: Operation, i: int, v: Value | None) -> None:
        old = op.operands[i]
        op.set_operand(i, v)
        self.worklist.push(op)
        if old is not None and old.owner is not None:
            self.worklist.push(old.owner)

    def erase(self, op: Operation) -> None:
        producers = [v.owner for v in op.operands if v is not None and v.owner is not None]
        self.func.erase(op)
        for p in producers:
            self.worklist.push(p)  # it may have lost its last user: a new match for some pattern


class Worklist:
    """Ops still to visit, in first-pushed order, each at most once at a time."""

    def __init__(self, ops: Iterable[Operation] = ()) -> None:
        self._queue: deque[Operation] = deque()
        self._queued: set[int] = set()
        for op in ops:
            self.push(op)

    def push(self, op: Operation | None) -> None:
        if op is not None and id(op) not in self._queued:
            self._queued.add(id(op))
            self._queue.append(op)

    def push_users(self, v: Value) -> None:
        for op in v.users:
            self.push(op)

    def pop(self) -> Operation | None:
        while self._queue:
            op = self._queue.popleft()
            self._queued.discard(id(op))
            if op.parent is not None:  # skip ops erased while queued
                return op
        return None


def _index(patterns: Sequence[Pattern]) -> tuple[dict[str, list[Pattern]], list[Pattern]]:
    by_root: dict[str, list[Pattern]] = {}
    anywhere: list[Pattern] = []
    for p in patterns:
        roots = p.roots()
        if roots is None:
            anywhere.append(p)
        for r in roots or ():
            by_root.setdefault(r, []).append(p)
    return by_root, anywhere


def apply_patterns(module: Module, patterns: Sequence[Pattern], max_iterations: int = 10,
                   cleanup: bool = True) -> int:
    """Applies patterns greedily until none matches (or `max_iterations` sweeps over the whole
    function); returns the number of rewrites. With `cleanup`, dead ops and weights go after."""
    from sofie.passes.dce import eliminate_dead_code

    by_root, anywhere = _index(patterns)
    total = 0
    for func in module.functions.values():
        for _ in range(max_iterations):
            n = _sweep(module, func, by_root, anywhere)
            total += n
            if n == 0:
                break
    if cleanup and total:
        eliminate_dead_code(module)
    return total


def _sweep(module: Module, func: Function, by_root: dict[str, list[Pattern]],
           anywhere: list[Pattern]) -> int:
    """One worklist run seeded with every op, in schedule order."""
    worklist = Worklist(func.ops)
    rw = Rewriter(module, func, worklist)
    count = 0
    while (op := worklist.pop()) is not None:
        for p in by_root.get(op.name, []) + anywhere:
            m = p.match(op, module)
            if m is not None and m is not False:
                rw.root = op
                p.rewrite(op, m, rw)
                rw.root = None
                count += 1
                break
    return count


# ---- small queries patterns share -----------------------------------------------------------

def producer(v: Value | None, kinds: Any = None) -> Operation | None:
    """The op defining v, when it is one of `kinds` (declaration classes or names; any op
    when None)."""
    if v is None or v.owner is None:
        return None
    if kinds is None or v.owner.isa(*(kinds if isinstance(kinds, tuple) else (kinds,))):
        return v.owner
    return None


def is_output(v: Value) -> bool:
    f = v.owner.parent if v.owner is not None else None
    return f is not None and any(o is v for o in f.outputs)


def sole_use(v: Value) -> bool:
    """v feeds exactly one operand slot and is not returned: a producer fusing into that one
    consumer changes no other observer."""
    return len(v.uses) == 1 and not is_output(v)


def constants(module: Module, values: Iterable[Value | None]) -> list[np.ndarray | None] | None:
    """The data of every value (None stays None for absent optionals), or None when any
    present value is not a weight with known data (elided weights count as unknown)."""
    out: list[np.ndarray | None] = []
    for v in values:
        if v is None:
            out.append(None)
            continue
        data = module.constant_value(v)
        if data is None:
            return None
        out.append(data)
    return out
