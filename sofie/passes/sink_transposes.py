"""Sink transposes: move Transposes down through layout-agnostic ops and cancel inverse pairs.

A channels-last model (Keras) wraps each Conv, pool and BatchNormalization in a Transpose to
channels-first and one back. Between two such ops the pair back-and-forth cancels (the
canonical MergeTransposes), but an activation, an Add of two branches, a Concat or a Pad in
between hides it. This pass moves a Transpose below such an op, rewriting the op for the
permuted layout:
  - elementwise ops: f(T(a), T(b), scalar) = T(f(a, b, scalar)), all transposes of one perm;
  - Concat of transposes of one perm: the axis is mapped through the perm;
  - Pad with constant pads, Resize with constant scales: permuted like the data;
  - Slice with constant axes: the axes are mapped;
  - reductions with an `axes` attribute: the axes are mapped, and with keepdims=0 only the
    order of the kept axes is left to transpose (often none, e.g. a global average pool).
A Transpose moves only when the op is its one user, so no work is duplicated; the pass runs to
a fixpoint with MergeTransposes, so a Conv -> BN -> ReLU -> Conv chain keeps transposes only at
its ends.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sofie.ir.core import Module, Operation, Value, is_constant
from sofie.ir.dialects.graph.elementwise import Elementwise
from sofie.ir.dialects.graph.shape import Transpose
from sofie.passes.canonical_patterns import MergeTransposes
from sofie.passes.pass_manager import Pass, register_pass
from sofie.passes.rewrite import Pattern, Rewriter, apply_patterns, is_output, producer

_REDUCTIONS = ("graph.reduce_sum", "graph.reduce_mean", "graph.reduce_max", "graph.reduce_min",
               "graph.reduce_prod", "graph.reduce_l1", "graph.reduce_l2", "graph.reduce_sum_square",
               "graph.reduce_log_sum", "graph.reduce_log_sum_exp")


def _perm(t: Operation) -> list[int]:
    return t.opdef.perm(t, t.X.type.rank)


def _transposed(v: Value | None) -> Operation | None:
    """The Transpose defining v, when v is used by one op only (maybe in several slots)."""
    t = producer(v, Transpose)
    if t is None or is_output(v) or len({id(op) for op, _ in v.uses}) != 1:
        return None
    return t


def _scalar_like(v: Value, rank: int) -> bool:
    """A constant that broadcasts the same under any permutation: one element, rank <= rank."""
    return is_constant(v) and v.type.is_static and v.type.static_size() == 1 and v.type.rank <= rank


def _common_perm(op: Operation, values: list[Value | None]) -> list[int] | None:
    """The perm every transposed operand shares (the others must be scalar constants)."""
    perm = None
    rank = op.results[0].type.rank
    for v in values:
        if v is None:
            continue
        t = _transposed(v)
        if t is None:
            if not _scalar_like(v, rank):
                return None
            continue
        p = _perm(t)
        if perm is not None and p != perm or t.X.type.rank != rank:
            return None
        perm = p
    return perm


class SinkTranspose(Pattern):
    root = None

    def match(self, op: Operation, module: Module) -> Any:
        if len(op.results) != 1:
            return None
        if isinstance(op.opdef, Elementwise):
            perm = _common_perm(op, list(op.operands))
            return None if perm is None else ("elementwise", perm)
        if op.isa("graph.concat"):
            perms = [_transposed(v) for v in op.operands]
            if all(t is not None for t in perms) and len({tuple(_perm(t)) for t in perms}) == 1:
                return ("concat", _perm(perms[0]))
            return None
        if op.isa("graph.pad") and _transposed(op.operands[0]) is not None and len(op.operands) <= 3:
            if all(v is None or is_constant(v) for v in op.operands[1:]) \
                    and module.constant_value(op.operands[1]) is not None:
                return ("pad", _perm(op.operands[0].owner))
            return None
        if op.isa("graph.slice") and _transposed(op.operands[0]) is not None and len(op.operands) >= 4 \
                and module.constant_value(op.operands[3]) is not None:
            return ("slice", _perm(op.operands[0].owner))
        if op.isa("graph.resize") and _transposed(op.operands[0]) is not None and not op.attr("axes") \
                and len(op.operands) == 3 and op.operands[1] is None \
                and module.constant_value(op.operands[2]) is not None:
            return ("resize", _perm(op.operands[0].owner))
        if op.isa(*_REDUCTIONS) and len(op.operands) == 1 and op.attr("axes") \
                and _transposed(op.operands[0]) is not None:
            return ("reduce", _perm(op.operands[0].owner))
        return None

    def rewrite(self, op: Operation, match: Any, rw: Rewriter) -> None:
        kind, perm = match
        operands = [v.owner.X if _transposed(v) is not None else v for v in op.operands]
        attrs = dict(op.attrs)
        out_perm: list[int] | None = perm
        if kind == "concat":
            rank = len(perm)
            axis = attrs["axis"] + rank if attrs["axis"] < 0 else attrs["axis"]
            attrs["axis"] = perm[axis]
        elif kind == "pad":
            pads = rw.module.constant_value(op.operands[1]).astype(np.int64)
            r = len(perm)
            new = np.zeros_like(pads)
            for i, p in enumerate(perm):  # operand axis i of the transpose is axis p of its input
                new[p], new[p + r] = pads[i], pads[i + r]
            operands[1] = rw.weight(new, f"{op.loc or 'pad'}/pads", loc=op.loc)
        elif kind == "slice":  # explicit axes: each maps through the perm
            r = len(perm)
            axes = rw.module.constant_value(op.operands[3]).astype(np.int64)
            operands[3] = rw.weight(np.array([perm[a + r if a < 0 else a] for a in axes], np.int64),
                                    f"{op.loc or 'slice'}/axes", loc=op.loc)
        elif kind == "resize":  # scales per axis, permuted like the data
            scales = rw.module.constant_value(op.operands[2])
            operands[2] = rw.weight(scales[np.argsort(perm)], f"{op.loc or 'resize'}/scales", loc=op.loc)
        elif kind == "reduce":
            r = len(perm)
            axes = [a + r if a < 0 else a for a in attrs["axes"]]
            attrs["axes"] = sorted(perm[a] for a in axes)
            if not attrs.get("keepdims", 1):
                kept = [perm[i] for i in range(r) if i not in axes]  # input axes in result order
                order = sorted(kept)
                out_perm = [order.index(k) for k in kept]
        new = rw.create(op.name, operands, attrs, loc=op.loc).result
        if out_perm != sorted(out_perm):
            new = rw.create(Transpose, [new], {"perm": out_perm}, loc=op.loc).result
        rw.replace(op, [new])


@register_pass
class SinkTransposes(Pass):
    name = "sink-transposes"
    summary = ("move transposes below elementwise ops, concat, pad, slice, resize and reductions; "
               "cancel inverse pairs")

    def run(self, module: Module) -> None:
        apply_patterns(module, [SinkTranspose(), MergeTransposes()])
