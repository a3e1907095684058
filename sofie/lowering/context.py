"""Lowering state: the graph function being lowered and the low function being built.

Rules (one per graph op, in the family files of `sofie.lowering`) ask the context for the low
value of a graph operand and for the destination of a result. A destination is the caller's
output buffer when the result is returned, else a `low.alloc` that `plan-memory` places later;
scratch is an allocation like any other. Weights become `low.weight` at file offsets.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from sofie.errors import SofieError
from sofie.ir.core import Builder, Function, Module, Operation, Value, Weight, is_constant
from sofie.ir.dialects.low import Alloc as LowAlloc
from sofie.ir.dialects.low import Output as LowOutput
from sofie.ir.dialects.low import View as LowView
from sofie.ir.dialects.low import Weight as LowWeight
from sofie.ir.folding import fold
from sofie.ir.liveness import storage_root
from sofie.ir.registry import OpDef, lookup
from sofie.ir.types import TensorType

Rule = Callable[["LoweringContext", Operation], None]
RULES: dict[str, Rule] = {}

WEIGHT_ALIGN = 64  # bytes; every weight starts on a cache line of the weights file


def rule(*kinds: type[OpDef] | str) -> Callable[[Rule], Rule]:
    """Registers a lowering rule for graph ops (declaration classes or names)."""
    def deco(fn: Rule) -> Rule:
        for k in kinds:
            RULES[k if isinstance(k, str) else k.name] = fn
        return fn
    return deco


def output_roots(f: Function) -> dict[int, int]:
    """id(root) -> output index for outputs whose producer can write into the caller's buffer."""
    claimed: dict[int, int] = {}
    for k, v in enumerate(f.outputs):
        root = storage_root(v)
        if root.owner is not None and not is_constant(root) and id(root) not in claimed:
            claimed[id(root)] = k
    return claimed


def refuse(op: Operation | None, dtype: str, supported: tuple[str, ...] | list[str], kernel: str = "") -> None:
    """The lowering error for an element type no kernel handles:
    `graph.conv (node 'c1'): no kernel for element type i32 (supported: f32, f64)`."""
    what = op.describe() if op is not None else kernel
    raise SofieError(f"{what}: no kernel for element type {dtype} (supported: {', '.join(supported)})")


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

    def create(self, kind: Any, operands: list[Value | None], attrs: dict[str, Any] | None = None,
               op: Operation | None = None, result_types: list[TensorType] | None = None,
               result_names: list[str | None] | None = None) -> Operation:
        """A low op lowering graph op `op`. A kernel that has no instance for the element type
        it would run on is refused here, naming `op`, rather than printed as C++ that does
        not compile."""
        dtypes = getattr(lookup(kind), "dtypes", None)
        written = [v for v in operands if v is not None][-1:]
        if dtypes is not None and written and written[0].type.dtype not in dtypes:
            refuse(op, written[0].type.dtype, dtypes, lookup(kind).name)
        return self.b.create(kind, operands, attrs, loc=op.loc if op is not None else "",
                             result_types=result_types if result_types is not None else [],
                             result_names=result_names)

    def value(self, v: Value | None) -> Value | None:
        """The low value holding graph value `v` (weights are materialized on first use)."""
        if v is None:
            return None
        if id(v) not in self.map:
            if is_constant(v):
                self.map[id(v)] = self._weight(v)
            else:
                raise SofieError(f"lowering: %{v.name} is used before it is computed")
        return self.map[id(v)]

    def weight_data(self, v: Value) -> np.ndarray:
        """The data of graph weight value `v`; refused when the IR text elided it."""
        w = self.graph.weight_of(v)
        if w.data is None:
            raise SofieError(f"weight @{w.name} has no data (elided from IR text); compile from the model")
        return w.data

    def _weight(self, v: Value) -> Value:
        w = self.graph.weight_of(v)
        if w.name not in self.low.weights:
            self.low.add_weight(w.name, self.weight_data(v), w.type)
        return self._in_file(self.low.weights[w.name], v.name)

    def constant(self, data: np.ndarray, name: str) -> Value:
        """A weight made during lowering (folded ops, transformed conv weights)."""
        return self._in_file(self.low.add_weight(name, np.array(data, order="C")), name)

    def _in_file(self, w: Weight, value_name: str | None) -> Value:
        """A `low.weight` for `w` at the next aligned offset of the weights file."""
        offset = self.weights_bytes
        self.weights_bytes += -(-w.data.nbytes // WEIGHT_ALIGN) * WEIGHT_ALIGN
        return self.create(LowWeight, [], {"ref": w.name, "offset": offset},
                           result_types=[w.type], result_names=[value_name]).result

    def dest(self, op: Operation, i: int = 0) -> Value:
        """Where result i of `op` is written: the caller's buffer for an output, else new storage."""
        r = op.results[i]
        if id(r) in self.outputs:
            out = self.create(LowOutput, [], {"index": self.outputs[id(r)]},
                              result_types=[r.type], result_names=[r.name]).result
        else:
            out = self.alloc(r.type, r.name)
        self.map[id(r)] = out
        return out

    def alloc(self, type: TensorType, name: str | None) -> Value:
        return self.create(LowAlloc, [], result_types=[type], result_names=[name]).result

    def scratch(self, op: Operation, nbytes: int, dtype: str = "f32") -> Value | None:
        """Workspace of `nbytes` in elements of `dtype` for the kernel lowering `op` picked;
        None when it needs none."""
        if nbytes <= 0:
            return None
        itemsize = TensorType(dtype, ()).itemsize
        return self.alloc(TensorType(dtype, (-(-nbytes // itemsize),)), f"{op.results[0].name or 'op'}_scratch")

    def alias(self, op: Operation) -> None:
        """A view: the result shares its operand's bytes."""
        src = self.value(op.operands[0])
        r = op.results[0]
        self.map[id(r)] = self.create(LowView, [src], {}, op, [r.type], [r.name]).result

    def fold(self, op: Operation) -> bool:
        """Evaluates an op whose operands are all known at compile time; False if some is not."""
        values = fold(op)
        if values is None:
            return False
        for r, data in zip(op.results, values, strict=True):
            self.map[id(r)] = self.constant(np.asarray(data), r.name or "folded")
        return True
