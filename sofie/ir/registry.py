"""The dialect registry: each op is declared once, and the parser, printer, verifier,
ONNX importer, folder and lowering all read that declaration.

A declaration is a subclass of `OpDef` decorated with `@register`:

    @register
    class Gemm(OpDef):
        name = "graph.gemm"; onnx = "Gemm"
        operands = "A B C?"
        attrs = {"alpha": Attr("float", 1.0), "transB": Attr("int", 0)}
        def shape(self, op, A, B, C): ...          # operand types -> result type(s)
        def reference(self, op, A, B, C): ...      # numpy semantics
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from sofie.errors import SofieError
from sofie.ir.core import Operation
from sofie.ir.types import TensorType

REQUIRED = object()  # marks an attribute without default

_KINDS = {
    "int": int, "float": float, "str": str,
    "ints": list, "floats": list, "strs": list, "intss": list,
}


@dataclass(frozen=True)
class Attr:
    kind: str
    default: Any = REQUIRED

    def coerce(self, value: Any, where: str, key: str) -> Any:
        """Brings a parsed or imported value to the declared kind, or says what is wrong."""
        try:
            if self.kind == "int":
                if isinstance(value, float) and not value.is_integer():
                    raise ValueError
                return int(value)
            if self.kind == "float":
                return float(value)
            if self.kind == "str":
                return value.decode() if isinstance(value, bytes) else str(value)
            if not isinstance(value, list | tuple | np.ndarray):
                raise ValueError
            if self.kind == "ints":
                return [int(v) for v in value]
            if self.kind == "intss":
                return [Attr("ints").coerce(v, where, key) for v in value]
            if self.kind == "floats":
                return [float(v) for v in value]
            return [v.decode() if isinstance(v, bytes) else str(v) for v in value]
        except (ValueError, TypeError):
            raise SofieError(f"{where}: attribute '{key}' must be {self.kind}, got {value!r}") from None


@dataclass(frozen=True)
class OperandSpec:
    """One declared operand. `name?` is optional, `name*` variadic (last only); the suffix
    `:const` marks an operand read at compile time only (a Reshape's target shape), `:out` one
    that a destination-passing kernel writes."""

    name: str
    optional: bool = False
    variadic: bool = False
    compile_time: bool = False
    output: bool = False


def _parse_operands(spec: str) -> tuple[OperandSpec, ...]:
    out = []
    for tok in spec.split():
        tok, _, role = tok.partition(":")
        if role not in ("", "const", "out"):
            raise ValueError(f"operand spec '{tok}:{role}': the role is 'const' or 'out'")
        kind = tok[-1] if tok[-1] in "*?" else ""
        out.append(OperandSpec(tok.rstrip("*?"), optional=kind == "?", variadic=kind == "*",
                               compile_time=role == "const", output=role == "out"))
    return tuple(out)


# Traits: what passes may assume about an op, declared with it instead of probed.
PURE = "pure"                    # no effect beyond its results: CSE may merge it, DCE may drop it
VIEW = "view"                    # the result aliases operand 0's storage (reshape, flatten, ...)
INPLACE = "inplace"              # the result (or written operand) may reuse operand 0's buffer
COMMUTATIVE = "commutative"      # operands 0 and 1 may be swapped
CONSTANT_LIKE = "constant_like"  # the result is a compile-time constant (a weight)
SYMBOLIC = "symbolic"            # the reference also runs on dims that are symbols (shape arithmetic)
TRAITS = (PURE, VIEW, INPLACE, COMMUTATIVE, CONSTANT_LIKE, SYMBOLIC)


class OpDef:
    """Base of all op declarations. Class attributes declare; methods give semantics."""

    name: str = ""
    onnx: str | None = None          # ONNX op_type this op imports from
    domain: str = ""                 # its ONNX domain ("" is ai.onnx; custom ops name their own)
    operands: str = ""               # "A B C?" ; a trailing '*' makes the last one variadic
    attrs: dict[str, Attr] = {}
    results: int = 1                 # -1: as many as the op says (attribute-driven)
    traits: frozenset[str] = frozenset({PURE})
    doc: str = ""

    def __init__(self) -> None:
        self.operand_specs = _parse_operands(self.operands)
        unknown = set(self.traits) - set(TRAITS)
        if unknown:
            raise ValueError(f"{self.name}: unknown traits {sorted(unknown)} (known: {', '.join(TRAITS)})")
        clash = {s.name for s in self.operand_specs} & (set(self.attrs) | _OPERATION_FIELDS)
        if clash:
            raise ValueError(f"{self.name}: operand names {sorted(clash)} clash with an attribute "
                             f"or an Operation field; the named accessors need distinct names")
        self.operand_names = {s.name: i for i, s in enumerate(self.operand_specs)}
        self.compile_time_operands = frozenset(i for i, s in enumerate(self.operand_specs) if s.compile_time)

    def has_trait(self, trait: str) -> bool:
        return trait in self.traits

    # ---- declaration queries -------------------------------------------------------------
    def attr_default(self, key: str) -> Any:
        spec = self.attrs.get(key)
        if spec is None:
            raise KeyError(f"{self.name} declares no attribute '{key}'")
        if spec.default is REQUIRED:
            raise SofieError(f"{self.name}: required attribute '{key}' is missing")
        return spec.default

    def operand_index(self, key: str) -> int:
        if key not in self.operand_names:
            raise KeyError(f"{self.name} declares no operand '{key}'")
        return self.operand_names[key]

    def is_compile_time(self, i: int) -> bool:
        """Whether operand i is read at compile time only (never by a kernel)."""
        return i in self.compile_time_operands

    def output_indices(self, n: int) -> list[int]:
        """Indices of the operands a destination-passing op writes, for n operands."""
        specs = self.operand_specs
        if specs and specs[-1].variadic and specs[-1].output:
            return [n - 1]  # a variadic list of inputs whose last entry is the output
        return [i for i, s in enumerate(specs[:n]) if s.output]

    def normalize_attrs(self, attrs: dict[str, Any], where: str) -> dict[str, Any]:
        """Coerces declared attributes and drops those equal to their default."""
        out: dict[str, Any] = {}
        for key, value in attrs.items():
            spec = self.attrs.get(key)
            if spec is None:
                if is_discardable(key):
                    out[key] = value
                    continue
                raise SofieError(f"{where}: unknown attribute '{key}' for {self.name} "
                                 f"(declared: {', '.join(self.attrs) or 'none'})")
            value = spec.coerce(value, where, key)
            if spec.default is REQUIRED or value != spec.default:
                out[key] = value
        return out

    def arity_ok(self, n: int) -> bool:
        specs = self.operand_specs
        if specs and specs[-1].variadic:
            return n >= len(specs) - 1
        required = sum(1 for s in specs if not s.optional)
        return required <= n <= len(specs)

    # ---- semantics, overridden per op ----------------------------------------------------
    def shape(self, op: Operation, *types: TensorType | None) -> TensorType | list[TensorType]:
        raise NotImplementedError(f"{self.name} has no shape rule")

    def reference(self, op: Operation, *arrays: np.ndarray | None) -> np.ndarray | list[np.ndarray]:
        raise NotImplementedError(f"{self.name} has no numpy reference")

    def verify(self, op: Operation) -> None:
        """Checks beyond arity, attributes and the shape rule. Raise SofieError."""

    def symbolic_reference(self, op: Operation) -> np.ndarray | None:
        """The result computed from operand *types* alone (Shape of a tensor with symbolic dims),
        as a numpy object array whose entries may be symbols; None when not applicable."""
        return None

    # ---- driven by the declaration --------------------------------------------------------
    def infer(self, op: Operation) -> list[TensorType]:
        types = [v.type if v is not None else None for v in op.operands]
        if self.operand_specs and self.operand_specs[-1].variadic:
            r = self.shape(op, *types)
        else:
            types += [None] * (len(self.operand_specs) - len(types))
            r = self.shape(op, *types)
        return list(r) if isinstance(r, list | tuple) else [r]

    def evaluate(self, op: Operation, arrays: list[np.ndarray | None]) -> list[np.ndarray]:
        if not (self.operand_specs and self.operand_specs[-1].variadic):
            arrays = arrays + [None] * (len(self.operand_specs) - len(arrays))
        r = self.reference(op, *arrays)
        return list(r) if isinstance(r, list | tuple) else [r]

    @property
    def has_reference(self) -> bool:
        return type(self).reference is not OpDef.reference


def is_discardable(key: str) -> bool:
    """Attributes owned by no declaration. There are none: passes keep their state outside
    the IR, so every attribute an op carries is declared, printed and part of CSE's key."""
    return False


_OPERATION_FIELDS = set(dir(Operation)) | {"name", "operands", "attrs", "loc", "parent", "results"}

_REGISTRY: dict[str, OpDef] = {}
_BY_ONNX: dict[tuple[str, str], OpDef] = {}  # (domain, op_type); "" is the default domain


def register(cls: type[OpDef]) -> type[OpDef]:
    """Class decorator: declares an op."""
    inst = cls()
    if not inst.name or "." not in inst.name:
        raise ValueError(f"{cls.__name__}: an op name is dialect-qualified, got {inst.name!r}")
    if inst.name in _REGISTRY:
        raise ValueError(f"op {inst.name} declared twice")
    _REGISTRY[inst.name] = inst
    if inst.onnx:
        _BY_ONNX[(inst.domain, inst.onnx)] = inst
    return cls


def unregister(name: str) -> None:
    """Drops a declaration (a custom op declared again with another body)."""
    inst = _REGISTRY.pop(name, None)
    if inst is not None and inst.onnx:
        _BY_ONNX.pop((inst.domain, inst.onnx), None)


def lookup(name: str | type[OpDef]) -> OpDef:
    """The declaration of an op, by name or by its declaration class."""
    if isinstance(name, type):
        name = name.name
    _load_dialects()
    if name not in _REGISTRY:
        raise SofieError(f"unknown op '{name}'")
    return _REGISTRY[name]


def lookup_onnx(op_type: str, domain: str = "") -> OpDef | None:
    _load_dialects()
    return _BY_ONNX.get(("" if domain == "ai.onnx" else domain, op_type))


def onnx_op_types(domain: str = "") -> list[str]:
    _load_dialects()
    return sorted(t for d, t in _BY_ONNX if d == domain)


def onnx_domains() -> list[str]:
    """The custom domains that have ops declared (the default domain is not listed)."""
    _load_dialects()
    return sorted({d for d, _ in _BY_ONNX if d})


def all_ops() -> dict[str, OpDef]:
    _load_dialects()
    return dict(_REGISTRY)


_loaded = False


def _load_dialects() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        import sofie.ir.dialects  # noqa: F401  (declarations register themselves)
