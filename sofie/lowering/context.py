"""Lowering state: the graph function being lowered and the low function being built.

Rules (one per graph op, in `sofie.lowering.rules`) ask the context for the low value of a
graph operand and for the destination of a result; the context turns the memory plan into
`low.buffer` / `low.output` definitions and weights into `low.weight` with file offsets.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from sofie.errors import SofieError
from sofie.ir.core import Builder, Function, Module, Operation, Value, Weight
from sofie.ir.symbolic import symbolic_value
from sofie.ir.types import TensorType
from sofie.passes.plan_memory import ALIGN, is_weight, output_roots

Rule = Callable[["LoweringContext", Operation], None]
RULES: dict[str, Rule] = {}


def rule(*names: str) -> Callable[[Rule], Rule]:
    """Registers a lowering rule for graph ops."""
    def deco(fn: Rule) -> Rule:
        for n in names:
            RULES[n] = fn
        return fn
    return deco


class LoweringContext:
    def __init__(self, graph: Module, func: Function, low: Module, low_func: Function) -> None:
        self.graph = graph
        self.func = func
        self.low = low
        self.low_func = low_func
        self.b = Builder(low_func)
        self.map: dict[int, Value] = {id(a): la for a, la in zip(func.args, low_func.args)}
        self.outputs = output_roots(func)
        self.weights_bytes = 0

    def create(self, name: str, operands: list[Value | None], attrs: dict[str, Any] | None = None,
               op: Operation | None = None, result_types: list[TensorType] | None = None,
               result_names: list[str | None] | None = None) -> Operation:
        return self.b.create(name, operands, attrs, loc=op.loc if op is not None else "",
                             result_types=result_types if result_types is not None else [],
                             result_names=result_names)

    def value(self, v: Value | None) -> Value | None:
        """The low value holding graph value `v` (weights are materialized on first use)."""
        if v is None:
            return None
        if id(v) not in self.map:
            if is_weight(v):
                self.map[id(v)] = self._weight(v)
            else:
                raise SofieError(f"lowering: %{v.name} is used before it is computed")
        return self.map[id(v)]

    def weight_data(self, v: Value) -> np.ndarray:
        """The data of graph weight value `v`; refused when the IR text elided it."""
        w = self.graph.weights[v.owner.attrs["ref"]]
        if w.data is None:
            raise SofieError(f"weight @{w.name} has no data (elided from IR text); compile from the model")
        return w.data

    def _weight(self, v: Value) -> Value:
        w = self.graph.weights[v.owner.attrs["ref"]]
        if w.name not in self.low.weights:
            self.low.add_weight(w.name, self.weight_data(v), w.type)
        return self._in_file(self.low.weights[w.name], v.name)

    def constant(self, data: np.ndarray, name: str) -> Value:
        """A weight made during lowering (folded ops, transformed conv weights)."""
        return self._in_file(self.low.add_weight(name, np.array(data, order="C")), name)

    def _in_file(self, w: Weight, value_name: str | None) -> Value:
        """A `low.weight` for `w` at the next 64-byte aligned offset of the weights file."""
        offset = self.weights_bytes
        self.weights_bytes += -(-w.data.nbytes // ALIGN) * ALIGN
        return self.create("low.weight", [], {"ref": w.name, "offset": offset},
                           result_types=[w.type], result_names=[value_name]).result

    def dest(self, op: Operation, i: int = 0) -> Value:
        """Where result i of `op` is written, as the plan says."""
        r = op.results[i]
        if id(r) in self.outputs:
            out = self.create("low.output", [], {"index": self.outputs[id(r)]},
                              result_types=[r.type], result_names=[r.name]).result
        else:
            offsets = op.attrs.get("plan.offsets")
            if offsets is None or offsets[i] < 0:
                raise SofieError(f"lowering: {op.describe()} has no memory plan for result {i}")
            out = self.create("low.buffer", [], {"offset": offsets[i]},
                              result_types=[r.type], result_names=[r.name]).result
        self.map[id(r)] = out
        return out

    def scratch(self, op: Operation) -> Value | None:
        if "plan.scratch" not in op.attrs:
            return None
        nbytes = op.opdef.scratch_bytes(op)
        return self.create("low.buffer", [], {"offset": op.attrs["plan.scratch"]},
                           result_types=[TensorType("f32", (-(-nbytes // 4),))],
                           result_names=[f"{op.results[0].name or 'op'}_scratch"]).result

    def alias(self, op: Operation) -> None:
        """A view: the result shares its operand's bytes."""
        src = self.value(op.operands[0])
        r = op.results[0]
        self.map[id(r)] = self.create("low.view", [src], {}, op, [r.type], [r.name]).result

    def fold(self, op: Operation) -> bool:
        """Evaluates an op whose operands are all known at compile time; False if some is not."""
        # a result known without its operands (the Shape of a run-time tensor with static dims)
        known = [symbolic_value(r) for r in op.results]
        if op.results and all(k is not None and k.dtype != object for k in known):
            for r, data in zip(op.results, known):
                self.map[id(r)] = self.constant(np.asarray(data), r.name or "folded")
            return True
        args = [symbolic_value(v) if v is not None else None for v in op.operands]
        if any(a is None and v is not None for a, v in zip(args, op.operands)):
            return False
        if any(a.dtype == object for a in args if a is not None) or not op.opdef.has_reference:
            return False
        for r, data in zip(op.results, op.opdef.evaluate(op, args)):
            self.map[id(r)] = self.constant(np.asarray(data), r.name or "folded")
        return True
