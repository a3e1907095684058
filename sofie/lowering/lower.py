"""graph dialect -> low dialect: each graph op becomes kernel calls on allocations.

Registered as the pass `lower`: it runs on graph IR and hands back a new low module. Memory is
not planned here; `plan-memory` places the allocations afterwards.
"""

from __future__ import annotations

from sofie.errors import SofieError
from sofie.ir.core import Function, Module, Operation, Value, is_constant
from sofie.ir.dialects.low import Copy as LowCopy
from sofie.ir.dialects.low import Output as LowOutput
from sofie.ir.folding import known_value
from sofie.ir.verifier import verify
from sofie.lowering import (  # noqa: F401  (rules)
    conv,
    data_movement,
    dense,
    einsum,
    elementwise,
    indexing,
    normalization,
    recurrent,
    reduction,
    resize,
    slicing,
    spatial,
)
from sofie.lowering.context import RULES, LoweringContext, storage_root
from sofie.lowering.run_time_dims import record_bound
from sofie.passes.pass_manager import GRAPH, LOW, Pass, register_pass


def lower(graph: Module) -> Module:
    """Lowers `main` of a graph module into a new low module."""
    f = graph.main
    low = Module(graph.name)
    low_func = low.add_function(Function("main", [Value(a.type, a.name) for a in f.args]))
    ctx = LoweringContext(graph, f, low, low_func)
    for op in needed_ops(f):
        if is_constant(op.results[0] if op.results else None):
            continue
        fn = RULES.get(op.name)
        if fn is not None:
            fn(ctx, op)
        elif not ctx.fold(op):
            raise SofieError(f"no lowering for {op.describe()}: the op has no C++ kernel yet and its "
                             f"inputs are not compile-time constants")
    low_func.set_outputs([_output(ctx, k, v) for k, v in enumerate(f.outputs)], f.output_types)
    low_func.attrs = {"weights_bytes": ctx.weights_bytes}
    record_bound(f, low_func)
    verify(low, "lowering")
    return low


def needed_ops(f: Function) -> list[Operation]:
    """Ops whose results some kernel or output reads at run time, in schedule order.
    Operands declared compile-time (`:const`) are read by lowering, never by a kernel, unless
    their value is known only at run time (CumSum's axis, axes that give run-time dims)."""
    needed: set[int] = set()
    stack = [v.owner for v in f.outputs if v.owner is not None]
    while stack:
        op = stack.pop()
        if id(op) in needed:
            continue
        needed.add(id(op))
        stack.extend(v.owner for i, v in enumerate(op.operands)
                     if v is not None and v.owner is not None
                     and (not op.opdef.is_compile_time(i) or known_value(v) is None))
    return [op for op in f.ops if id(op) in needed]


def _output(ctx: LoweringContext, k: int, v: Value) -> Value:
    """Output k; copied unless its producer already wrote into the caller's buffer."""
    lv = ctx.value(v)
    root = storage_root(lv)
    if root.owner is not None and root.owner.isa(LowOutput) and root.owner.index == k:
        return lv
    out = ctx.create(LowOutput, [], {"index": k}, result_types=[v.type], result_names=[v.name or f"output{k}"]).result
    ctx.create(LowCopy, [lv, out])
    return out


@register_pass
class Lower(Pass):
    name = "lower"
    summary = "graph IR -> low IR: pick a kernel per op, allocations for tensors and scratch"
    level = GRAPH
    produces = LOW

    def run(self, module: Module) -> Module:
        return lower(module)
