"""Weights: the bridge from SSA values to the module's named resources."""

from __future__ import annotations

from sofie.errors import SofieError
from sofie.ir.core import Operation
from sofie.ir.registry import CONSTANT_LIKE, PURE, Attr, OpDef, register


@register
class Weight(OpDef):
    name = "graph.weight"
    attrs = {"ref": Attr("str")}
    traits = frozenset({PURE, CONSTANT_LIKE})
    doc = "The value of module weight @ref (initializers and ONNX Constant nodes)."

    def shape(self, op: Operation):
        return _weight(op).type

    def reference(self, op: Operation):
        w = _weight(op)
        if w.data is None:
            raise SofieError(f"weight @{w.name} was elided from the text form; its value is unknown")
        return w.data


def _weight(op: Operation):
    module = op.parent.module if op.parent else None
    ref = op.attrs.get("ref")
    if module is None or ref not in module.weights:
        raise SofieError(f"{op.describe()}: no weight named @{ref} in the module")
    return module.weights[ref]
