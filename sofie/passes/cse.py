"""Common-subexpression elimination: ops with the same name, operands and attributes compute
the same values, so later ones are replaced by the first. Weights holding identical data are
one weight. The function is one block in schedule order, so the first op dominates the rest."""

from __future__ import annotations

import hashlib
from typing import Any

from sofie.ir.core import Function, Module, Operation
from sofie.ir.registry import CONSTANT_LIKE, PURE
from sofie.passes.dce import eliminate_unused_weights
from sofie.passes.pass_manager import Pass, register_pass


def _hashable(v: Any) -> Any:
    if isinstance(v, list | tuple):
        return tuple(_hashable(x) for x in v)
    return v


def weight_aliases(module: Module) -> dict[str, str]:
    """Weight name -> name of the first weight with the same type and bytes."""
    first: dict[tuple, str] = {}
    alias: dict[str, str] = {}
    for name, w in module.weights.items():
        if w.data is None:  # elided: the bytes are unknown, so it equals only itself
            alias[name] = name
            continue
        digest = hashlib.blake2b(w.data.tobytes(), digest_size=20).hexdigest()
        alias[name] = first.setdefault((w.type, digest), name)
    return alias


def op_key(op: Operation, alias: dict[str, str]) -> tuple:
    attrs = dict(op.attrs)
    if op.has_trait(CONSTANT_LIKE):
        attrs["ref"] = alias.get(attrs.get("ref"), attrs.get("ref"))
    return (op.name, tuple(id(v) if v is not None else None for v in op.operands),
            tuple(sorted((k, _hashable(v)) for k, v in attrs.items())))


def cse_function(f: Function, alias: dict[str, str]) -> int:
    seen: dict[tuple, Operation] = {}
    outputs = {id(v) for v in f.outputs}
    merged = 0
    for op in list(f.ops):
        # a returned value keeps its own op: two outputs sharing one buffer would surprise
        # the caller-owned output buffers the backend writes into
        if not op.has_trait(PURE) or not op.results or any(id(r) in outputs for r in op.results):
            continue
        key = op_key(op, alias)
        prior = seen.get(key)
        if prior is None:
            seen[key] = op
            continue
        for old, new in zip(op.results, prior.results, strict=True):
            old.replace_all_uses_with(new)
        f.erase(op)
        merged += 1
    return merged


@register_pass
class CommonSubexpressionElimination(Pass):
    name = "cse"
    summary = "merge ops with equal name, operands and attributes; merge weights with equal data"

    def run(self, module: Module) -> None:
        alias = weight_aliases(module)
        for f in module.functions.values():
            cse_function(f, alias)
        eliminate_unused_weights(module)
