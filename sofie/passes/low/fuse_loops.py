"""Producer/consumer fusion of loop nests: a `low.generic` whose result only one other generic
reads is merged into that consumer. The intermediate allocation disappears and the data makes
one trip through memory instead of three: SiLU (x * sigmoid(x)), GELU, bias + activation
chains, and the pieces of a LayerNorm decomposition (x - mean squared into the variance's sum,
the variance's + eps and sqrt into its `final` body).

Two shapes of pair fuse; in both the producer writes a `low.alloc` that only the pair touches,
read once by the consumer, and every element is computed once (no recomputation):
- inline: an all-parallel producer, writing through the identity map, whose buffer the
  consumer (parallel or reduction) reads through a map naming every consumer loop. Each
  consumer iteration reads one producer element: the producer's body is substituted for
  that read, its inputs re-indexed through the consumer's loops;
- finish: a reduction producer whose result an all-parallel consumer of the same element type
  reads, one consumer iteration per result element (its map names every consumer loop). The
  consumer's body becomes the producer's `final`, run once per result after its loops; the
  consumer's other inputs are indexed by the producer's parallel loops.
"""

from __future__ import annotations

from sofie.ir.core import Builder, Function, Module, Operation, Value
from sofie.ir.dialects.low import PARALLEL
from sofie.ir.dialects.low import Alloc as LowAlloc
from sofie.ir.dialects.low import Generic as LowGeneric
from sofie.ir.dialects.scalar import Expr, Var, parse_body, substitute
from sofie.passes.pass_manager import LOW, Pass, register_pass


def _all_parallel(op: Operation) -> bool:
    return all(it == PARALLEL for it in op.iterators)


def _identity(m: list[int]) -> bool:
    return m == list(range(len(m)))


def _read_index(producer: Operation, consumer: Operation) -> int | None:
    """The consumer operand reading the producer's buffer, when only the pair touches it, the
    consumer reads it once, through a map naming each consumer loop."""
    out = producer.operands[-1]
    if out.owner is None or not out.owner.isa(LowAlloc):
        return None
    users = [op for op, _ in out.uses]
    if set(map(id, users)) != {id(producer), id(consumer)} or len(out.uses) != 2:
        return None  # read elsewhere too, or read twice by the consumer
    k = next(i for i, v in enumerate(consumer.operands[:-1]) if v is out)
    if sorted(x for x in consumer.maps[k] if x >= 0) != list(range(len(consumer.iterators))):
        return None  # a broadcast read would compute each producer element more than once
    return k


class _Inputs:
    """The fused op's inputs: one slot per distinct (value, map)."""

    def __init__(self) -> None:
        self.values: list[Value] = []
        self.maps: list[list[int]] = []
        self.slot: dict[tuple, int] = {}

    def take(self, v: Value, m: list[int]) -> Var:
        key = (id(v), tuple(m))
        if key not in self.slot:
            self.slot[key] = len(self.values)
            self.values.append(v)
            self.maps.append(list(m))
        return Var(self.slot[key])


def _inline(producer: Operation, consumer: Operation, k: int) -> dict:
    """Producer loop j is consumer loop maps[k][j] (the producer writes through the identity)."""
    via = consumer.maps[k]
    ins = _Inputs()
    c_vars: dict[int, Expr] = {i: ins.take(v, m) for i, (v, m) in enumerate(zip(consumer.operands[:-1], consumer.maps))
                               if i != k}
    p_vars = {i: ins.take(v, [via[loop] if loop >= 0 else -1 for loop in m])
              for i, (v, m) in enumerate(zip(producer.operands[:-1], producer.maps))}
    body = substitute(parse_body(consumer.body), {**c_vars, k: substitute(parse_body(producer.body), p_vars)})
    final = str(substitute(parse_body(consumer.final), c_vars)) if consumer.final else ""
    return {"inputs": ins, "out_map": consumer.maps[-1], "iterators": list(consumer.iterators),
            "body": str(body), "init": consumer.init, "final": final}


