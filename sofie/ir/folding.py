"""The one constant folder: the compile-time value of an SSA value, computed with each op's
declared numpy `reference`. Shape inference, the fold-constants pass and lowering all ask here.

Values may be *symbolic*: PyTorch exports a dynamic-batch reshape as Shape -> Gather ->
Unsqueeze -> Concat -> Reshape. Evaluating that chain on numpy object arrays (entries: ints or
dim symbols such as 'N') tells the Reshape its target, [N, 512], without running anything.
Only ops declared SYMBOLIC see object arrays; the others fold numbers only.
"""

from __future__ import annotations

import numpy as np

from sofie.ir.core import Operation, Value, is_constant
from sofie.ir.registry import SYMBOLIC
from sofie.ir.symbolic import Sym
from sofie.ir.types import numpy_dtype

# Beyond weights, only shape-sized results are evaluated on the way to a compile-time operand:
# the walk back from an operand then stops at the first tensor of real data.
SMALL_ELEMENTS = 64


def known_value(v: Value | None) -> np.ndarray | None:
    """The value of `v` when known at compile time (entries may be dim symbols), else None."""
    if v is None or v.owner is None:
        return None
    op = v.owner
    if is_constant(v):
        module = op.parent.module if op.parent is not None else None
        w = module.weights.get(op.attrs["ref"]) if module is not None else None
        return None if w is None else w.data
    if v.type.static_size() > SMALL_ELEMENTS:
        return None
    values = evaluate(op, [known_value(x) if x is not None else None for x in op.operands])
    return None if values is None else values[v.index]


def evaluate(op: Operation, args: list[np.ndarray | None]) -> list[np.ndarray] | None:
    """The results of `op` for compile-time operand values `args` (None: unknown), or None."""
    from_types = op.opdef.symbolic_reference(op)
    if from_types is not None:  # a Shape: known from the operand's type, whatever its data
        return [_normalize(from_types)]
    if any(a is None and x is not None for a, x in zip(args, op.operands)):
        return None
    if not op.opdef.has_reference:
        return None
    if any(a is not None and a.dtype == object for a in args) and not op.has_trait(SYMBOLIC):
        return None
    try:
        with np.errstate(all="ignore"):
            out = op.opdef.evaluate(op, args)
    except Exception:  # noqa: BLE001  (a reference that cannot run here leaves the op to run time)
        return None
    return [_normalize(o) for o in out]


def fold(op: Operation) -> list[np.ndarray] | None:
    """Concrete (numeric) values of every result of `op`, or None when some is not known."""
    values = evaluate(op, [known_value(x) if x is not None else None for x in op.operands])
    if values is None or len(values) != len(op.results) or any(v.dtype == object for v in values):
        return None
    out = []
    for r, v in zip(op.results, values, strict=True):
        if not r.type.is_static or v.size != r.type.static_size():
            return None
        # np.array, not ascontiguousarray, which makes a 0-d value 1-D
        out.append(np.array(v.astype(numpy_dtype(r.type.dtype)).reshape(r.type.shape), order="C"))
    return out


def _normalize(out: object) -> np.ndarray:
    if not isinstance(out, np.ndarray):  # numpy hands back a bare element for 0-d object results
        out = np.array(out, dtype=object)
    if out.dtype == object and not any(isinstance(e, Sym) for e in out.flat):
        return out.astype(np.int64)  # a Shape of static dims is plain int64, foldable at -O0 too
    return out
