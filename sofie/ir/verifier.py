"""Structural and declared checks on a module; a broken IR is an error naming op and rule."""

from __future__ import annotations

from sofie.errors import SofieError
from sofie.ir.core import Function, Module, Operation
from sofie.ir.plan_check import check_plan
from sofie.ir.registry import CONSTANT_LIKE, is_discardable


def verify(m: Module, stage: str = "") -> None:
    """Raises SofieError naming the first op that breaks a rule; a planned function's memory
    plan is checked too."""
    for f in m.functions.values():
        when = f" after {stage}" if stage else ""
        _verify_function(m, f, when)
        try:
            check_plan(f)
        except SofieError as e:
            raise SofieError(f"verifier{when}: {e}") from None


def _fail(op: Operation | None, rule: str, when: str) -> None:
    where = op.describe() if op is not None else "function"
    raise SofieError(f"verifier{when}: {where}: {rule}")


def _verify_function(m: Module, f: Function, when: str) -> None:
    defined = {id(a) for a in f.args}
    for op in f.ops:
        opdef = op.opdef
        if op.parent is not f:
            _fail(op, "op is not owned by its function", when)
        for i, v in enumerate(op.operands):
            if v is None:
                spec = opdef.operand_specs[min(i, len(opdef.operand_specs) - 1)]
                if not spec.optional:
                    _fail(op, f"operand {i} ('{spec.name}') is required", when)
            elif id(v) not in defined:
                _fail(op, f"operand {i} (%{v.name}) is used before it is defined", when)
            elif (op, i) not in v.uses:
                _fail(op, f"operand {i} (%{v.name}) is missing from its use list", when)
        if not opdef.arity_ok(len(op.operands)):
            _fail(op, f"has {len(op.operands)} operands, declaration is '{opdef.operands}'", when)
        for key in op.attrs:
            if key not in opdef.attrs and not is_discardable(key):
                _fail(op, f"undeclared attribute '{key}'", when)
        for key in opdef.attrs:
            if key not in op.attrs:
                try:
                    op.attr(key)
                except SofieError:
                    _fail(op, f"required attribute '{key}' is missing", when)
        if op.has_trait(CONSTANT_LIKE) and op.attrs.get("ref") not in m.weights:
            _fail(op, f"refers to unknown weight @{op.attrs.get('ref')}", when)
        try:
            expected = opdef.infer(op)
        except NotImplementedError:
            expected = None
        except SofieError as e:
            _fail(op, f"shape rule fails: {e}", when)
        if expected is not None and [r.type for r in op.results] != expected:
            got = ", ".join(str(r.type) for r in op.results)
            _fail(op, f"result types {got} differ from the shape rule's {', '.join(map(str, expected))}",
                  when)
        try:
            opdef.verify(op)
        except SofieError as e:
            raise SofieError(f"verifier{when}: {e}") from None
        defined.update(id(r) for r in op.results)
    for v in f.outputs:
        if id(v) not in defined:
            _fail(None, f"returns %{v.name}, which is not defined", when)
    declared = f.declared_output_types()
    got = [v.type for v in f.outputs]
    if got != declared:
        _fail(None, f"func @{f.name} returns ({', '.join(map(str, got))}) but its signature declares "
                    f"({', '.join(map(str, declared))})", when)
