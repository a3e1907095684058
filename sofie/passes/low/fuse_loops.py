"""Producer/consumer fusion of loop nests: a `low.generic` whose result only one other generic
reads, over the same iteration space, is inlined into that consumer's body. The intermediate
allocation disappears and the data makes one trip through memory instead of three: SiLU
(x * sigmoid(x)), GELU, bias + activation chains.

Conditions, each needed for the result to be the same:
- the producer is all-parallel and writes a `low.alloc` that nothing else reads or writes;
- the consumer reads it once, through the identity map, and is all-parallel over the same
  loop bounds (so both loops visit the same element at the same iteration);
- the producer writes that buffer through the identity map.
"""

from __future__ import annotations

from sofie.ir.core import Builder, Function, Module, Operation
from sofie.ir.dialects.low import PARALLEL
from sofie.ir.dialects.low import Alloc as LowAlloc
from sofie.ir.dialects.low import Generic as LowGeneric
from sofie.ir.dialects.scalar import Var, parse_body, substitute
from sofie.passes.pass_manager import LOW, Pass, register_pass


def _all_parallel(op: Operation) -> bool:
    return all(it == PARALLEL for it in op.iterators)


def _identity(m: list[int]) -> bool:
    return m == list(range(len(m)))


def _fusable(producer: Operation, consumer: Operation) -> int | None:
    """The consumer operand index reading the producer's output, when the pair may fuse."""
    out = producer.operands[-1]
    if not (out.owner is not None and out.owner.isa(LowAlloc) and _all_parallel(producer)
            and _all_parallel(consumer) and _identity(producer.maps[-1])):
        return None
    users = [op for op, _ in out.uses]
    if set(map(id, users)) != {id(producer), id(consumer)} or len(out.uses) != 2:
        return None  # read elsewhere too, or read twice by the consumer
    k = next(i for i, v in enumerate(consumer.operands[:-1]) if v is out)
    if not _identity(consumer.maps[k]) or consumer.maps[-1] != consumer.maps[k]:
        return None
    if producer.opdef.domain(producer) != consumer.opdef.domain(consumer):
        return None
    return k


def fuse_pair(f: Function, producer: Operation, consumer: Operation, k: int) -> Operation:
    """One generic computing consumer(producer(...)); replaces both."""
    p_ins, c_ins = producer.operands[:-1], consumer.operands[:-1]
    inputs, maps, slot = [], [], {}

    def take(v, m) -> int:
        key = (id(v), tuple(m))
        if key not in slot:
            slot[key] = len(inputs)
            inputs.append(v)
            maps.append(list(m))
        return slot[key]

    c_vars = {i: Var(take(v, m)) for i, (v, m) in enumerate(zip(c_ins, consumer.maps)) if i != k}
    p_vars = {i: Var(take(v, m)) for i, (v, m) in enumerate(zip(p_ins, producer.maps))}
    body = substitute(parse_body(consumer.body), {**c_vars, k: substitute(parse_body(producer.body), p_vars)})
    out = consumer.operands[-1]
    fused = Builder(f, before=consumer).create(
        LowGeneric, [*inputs, out], {"maps": maps + [consumer.maps[-1]], "iterators": list(consumer.iterators),
                                        "body": str(body)}, loc=consumer.loc or producer.loc)
    alloc = producer.operands[-1].owner
    f.erase(consumer)
    f.erase(producer)
    if not alloc.result.uses:
        f.erase(alloc)
    return fused


def fuse_loops(f: Function) -> int:
    fused = 0
    changed = True
    while changed:
        changed = False
        for producer in [op for op in f.ops if op.isa(LowGeneric)]:
            readers = [op for op, _ in producer.operands[-1].uses if op is not producer]
            if len(readers) != 1 or not readers[0].isa(LowGeneric):
                continue
            consumer = readers[0]
            if f.ops.index(consumer) < f.ops.index(producer):
                continue
            k = _fusable(producer, consumer)
            if k is not None:
                fuse_pair(f, producer, consumer, k)
                fused += 1
                changed = True
                break
    return fused


@register_pass
class FuseLoops(Pass):
    name = "fuse-loops"
    summary = "inline a loop nest into its only consumer over the same iteration space"
    level = LOW

    def run(self, module: Module) -> None:
        for f in module.functions.values():
            fuse_loops(f)
