"""Einsum. The equation is parsed once here into one label list per operand and one for the
result; an ellipsis stands for numbered labels ("...0", "...1", ...) aligned from the right,
which broadcast like numpy batch dims. Lowering runs any equation as one `low.generic` loop
nest (a loop per label); canonicalization first turns two-operand contractions into
Transpose/Reshape + MatMul so they run as GEMMs."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from sofie.errors import SofieError
from sofie.ir.core import Operation
from sofie.ir.registry import Attr, OpDef, register
from sofie.ir.types import NUMERIC, Dim, TensorType, fmt_shape


@dataclass(frozen=True)
class Equation:
    inputs: tuple[tuple[str, ...], ...]
    output: tuple[str, ...]
    sizes: dict[str, Dim]  # each label's extent (the largest where an ellipsis dim broadcasts)

    def summed(self) -> list[str]:
        """Labels summed over (in no output), in first-seen order."""
        seen = [lab for labs in self.inputs for lab in labs]
        return [lab for i, lab in enumerate(seen) if lab not in self.output and lab not in seen[:i]]


def _labels(term: str, rank: int, ell: int, where: str) -> list[str]:
    if term.count("...") > 1 or not re.fullmatch(r"[A-Za-z]*(\.\.\.)?[A-Za-z]*", term):
        raise SofieError(f"{where}: bad einsum term '{term}' (letters and at most one '...')")
    head, dots, tail = term.partition("...")
    n = rank - len(head) - len(tail) if dots else 0
    if n < 0 or (not dots and len(term) != rank):
        raise SofieError(f"{where}: einsum term '{term}' does not match an operand of rank {rank}")
    return list(head) + [f"...{ell - n + k}" for k in range(n)] + list(tail)


def parse(op: Operation, shapes: list[tuple[Dim, ...]]) -> Equation:
    where = op.describe()
    eq = op.attr("equation").replace(" ", "")
    lhs, arrow, rhs = eq.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(shapes):
        raise SofieError(f"{where}: equation '{eq}' has {len(terms)} operands, the node {len(shapes)}")
    # ellipsis dims count from the right: the widest operand's ellipsis names them all
    ell = max((len(s) - len(t.replace("...", "")) for t, s in zip(terms, shapes) if "..." in t), default=0)
    inputs = [_labels(t, len(s), ell, where) for t, s in zip(terms, shapes)]
    sizes: dict[str, Dim] = {}
    for labs, shape in zip(inputs, shapes):
        for lab, d in zip(labs, shape):
            old = sizes.get(lab)
            if old is None or old == 1 and lab.startswith("..."):
                sizes[lab] = d
            elif d != old and not (d == 1 and lab.startswith("...")):
                raise SofieError(f"{where}: label '{lab}' is {old} in one place and {d} in another "
                                 f"(operand shapes {', '.join(fmt_shape(s) for s in shapes)})")
    dots = [f"...{k}" for k in range(ell)]
    if arrow:
        output = _labels(rhs, len(rhs.replace("...", "")) + (ell if "..." in rhs else 0), ell, where)
    else:  # implicit: the ellipsis, then the labels used once, alphabetically
        flat = [lab for labs in inputs for lab in labs if not lab.startswith("...")]
        output = dots + sorted(lab for lab in set(flat) if flat.count(lab) == 1)
    missing = [lab for lab in output if lab not in sizes]
    if missing or len(set(output)) != len(output):
        raise SofieError(f"{where}: output labels {output} repeat or name no operand label")
    return Equation(tuple(map(tuple, inputs)), tuple(output), sizes)


def _numpy_equation(e: Equation) -> str:
    """The equation with numbered ellipsis labels spelled as letters numpy accepts."""
    names = sorted({lab for labs in e.inputs for lab in labs})
    free = iter(c for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz" if c not in names)
    spell = {lab: (next(free) if lab.startswith("...") else lab) for lab in names}
    return ",".join("".join(spell[lab] for lab in labs) for labs in e.inputs) + "->" + \
        "".join(spell[lab] for lab in e.output)


@register
class Einsum(OpDef):
    name = "graph.einsum"
    onnx = "Einsum"
    operands = "inputs*"
    attrs = {"equation": Attr("str")}

    def shape(self, op, *types: TensorType):
        dts = {t.dtype for t in types}
        if len(dts) != 1:
            raise SofieError(f"{op.describe()}: operand element types differ: {sorted(dts)}")
        e = parse(op, [t.shape for t in types])
        dt = next(iter(dts))
        # a product or a sum computes: f16 / bf16 (storage only) and bool have no kernel for
        # it; one operand with nothing summed (a transpose, a diagonal) only moves elements
        if dt not in NUMERIC and (len(types) > 1 or e.summed()):
            raise SofieError(f"{op.describe()}: Einsum is not defined on element type {dt} "
                             f"(supported: {', '.join(NUMERIC)}; any type for a transpose or diagonal)")
        return TensorType(dts.pop(), tuple(e.sizes[lab] for lab in e.output))

    def reference(self, op, *arrays: np.ndarray):
        e = parse(op, [a.shape for a in arrays])
        return np.asarray(np.einsum(_numpy_equation(e), *arrays)).astype(arrays[0].dtype)
