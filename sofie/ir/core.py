"""SSA IR: values, operations, functions and modules with named weight resources.

The structure is dialect-agnostic; what an op means (operands, attributes, shape rule,
verifier, reference) comes from its declaration in the registry (`sofie.ir.registry`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sofie.ir.types import TensorType


def is_constant(v: Value | None) -> bool:
    """Whether a constant-like op (a module weight) defines `v`."""
    return v is not None and v.owner is not None and v.owner.has_trait("constant_like")


class Value:
    """An SSA value: a function argument or an operation result."""

    __slots__ = ("type", "name", "owner", "index", "uses")

    def __init__(self, type: TensorType, name: str | None = None,
                 owner: Operation | None = None, index: int = 0) -> None:
        self.type = type
        self.name = name
        self.owner = owner
        self.index = index
        self.uses: list[tuple[Operation, int]] = []

    @property
    def users(self) -> list[Operation]:
        seen: dict[int, Operation] = {}
        for op, _ in self.uses:
            seen.setdefault(id(op), op)
        return list(seen.values())

    def replace_all_uses_with(self, other: Value) -> None:
        for op, i in list(self.uses):
            op.set_operand(i, other)
        func = self.owner.parent if self.owner else None
        if func is not None:
            func.outputs = [other if v is self else v for v in func.outputs]

    def __repr__(self) -> str:
        return f"%{self.name or '?'}: {self.type}"


class Operation:
    """One op: a dialect-qualified name, operands (None for an absent optional), results,
    attributes and a location (the source node name)."""

    def __init__(self, name: str, operands: Iterable[Value | None], result_types: Iterable[TensorType],
                 attrs: dict[str, Any] | None = None, loc: str = "",
                 result_names: Iterable[str | None] | None = None) -> None:
        self.name = name
        self.operands: list[Value | None] = []
        self.attrs: dict[str, Any] = dict(attrs or {})
        self.loc = loc
        self.parent: Function | None = None
        self.results: list[Value] = []
        for v in operands:
            self._add_operand(v)
        self.set_results(result_types, result_names)

    def set_results(self, types: Iterable[TensorType], names: Iterable[str | None] | None = None) -> None:
        types = list(types)
        names = (list(names) if names is not None else [])[:len(types)]
        names += [None] * (len(types) - len(names))  # results a node leaves unnamed are still results
        self.results = [Value(t, n, self, i) for i, (t, n) in enumerate(zip(types, names))]

    def _add_operand(self, v: Value | None) -> None:
        self.operands.append(v)
        if v is not None:
            v.uses.append((self, len(self.operands) - 1))

    def set_operand(self, i: int, v: Value | None) -> None:
        old = self.operands[i]
        if old is not None:
            old.uses.remove((self, i))
        self.operands[i] = v
        if v is not None:
            v.uses.append((self, i))

    def drop_operands(self) -> None:
        for i in range(len(self.operands)):
            self.set_operand(i, None)

    def padded_operands(self) -> list[Value | None]:
        """Operands with absent trailing optionals as None, as many as the declaration names."""
        n = len(self.opdef.operand_specs)
        return self.operands + [None] * (n - len(self.operands))

    @property
    def result(self) -> Value:
        assert len(self.results) == 1, f"{self.name} has {len(self.results)} results"
        return self.results[0]

    @property
    def dialect(self) -> str:
        return self.name.split(".", 1)[0]

    @property
    def opdef(self):  # -> OpDef; typed loosely to keep core free of the registry import
        from sofie.ir.registry import lookup
        return lookup(self.name)

    def attr(self, key: str) -> Any:
        """An attribute, or its declared default."""
        if key in self.attrs:
            return self.attrs[key]
        return self.opdef.attr_default(key)

    def operand(self, key: str) -> Value | None:
        """An operand by its declared name (None when an optional one is absent)."""
        i = self.opdef.operand_index(key)
        return self.operands[i] if i < len(self.operands) else None

    def set_named_operand(self, key: str, v: Value | None) -> None:
        i = self.opdef.operand_index(key)
        while len(self.operands) <= i:
            self._add_operand(None)
        self.set_operand(i, v)

    def __getattr__(self, key: str) -> Any:
        # Named accessors generated from the declaration: `conv.W` is the operand named W,
        # `conv.group` the attribute (or its default); a variadic operand is the list of the rest.
        if key.startswith("_"):
            raise AttributeError(key)
        opdef = self.opdef
        i = opdef.operand_names.get(key)
        if i is not None:
            if opdef.operand_specs[i].variadic:
                return list(self.operands[i:])
            return self.operands[i] if i < len(self.operands) else None
        if key in opdef.attrs:
            return self.attr(key)
        raise AttributeError(f"{self.name} has no operand or attribute '{key}'")

    def isa(self, *kinds: Any) -> bool:
        """Whether this op is one of `kinds` (declaration classes or op names)."""
        name = self.name  # a plain loop: this runs millions of times on a big graph
        for k in kinds:
            if name == (k if isinstance(k, str) else k.name):
                return True
        return False

    def has_trait(self, trait: str) -> bool:
        return self.opdef.has_trait(trait)

    def read_operands(self) -> list[Value | None]:
        """Operands a kernel reads (those it writes excluded)."""
        out = set(self.opdef.output_indices(len(self.operands)))
        return [v for i, v in enumerate(self.operands) if i not in out]

    def written_operands(self) -> list[Value]:
        """Operands a destination-passing op writes."""
        return [self.operands[i] for i in self.opdef.output_indices(len(self.operands))]

    def describe(self) -> str:
        """How errors name this op: its kind and the source node."""
        return f"{self.name}" + (f" (node '{self.loc}')" if self.loc else "")

    def __repr__(self) -> str:
        return f"<{self.describe()}>"


@dataclass
class Weight:
    """A named module resource. `data` is None when the text form elided it."""

    name: str
    type: TensorType
    data: np.ndarray | None = None


class Function:
    """A function body: arguments, ops in schedule order, outputs."""

    def __init__(self, name: str, args: list[Value], attrs: dict[str, Any] | None = None) -> None:
        self.name = name
        self.args = args
        self.ops: list[Operation] = []
        self.outputs: list[Value] = []
        # the declared signature: a rewrite that changes a returned value's type is caught by
        # the verifier instead of silently changing the model's interface
        self.output_types: list[TensorType] | None = None
        self.attrs: dict[str, Any] = dict(attrs or {})
        self.module: Module | None = None

    def set_outputs(self, values: Iterable[Value], types: Iterable[TensorType] | None = None) -> None:
        """Sets the returned values and declares the signature (their types unless given)."""
        self.outputs = list(values)
        self.output_types = list(types) if types is not None else [v.type for v in self.outputs]

    def declared_output_types(self) -> list[TensorType]:
        return self.output_types if self.output_types is not None else [v.type for v in self.outputs]

    def append(self, op: Operation) -> Operation:
        op.parent = self
        self.ops.append(op)
        return op

    def insert_before(self, anchor: Operation, op: Operation) -> Operation:
        op.parent = self
        self.ops.insert(self.ops.index(anchor), op)
        return op

    def erase(self, op: Operation) -> None:
        for r in op.results:
            if r.uses or r in self.outputs:
                raise AssertionError(f"erasing {op.describe()} whose result is still used")
        op.drop_operands()
        self.ops.remove(op)
        op.parent = None

    def walk(self) -> Iterator[Operation]:
        yield from list(self.ops)

    def values(self) -> Iterator[Value]:
        yield from self.args
        for op in self.ops:
            yield from op.results


class Module:
    """Functions plus named weights shared by them."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.functions: dict[str, Function] = {}
        self.weights: dict[str, Weight] = {}
        self.attrs: dict[str, Any] = {}

    def add_function(self, f: Function) -> Function:
        f.module = self
        self.functions[f.name] = f
        return f

    @property
    def main(self) -> Function:
        if "main" not in self.functions:
            from sofie.errors import SofieError
            raise SofieError(f"module @{self.name} has no func @main (functions: "
                             f"{', '.join('@' + n for n in self.functions) or 'none'})")
        return self.functions["main"]

    def add_weight(self, name: str, data: np.ndarray | None, type: TensorType | None = None) -> Weight:
        """Adds a weight under a unique name derived from `name`."""
        from sofie.ir.types import dtype_name
        base, k = name, 1
        while name in self.weights:
            name = f"{base}_{k}"
            k += 1
        if type is None:
            assert data is not None
            type = TensorType(dtype_name(data.dtype), tuple(int(d) for d in data.shape))
        w = Weight(name, type, data)
        self.weights[name] = w
        return w

    def weight_of(self, v: Value | None) -> Weight | None:
        """The weight a value is bound to, when a constant-like op (a weight) defines it."""
        if not is_constant(v):
            return None
        return self.weights[v.owner.attrs["ref"]]

    def constant_value(self, v: Value | None) -> np.ndarray | None:
        w = self.weight_of(v)
        return None if w is None else w.data


