"""Compile-time values of small integer tensors whose entries may be dimension symbols.

PyTorch exports a dynamic-batch reshape as Shape -> Gather -> Unsqueeze -> Concat -> Reshape.
Evaluating that chain on numpy object arrays (entries: ints or symbols such as 'N') tells the
Reshape its target, [N, 512], without running anything.
"""

from __future__ import annotations

import numpy as np

from sofie.ir.core import Value

_MAX_ELEMENTS = 64  # only shape-sized tensors are evaluated symbolically


def symbolic_value(v: Value | None) -> np.ndarray | None:
    """The value of `v` when known at compile time (possibly with symbol entries), else None."""
    if v is None or v.owner is None:
        return None
    op = v.owner
    module = op.parent.module if op.parent is not None else None
    if op.name.endswith(".weight"):
        w = module.weights.get(op.attrs["ref"]) if module is not None else None
        return None if w is None else w.data
    opdef = op.opdef
    if not getattr(opdef, "symbolic", False) or v.type.static_size() > _MAX_ELEMENTS:
        return None
    if hasattr(opdef, "symbolic_reference"):
        # normalized below like any other result: a Shape of a static tensor is plain int64,
        # so that lowering can fold its users (ConstantOfShape, ...) at -O0 too
        out = opdef.symbolic_reference(op)
    else:
        args = []
        for x in op.operands:
            a = symbolic_value(x) if x is not None else None
            if x is not None and a is None:
                return None
            args.append(a)
        try:
            out = opdef.evaluate(op, args)[v.index]
        except (TypeError, ValueError):
            return None
    if not isinstance(out, np.ndarray):  # numpy hands back a bare element for 0-d object results
        out = np.array(out, dtype=object)
    return out if out.dtype != object or any(isinstance(e, str) for e in out.flat) else out.astype(np.int64)
