"""graph dialect -> low dialect: kernel calls on planned buffers."""

from __future__ import annotations

from sofie.errors import SofieError
from sofie.ir.core import Function, Module, Operation, Value
from sofie.ir.verifier import verify
from sofie.lowering import rules  # noqa: F401  (registers the rules)
from sofie.lowering.context import RULES, LoweringContext
from sofie.passes.plan_memory import is_weight, plan_function

# operands read only at compile time (a Reshape's target shape), never by a kernel
_COMPILE_TIME_OPERANDS = {"graph.reshape": {1}, "graph.unsqueeze": {1}, "graph.squeeze": {1},
                          "graph.dropout": {1, 2}}


def lower(graph: Module) -> Module:
    """Lowers `main`; plans memory first (without reuse) if no plan is recorded."""
    f = graph.main
    if "plan.arena" not in f.attrs:
        plan_function(f, reuse=False)
    batch_symbol(f)
    low = Module(graph.name)
    low_func = low.add_function(Function("main", [Value(a.type, a.name) for a in f.args]))
    ctx = LoweringContext(graph, f, low, low_func)
    needed = _needed(f)
    for op in f.ops:
        if id(op) not in needed or (op.results and is_weight(op.results[0])):
            continue
        fn = RULES.get(op.name)
        if fn is not None:
            fn(ctx, op)
        elif not ctx.fold(op):
            raise SofieError(f"no lowering for {op.describe()}: the op has no C++ kernel yet and its "
                             f"inputs are not compile-time constants")
    low_func.outputs = [_output(ctx, k, v) for k, v in enumerate(f.outputs)]
    static, per_event = f.attrs["plan.arena"]
    low_func.attrs = {"arena": [static, per_event], "weights_bytes": ctx.weights_bytes,
                      "max_batch": default_max_batch(per_event)}
    verify(low, "lowering")
    return low


def default_max_batch(bytes_per_event: int) -> int:
    """Events a Session's arena holds by default: 64, or fewer so the arena stays near
    64 MB (ResNet-18: 16). Larger batches run in chunks of this size."""
    return max(1, min(64, (64 << 20) // max(bytes_per_event, 1)))


def _needed(f: Function) -> set[int]:
    """Ops whose results some kernel or output reads at run time."""
    needed: set[int] = set()
    stack = [v.owner for v in f.outputs if v.owner is not None]
    while stack:
        op = stack.pop()
        if id(op) in needed:
            continue
        needed.add(id(op))
        skip = _COMPILE_TIME_OPERANDS.get(op.name, set())
        stack.extend(v.owner for i, v in enumerate(op.operands)
                     if v is not None and v.owner is not None and i not in skip)
    return needed


def _output(ctx: LoweringContext, k: int, v: Value) -> Value:
    """Output k; copied unless its producer already wrote into the caller's buffer."""
    lv = ctx.value(v)
    root = lv
    while root.owner is not None and root.owner.name == "low.view":
        root = root.owner.operands[0]
    if root.owner is not None and root.owner.name == "low.output" and root.owner.attrs["index"] == k:
        return lv
    out = ctx.create("low.output", [], {"index": k}, result_types=[v.type], result_names=[f"output{k}"]).result
    ctx.create("low.copy", [lv, out])
    return out


def batch_symbol(f: Function) -> str | None:
    """The one dimension symbol of the function (the batch), or None for a static model."""
    symbols = {s for v in f.values() for s in v.type.symbols}
    if len(symbols) > 1:
        raise SofieError(f"the model has several dynamic dims ({', '.join(sorted(symbols))}); "
                         f"sofie supports one (the batch)")
    for v in f.values():
        if sum(1 for d in v.type.shape if isinstance(d, str)) > 1:
            raise SofieError(f"%{v.name} has type {v.type}: the batch dim appears twice")
    return symbols.pop() if symbols else None


def needed_ops(f: Function) -> list[Operation]:
    ids = _needed(f)
    return [op for op in f.ops if id(op) in ids]
