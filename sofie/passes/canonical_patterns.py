"""Canonicalization patterns: drop no-op views, merge reshape and transpose chains, and bring
dense layers to Gemm form (MatMul + Add -> Gemm; Transpose feeding Gemm -> transA/transB)."""

from __future__ import annotations

import numpy as np

from sofie.errors import SofieError
from sofie.ir.core import Module, Operation, Value, is_constant
from sofie.ir.dialects.graph.elementwise import Add
from sofie.ir.dialects.graph.nn import Dropout, Gemm, MatMul
from sofie.ir.dialects.graph.shape import Flatten, Identity, Reshape, Squeeze, Transpose, Unsqueeze, reshape_dims
from sofie.ir.types import Dim
from sofie.passes.einsum import EinsumToMatMul
from sofie.passes.rewrite import Pattern, Rewriter, is_output, producer, sole_use

RESHAPE_LIKE = (Reshape, Flatten, Squeeze, Unsqueeze)


def can_forward(result: Value, source: Value) -> bool:
    """Whether uses of `result` may read `source` instead. A returned value must stay the
    result of an op of this function, distinct from the other outputs: the backend writes
    outputs into the caller's buffers."""
    if not is_output(result):
        return True
    return source.owner is not None and not is_constant(source) and not is_output(source)


def constant_target(op: Operation, src: tuple[Dim, ...], dst: tuple[Dim, ...]) -> np.ndarray | None:
    """A Reshape target taking `src` to `dst`: a symbol is 0 (copy) at the same axis, else -1."""
    target = []
    for i, d in enumerate(dst):
        if isinstance(d, int):
            target.append(d)
        else:
            target.append(0 if i < len(src) and src[i] == d else -1)
    if target.count(-1) > 1 or (0 in target and any(d == 0 for d in dst)):
        return None  # two unknowns, or a real 0-sized dim that 0 would misread as "copy"
    try:
        ok = reshape_dims(op, src, target, False) == tuple(dst)
    except SofieError:
        return None
    return np.array(target, np.int64) if ok else None


class DropIdentity(Pattern):
    """Identity, and Dropout at inference, forward their input."""

    root = (Identity, Dropout)

    def match(self, op: Operation, module: Module) -> bool:
        return can_forward(op.result, op.X)

    def rewrite(self, op: Operation, match: bool, rw: Rewriter) -> None:
        rw.replace(op, [op.X])


class MergeReshapes(Pattern):
    """A reshape-like op of a reshape-like op is one Reshape of the first input; a reshape that
    changes nothing goes away."""

    root = RESHAPE_LIKE

    def match(self, op: Operation, module: Module) -> tuple[Value, np.ndarray | None] | None:
        inner = producer(op.operands[0], RESHAPE_LIKE)
        source = (inner if inner is not None else op).operands[0]  # the data operand of each
        if source.type == op.result.type:
            return (source, None) if can_forward(op.result, source) else None
        if inner is None:
            return None
        target = constant_target(op, source.type.shape, op.result.type.shape)
        return None if target is None else (source, target)

    def rewrite(self, op: Operation, match: tuple[Value, np.ndarray | None], rw: Rewriter) -> None:
        source, target = match
        if target is None:
            rw.replace(op, [source])
            return
        shape = rw.weight(target, f"{op.loc or 'reshape'}/shape", loc=op.loc)
        rw.replace(op, rw.create(Reshape, [source, shape], loc=op.loc).results)


def _perm(op: Operation) -> list[int]:
    return op.opdef.perm(op, op.X.type.rank)


class MergeTransposes(Pattern):
    """Transpose(Transpose(x, p1), p2) = Transpose(x, p1[p2]); the identity permutation
    forwards x."""

    root = Transpose

    def match(self, op: Operation, module: Module) -> list[int] | None:
        inner = producer(op.X, Transpose)
        if inner is None:
            return None
        p1, p2 = _perm(inner), _perm(op)
        perm = [p1[i] for i in p2]
        if perm == sorted(perm) and not can_forward(op.result, inner.X):
            return None
        return perm

    def rewrite(self, op: Operation, perm: list[int], rw: Rewriter) -> None:
        x = op.X.owner.X
        if perm == sorted(perm):
            rw.replace(op, [x])
        else:
            rw.replace(op, rw.create(Transpose, [x], {"perm": perm}, loc=op.loc).results)


class MatMulAddToGemm(Pattern):
    """Add(MatMul(x, W), bias) with a 2-D x and W and a row (or full) bias is one Gemm."""

    root = Add

    def match(self, op: Operation, module: Module) -> tuple[Operation, Value] | None:
        for mm_value, bias in ((op.A, op.B), (op.B, op.A)):
            mm = producer(mm_value, MatMul)
            if mm is None or not sole_use(mm_value) or mm.activation:
                continue
            if mm.A.type.rank != 2 or mm.B.type.rank != 2 or op.result.type != mm_value.type:
                continue
            m, n = mm_value.type.shape
            if bias.type.shape in ((n,), (1, n), (m, n)):
                return mm, bias
        return None

    def rewrite(self, op: Operation, match: tuple[Operation, Value], rw: Rewriter) -> None:
        mm, bias = match
        gemm = rw.create(Gemm, [mm.A, mm.B, bias], loc=mm.loc)
        rw.replace(op, gemm.results)


def _is_2d_transpose(v: Value) -> Operation | None:
    t = producer(v, Transpose)
    return t if t is not None and t.X.type.rank == 2 else None


class TransposeIntoGemm(Pattern):
    """Gemm(Transpose(a), b) reads a transposed instead: flip transA (same for B)."""

    root = Gemm

    def match(self, op: Operation, module: Module) -> bool:
        return _is_2d_transpose(op.A) is not None or _is_2d_transpose(op.B) is not None

    def rewrite(self, op: Operation, match: bool, rw: Rewriter) -> None:
        operands, attrs = {"A": op.A, "B": op.B}, dict(op.attrs)
        for name, flag in (("A", "transA"), ("B", "transB")):
            t = _is_2d_transpose(operands[name])
            if t is not None:
                operands[name] = t.X
                attrs[flag] = 1 - op.attr(flag)
        rw.replace(op, rw.create(Gemm, [operands["A"], operands["B"], op.C], attrs, loc=op.loc).results)


CANONICAL_PATTERNS: list[Pattern] = [DropIdentity(), MergeReshapes(), MergeTransposes(),
                                     MatMulAddToGemm(), TransposeIntoGemm(), EinsumToMatMul()]
