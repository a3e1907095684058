"""Canonicalization of two-operand Einsum contractions into Transpose/Reshape + MatMul, so
they run as (batched) GEMMs instead of a scalar loop nest.

Labels sort into batch (both operands and the result), m (A and the result), n (B and the
result) and k (both operands, summed). A becomes [batch..., M, K], B [batch..., K, N], the
MatMul result [batch..., M, N] is reshaped to [batch..., m..., n...] and transposed to the
equation's output order. Equations with a diagonal (a label repeated in one operand), a label
summed within one operand, broadcasting ellipsis dims or a symbolic dim outside the batch
labels stay Einsum (the loop nest).
"""

from __future__ import annotations

import numpy as np

from sofie.ir.core import Module, Operation, Value
from sofie.ir.dialects.graph.einsum import Einsum, Equation, parse
from sofie.ir.dialects.graph.nn import MatMul
from sofie.ir.dialects.graph.shape import Reshape, Transpose
from sofie.ir.types import FLOATS, Dim, dims_product, make_dim
from sofie.passes.rewrite import Pattern, Rewriter


def _classes(e: Equation) -> tuple[list[str], list[str], list[str], list[str]] | None:
    a, b = e.inputs
    if len(set(a)) != len(a) or len(set(b)) != len(b):
        return None  # a diagonal
    if any(lab not in b and lab not in e.output for lab in a) or \
            any(lab not in a and lab not in e.output for lab in b):
        return None  # summed within one operand
    batch = [lab for lab in e.output if lab in a and lab in b]
    m = [lab for lab in e.output if lab in a and lab not in b]
    n = [lab for lab in e.output if lab in b and lab not in a]
    k = [lab for lab in a if lab in b and lab not in e.output]
    return batch, m, n, k


def _merged(e: Equation, labels: list[str]) -> Dim:
    return make_dim(*dims_product([e.sizes[lab] for lab in labels]))


class EinsumToMatMul(Pattern):
    root = Einsum

    def match(self, op: Operation, module: Module):
        if len(op.operands) != 2 or op.result.type.dtype not in FLOATS:
            return None
        e = parse(op, [v.type.shape for v in op.operands])
        if any(d != e.sizes[lab] for labs, v in zip(e.inputs, op.operands)
               for lab, d in zip(labs, v.type.shape)):
            return None  # an ellipsis dim broadcasts
        classes = _classes(e)
        if classes is None or any(isinstance(e.sizes[lab], str) for c in classes[1:] for lab in c):
            return None  # a symbol outside the batch would need a reshape with two unknowns
        return e, classes

    def rewrite(self, op: Operation, match, rw: Rewriter) -> None:
        e, (batch, m, n, k) = match
        loc = op.loc
        sizes = [e.sizes[lab] for lab in batch]
        a = self._arrange(rw, op.operands[0], e.inputs[0], batch + m + k,
                          sizes + [_merged(e, m), _merged(e, k)], loc)
        b = self._arrange(rw, op.operands[1], e.inputs[1], batch + k + n,
                          sizes + [_merged(e, k), _merged(e, n)], loc)
        y = rw.create(MatMul, [a, b], loc=loc).result
        order = batch + m + n
        y = self._reshape(rw, y, tuple(e.sizes[lab] for lab in order), loc)
        perm = [order.index(lab) for lab in e.output]
        if perm != list(range(len(perm))):
            y = rw.create(Transpose, [y], {"perm": perm}, loc=loc).result
        rw.replace(op, [y])

    def _arrange(self, rw: Rewriter, v: Value, labels: tuple[str, ...], order: list[str],
                 shape: list[Dim], loc: str) -> Value:
        perm = [labels.index(lab) for lab in order]
        if perm != list(range(len(perm))):
            v = rw.create(Transpose, [v], {"perm": perm}, loc=loc).result
        return self._reshape(rw, v, tuple(shape), loc)

    def _reshape(self, rw: Rewriter, v: Value, shape: tuple[Dim, ...], loc: str) -> Value:
        if v.type.shape == shape:
            return v
        # only batch dims, which stay in front, may be symbols: 0 copies them
        target = [0 if isinstance(d, str) else d for d in shape]
        return rw.create(Reshape, [v, rw.weight(np.array(target, np.int64), f"{loc or 'einsum'}/shape", loc=loc)],
                         loc=loc).result