def _finish(producer: Operation, consumer: Operation, k: int) -> dict | None:
    """Consumer loop l is the producer loop writing the result axis the consumer reads with l."""
    to_p = {loop: producer.maps[-1][axis] for axis, loop in enumerate(consumer.maps[k]) if loop >= 0}
    ins = _Inputs()
    p_vars = {i: ins.take(v, m) for i, (v, m) in enumerate(zip(producer.operands[:-1], producer.maps))}
    c_vars: dict[int, Expr] = {i: ins.take(v, [to_p[loop] if loop >= 0 else -1 for loop in m])
                               for i, (v, m) in enumerate(zip(consumer.operands[:-1], consumer.maps)) if i != k}
    out_map = [to_p[loop] if loop >= 0 else -1 for loop in consumer.maps[-1]]
    parallel = [i for i, it in enumerate(producer.iterators) if it == PARALLEL]
    if sorted(x for x in out_map if x >= 0) != parallel:
        return None  # a size-1 axis the consumer does not loop over: the maps do not line up
    result = parse_body(producer.final) if producer.final else Var(-1)
    final = substitute(parse_body(consumer.body), {**c_vars, k: result})
    body = substitute(parse_body(producer.body), p_vars)
    return {"inputs": ins, "out_map": out_map, "iterators": list(producer.iterators), "body": str(body),
            "init": producer.init, "final": str(final)}


def _plan(producer: Operation, consumer: Operation) -> dict | None:
    k = _read_index(producer, consumer)
    if k is None:
        return None
    if _all_parallel(producer) and _identity(producer.maps[-1]):
        return _inline(producer, consumer, k)
    if (not _all_parallel(producer) and _all_parallel(consumer)
            and consumer.operands[-1].type.dtype == producer.operands[-1].type.dtype):
        return _finish(producer, consumer, k)
    return None


def fuse_pair(f: Function, producer: Operation, consumer: Operation, plan: dict) -> Operation:
    """One generic computing consumer(producer(...)); replaces both."""
    ins: _Inputs = plan["inputs"]
    out = consumer.operands[-1]
    attrs = {"maps": ins.maps + [plan["out_map"]], "iterators": plan["iterators"], "body": plan["body"],
             "init": plan["init"], "final": plan["final"],
             "fused": [*producer.fused, producer.loc or producer.operands[-1].name or "?", *consumer.fused]}
    fused = Builder(f, before=consumer).create(LowGeneric, [*ins.values, out], attrs,
                                               loc=consumer.loc or producer.loc)
    alloc = producer.operands[-1].owner
    f.erase(consumer)
    f.erase(producer)
    if not alloc.result.uses:
        f.erase(alloc)
    return fused


def fuse_loops(f: Function) -> int:
    """Fuses producer/consumer pairs until none is left. One sweep visits the loops in program
    order and retries each fused loop right away as a producer (instead of restarting from the
    top after every fusion, which made a 2000-loop chain quadratic); sweeps repeat while any
    fusion happened, since a fusion can give an earlier loop a single reader."""
    fused = 0
    changed = True
    while changed:
        changed = False
        pos = {id(op): i for i, op in enumerate(f.ops)}
        work = [op for op in f.ops if op.isa(LowGeneric)]
        work.reverse()  # a stack: next producer on top
        while work:
            producer = work.pop()
            if producer.parent is None:  # fused away earlier in this sweep
                continue
            readers = [op for op, _ in producer.operands[-1].uses if op is not producer]
            if len(readers) != 1 or not readers[0].isa(LowGeneric):
                continue
            consumer = readers[0]
            if pos[id(consumer)] < pos[id(producer)]:
                continue
            plan = _plan(producer, consumer)
            if plan is not None:
                new = fuse_pair(f, producer, consumer, plan)
                pos[id(new)] = pos[id(consumer)]  # it stands where the consumer stood
                work.append(new)
                fused += 1
                changed = True
    return fused


@register_pass
class FuseLoops(Pass):
    name = "fuse-loops"
    summary = "merge a loop nest into its only consumer: elementwise into any loop, a reduction's finish"
    level = LOW

    def run(self, module: Module) -> None:
        for f in module.functions.values():
            fuse_loops(f)
