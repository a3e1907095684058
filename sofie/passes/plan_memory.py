"""Static memory plan: every intermediate gets a byte offset in one arena.

The arena has two regions: tensors with a static shape, and tensors that scale with the batch
symbol, planned per event (a plan for one event stays valid for B events when every offset
and size in that region is multiplied by B). Live ranges come from the schedule; buffers whose
ranges interfere (a networkx graph) never overlap; offsets are placed best-fit, largest first.
Elementwise ops whose first operand dies at them write in place.

Recorded in the IR: `plan.offsets` on ops (one per result; -1 for a result written straight
into the caller's output), `plan.scratch` for kernel workspace, `plan.arena` on the function
([static bytes, bytes per event]).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import networkx as nx

from sofie.ir.core import Function, Module, Value
from sofie.passes.pass_manager import Pass, register_pass

ALIGN = 64


def storage_root(v: Value) -> Value:
    """The value whose storage `v` shares: views (reshape, flatten, ...) alias their input."""
    while v.owner is not None and v.owner.opdef.view:
        v = v.owner.operands[0]
    return v


def is_weight(v: Value) -> bool:
    return v.owner is not None and v.owner.name.endswith(".weight")


def output_roots(f: Function) -> dict[int, int]:
    """id(root) -> output index for outputs whose producer can write into the caller's buffer."""
    claimed: dict[int, int] = {}
    for k, v in enumerate(f.outputs):
        root = storage_root(v)
        if root.owner is not None and not is_weight(root) and id(root) not in claimed:
            claimed[id(root)] = k
    return claimed


@dataclass
class Buffer:
    nbytes: int
    scaled: bool
    start: int
    end: int
    values: list[Value] = field(default_factory=list)
    offset: int = -1


def _nbytes(v: Value) -> int:
    return -(-v.type.static_size() * v.type.itemsize // ALIGN) * ALIGN


def _place(buffers: list[Buffer]) -> int:
    """Best-fit offsets over the interference graph; returns the region size."""
    g = nx.Graph()
    g.add_nodes_from(range(len(buffers)))
    order = sorted(range(len(buffers)), key=lambda i: buffers[i].start)
    for a_pos, a in enumerate(order):
        for b in order[a_pos + 1:]:
            if buffers[b].start > buffers[a].end:
                break
            g.add_edge(a, b)
    top = 0
    for i in sorted(g.nodes, key=lambda i: (-buffers[i].nbytes, buffers[i].start)):
        busy = sorted((buffers[j].offset, buffers[j].offset + buffers[j].nbytes)
                      for j in g.neighbors(i) if buffers[j].offset >= 0)
        best, best_gap, cursor = None, None, 0
        for lo, hi in busy:
            gap = lo - cursor
            if gap >= buffers[i].nbytes and (best_gap is None or gap < best_gap):
                best, best_gap = cursor, gap
            cursor = max(cursor, hi)
        buffers[i].offset = cursor if best is None else best
        top = max(top, buffers[i].offset + buffers[i].nbytes)
    return top


def plan_function(f: Function, reuse: bool = True) -> None:
    """Assigns offsets; with reuse=False every buffer gets its own slot (the -O0 plan)."""
    index = {id(op): i for i, op in enumerate(f.ops)}
    end_of_program = len(f.ops)
    outputs = output_roots(f)
    last_use: dict[int, int] = {}
    for i, op in enumerate(f.ops):
        for v in op.operands:
            if v is not None:
                last_use[id(storage_root(v))] = i
    for v in f.outputs:
        last_use[id(storage_root(v))] = end_of_program
    buffer_of: dict[int, Buffer] = {}
    buffers: list[Buffer] = []
    for op in f.ops:
        op.attrs.pop("plan.offsets", None)
        op.attrs.pop("plan.scratch", None)
        if not op.results or is_weight(op.results[0]) or op.opdef.view:
            continue
        i = index[id(op)]
        for r in op.results:
            if id(r) in outputs:
                continue
            end = last_use.get(id(r), i)
            src = storage_root(op.operands[0]) if op.operands and op.operands[0] is not None else None
            donor = buffer_of.get(id(src)) if src is not None else None
            # an elementwise op reads each element before writing it: the dying input's
            # buffer can take the result when nothing reads that buffer afterwards
            if (reuse and op.opdef.inplace and r.index == 0 and donor is not None
                    and donor.end == i and src.type == r.type):
                donor.end = max(donor.end, end)
                donor.values.append(r)
                buffer_of[id(r)] = donor
                continue
            b = Buffer(_nbytes(r), bool(r.type.symbols), i, end if reuse else end_of_program, [r])
            buffers.append(b)
            buffer_of[id(r)] = b
        scratch = op.opdef.scratch_bytes(op)
        if scratch:
            b = Buffer(-(-scratch // ALIGN) * ALIGN, False, i, i if reuse else end_of_program)
            buffers.append(b)
            op.attrs["plan.scratch"] = b  # replaced by its offset below
    static = [b for b in buffers if not b.scaled]
    scaled = [b for b in buffers if b.scaled]
    sizes = [_place(static), _place(scaled)]
    for op in f.ops:
        if "plan.scratch" in op.attrs:
            op.attrs["plan.scratch"] = op.attrs["plan.scratch"].offset
        if op.results and not op.opdef.view and not is_weight(op.results[0]):
            op.attrs["plan.offsets"] = [buffer_of[id(r)].offset if id(r) in buffer_of else -1
                                        for r in op.results]
    f.attrs["plan.arena"] = sizes


def arena_bytes(f: Function, batch: int = 1) -> int:
    static, per_event = f.attrs["plan.arena"]
    return static + per_event * batch


@register_pass
class PlanMemory(Pass):
    name = "plan-memory"
    summary = "assign arena offsets from live ranges (in-place elementwise, best-fit placement)"

    def run(self, module: Module) -> None:
        for f in module.functions.values():
            plan_function(f)