@dataclass
class Builder:
    """Creates ops through their declarations (result types from the shape rule)."""

    func: Function
    before: Operation | None = None
    created: list[Operation] = field(default_factory=list)

    def create(self, name: Any, operands: list[Value | None], attrs: dict[str, Any] | None = None,
               loc: str = "", result_types: list[TensorType] | None = None,
               result_names: list[str | None] | None = None) -> Operation:
        from sofie.ir.registry import lookup
        opdef = lookup(name)  # a declaration class or an op name
        name = opdef.name
        attrs = opdef.normalize_attrs(attrs or {}, where=name)
        operands = list(operands)
        while operands and operands[-1] is None:  # canonical form: absent trailing optionals are omitted
            operands.pop()
        op = Operation(name, operands, [], attrs, loc)
        op.parent = self.func
        try:
            op.set_results(result_types if result_types is not None else opdef.infer(op), result_names)
        except BaseException:
            op.drop_operands()
            raise
        if self.before is not None:
            self.func.insert_before(self.before, op)
        else:
            self.func.append(op)
        self.created.append(op)
        return op

    def weight(self, data: np.ndarray, name: str, loc: str = "") -> Value:
        module = self.func.module
        assert module is not None
        w = module.add_weight(name, data)
        return self.create("graph.weight", [], {"ref": w.name}, loc=loc,
                           result_types=[w.type], result_names=[w.name]).result
