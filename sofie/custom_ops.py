"""Custom operators: ops sofie does not know, declared by the user in Python with their C++.

    swish = sofie.CustomOp(
        domain="my.ops", op_type="Swish", inputs=["X"], outputs=["Y"], attrs={"beta": 1.0},
        reference=lambda X, beta: X / (1 + np.exp(-beta * X)),
        cpp="for (std::size_t i = 0; i < X.size(); ++i) Y[i] = X[i] / (1 + std::exp(-beta * X[i]));")
    sofie.register_custom_op(swish)   # or: sofie-compile m.onnx --custom-ops my_ops.py

Registering declares the op once, like a built-in one: a graph op (`custom.my_ops.swish`,
imported from ONNX nodes of that domain and op type, printed and parsed as IR text), the low
kernel it lowers to, and the C++ call the backend prints. Passes see an opaque pure op; the
memory plan places its outputs like any kernel's. The C++ is a function taking each input and
output as a `sofie::rt::View` (`data`, `shape`, `rank`, `size()`, `[i]`) and each attribute as a
value (`int` -> std::int64_t, `float` -> float, `str` -> const char*, lists ->
`sofie::rt::List`), in declaration order: `cpp=` gives its body (a template over the tensors'
element types), or `header=` a file defining `function` (copied into the output folder).
"""

from __future__ import annotations

import hashlib
import importlib.util
import keyword
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from sofie.backend_cpp.custom import ATTR_TYPES, CUSTOM_CODE, CustomCode, register_custom_code
from sofie.errors import SofieError
from sofie.ir.core import Operation
from sofie.ir.dialects.low import Kernel
from sofie.ir.registry import PURE, Attr, OpDef, lookup, register, unregister
from sofie.ir.types import TensorType
from sofie.lowering.context import RULES, LoweringContext

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class CustomOp:
    """A user-declared op. `attrs` maps each attribute to its default (an int, float, str or
    list of them; `sofie.Attr("ints")` for a required one). `shape(*input_types, **attrs)`
    returns the output `sofie.TensorType(dtype, shape)`(s) (default: each output like the first
    input; dims may be symbols such as "N").
    `reference(*arrays, **attrs)` is the numpy semantics (constant folding, tests). `dtypes`:
    the element types its inputs may have (None: any). `per_event`: each event's outputs
    depend on that event's inputs only, so a large batch may run in chunks."""

    domain: str
    op_type: str
    inputs: Sequence[str]
    outputs: Sequence[str] = ("Y",)
    attrs: Mapping[str, Any] = field(default_factory=dict)
    shape: Callable[..., TensorType | Sequence[TensorType]] | None = None
    reference: Callable[..., Any] | None = None
    cpp: str = ""
    header: str = ""
    function: str = ""
    dtypes: Sequence[str] | None = ("f32",)
    per_event: bool = True

    @property
    def graph_name(self) -> str:
        return f"custom.{_ident(self.domain)}.{_ident(self.op_type)}".lower()

    @property
    def low_name(self) -> str:
        return "low." + self.graph_name

    def fingerprint(self) -> str:
        """What a build depends on: the declaration and its C++ (a header's current bytes)."""
        h = hashlib.sha256(repr((self.domain, self.op_type, tuple(self.inputs), tuple(self.outputs),
                                 sorted((k, repr(v)) for k, v in self.attrs.items()), self.cpp,
                                 self.function, self.dtypes, self.per_event)).encode())
        if self.header:
            with open(self.header, "rb") as f:
                h.update(f.read())
        return h.hexdigest()


_DECLARED: dict[str, CustomOp] = {}  # graph op name -> declaration


def register_custom_op(op: CustomOp) -> CustomOp:
    """Declares `op` to every layer. Declaring the same op again is a no-op; declaring another
    op under the same domain and type replaces it (a notebook cell run twice)."""
    _check(op)
    attrs = _attrs(op)
    old = _DECLARED.get(op.graph_name)
    if old is not None and old.fingerprint() == op.fingerprint():
        return op
    if old is None:
        try:
            lookup(op.graph_name)
        except SofieError:
            pass
        else:
            raise SofieError(f"custom op {op.domain}.{op.op_type}: the op name {op.graph_name} is taken")
    unregister(op.graph_name)
    unregister(op.low_name)
    register(_graph_opdef(op, attrs))
    register(_low_opdef(op, attrs))
    RULES[op.graph_name] = _lower
    register_custom_code(op.low_name, _code(op, attrs))
    _DECLARED[op.graph_name] = op
    return op


def custom_ops_fingerprint() -> str:
    """A hash of every declared custom op, for caches keyed by what a build depends on."""
    return hashlib.sha256("|".join(op.fingerprint() for _, op in sorted(_DECLARED.items())).encode()).hexdigest()


def load_custom_ops(path: str) -> list[CustomOp]:
    """Runs a Python file and declares every CustomOp it defines at module level (and those it
    registers itself)."""
    if not os.path.isfile(path):
        raise SofieError(f"{path}: no such custom-ops file")
    spec = importlib.util.spec_from_file_location(f"sofie_custom_ops_{abs(hash(os.path.abspath(path)))}", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except SofieError:
        raise
    except Exception as e:
        raise SofieError(f"{path}: the custom-ops file failed to run ({type(e).__name__}: {e})") from None
    found = [v for v in vars(module).values() if isinstance(v, CustomOp)]
    if not found and not _DECLARED:
        raise SofieError(f"{path}: declares no sofie.CustomOp")
    base = os.path.dirname(os.path.abspath(path))
    return [register_custom_op(_relative_to(op, base)) for op in found]


# ---- checks ------------------------------------------------------------------------------

def _ident(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", text)


def _check(op: CustomOp) -> None:
    where = f"custom op {op.domain}.{op.op_type}"
    if not op.domain or op.domain in ("ai.onnx", "ai.onnx.ml"):
        raise SofieError(f"{where}: a custom op needs a domain of its own, not '{op.domain}'")
    names = [*op.inputs, *op.outputs, *op.attrs]
    for n in names:
        if not _IDENT.fullmatch(n) or keyword.iskeyword(n) or n.startswith("T_"):
            raise SofieError(f"{where}: '{n}' is not usable as a C++ parameter name")
    if len(set(names)) != len(names):
        raise SofieError(f"{where}: inputs, outputs and attributes need distinct names, got {names}")
    if not op.inputs or not op.outputs:
        raise SofieError(f"{where}: declare at least one input and one output")
    if bool(op.cpp) == bool(op.header):
        raise SofieError(f"{where}: give its C++ as exactly one of cpp= (a function body) or header= (a file)")
    if op.header and not (op.function and _IDENT.fullmatch(op.function)):
        raise SofieError(f"{where}: header= needs function= (the C++ function the header defines)")
    if op.header and not os.path.isfile(op.header):
        raise SofieError(f"{where}: header '{op.header}' does not exist")


def _attrs(op: CustomOp) -> dict[str, Attr]:
    """The declared attributes, each with its kind (from its default) and default."""
    where = f"custom op {op.domain}.{op.op_type}"
    return {k: _attr(where, k, v) for k, v in op.attrs.items()}


def _attr(where: str, key: str, value: Any) -> Attr:
    if isinstance(value, Attr):
        kind = value.kind
    elif isinstance(value, bool | int | np.integer):
        kind = "int"
    elif isinstance(value, float | np.floating):
        kind = "float"
    elif isinstance(value, str):
        kind = "str"
    elif isinstance(value, list | tuple) and all(isinstance(x, int | np.integer) for x in value):
        kind = "ints"
    elif isinstance(value, list | tuple) and all(isinstance(x, int | float) for x in value):
        kind = "floats"
    else:
        raise SofieError(f"{where}: attribute '{key}': default {value!r} is not an int, float, str or a list of them")
    if kind not in ATTR_TYPES:
        raise SofieError(f"{where}: attribute '{key}' of kind {kind}: custom ops take {', '.join(ATTR_TYPES)}")
    if isinstance(value, Attr):
        return value
    return Attr(kind, list(value) if isinstance(value, list | tuple) else value)


def _relative_to(op: CustomOp, base: str) -> CustomOp:
    """A header named relative to the custom-ops file that declares it."""
    if op.header and not os.path.isabs(op.header) and not os.path.isfile(op.header):
        return replace(op, header=os.path.join(base, op.header))
    return op


# ---- the declarations built from a CustomOp ------------------------------------------------

def _attr_values(op: Operation, decl: CustomOp) -> dict[str, Any]:
    return {k: op.attr(k) for k in decl.attrs}


def _graph_opdef(decl: CustomOp, attrs: dict[str, Attr]) -> type[OpDef]:
    where = f"custom op {decl.domain}.{decl.op_type}"

    def shape(self: OpDef, op: Operation, *types: TensorType | None) -> Any:
        if decl.dtypes is not None:
            for name, t in zip(decl.inputs, types):
                if t is not None and t.dtype not in decl.dtypes:
                    raise SofieError(f"{op.describe()}: input '{name}' is {t.dtype}; {where} takes "
                                     f"{', '.join(decl.dtypes)}")
        if decl.shape is None:
            return [types[0]] * len(decl.outputs)
        out = decl.shape(*types, **_attr_values(op, decl))
        out = list(out) if isinstance(out, list | tuple) else [out]
        if len(out) != len(decl.outputs) or not all(isinstance(t, TensorType) for t in out):
            raise SofieError(f"{op.describe()}: the shape rule of {where} must return {len(decl.outputs)} "
                             f"TensorType(s), got {out!r}")
        return out

    def reference(self: OpDef, op: Operation, *arrays: np.ndarray | None) -> Any:
        if decl.reference is None:
            raise NotImplementedError(f"{where} has no numpy reference")
        return decl.reference(*arrays, **_attr_values(op, decl))

    body: dict[str, Any] = {"name": decl.graph_name, "onnx": decl.op_type, "domain": decl.domain,
                            "operands": " ".join(decl.inputs), "attrs": attrs, "results": len(decl.outputs),
                            "traits": frozenset({PURE}), "doc": f"custom op {decl.domain}.{decl.op_type}",
                            "shape": shape}
    if decl.reference is not None:
        body["reference"] = reference
    return type(f"Custom_{_ident(decl.domain)}_{_ident(decl.op_type)}", (OpDef,), body)


def _low_opdef(decl: CustomOp, attrs: dict[str, Attr]) -> type[OpDef]:
    def couples_events(self: Kernel, op: Operation, batch: str) -> bool:
        return not decl.per_event

    operands = " ".join([*decl.inputs, *(f"{o}:out" for o in decl.outputs)])
    return type(f"LowCustom_{_ident(decl.domain)}_{_ident(decl.op_type)}", (Kernel,),
                {"name": decl.low_name, "operands": operands, "dtypes": None, "couples_events": couples_events,
                 "attrs": attrs,
                 "doc": f"calls the C++ of custom op {decl.domain}.{decl.op_type}"})


def _lower(ctx: LoweringContext, op: Operation) -> None:
    decl = _DECLARED[op.name]
    inputs = [ctx.value(v) for v in op.operands]
    if any(v is None for v in inputs):
        raise SofieError(f"{op.describe()}: custom ops take no omitted inputs")
    outs = [ctx.dest(op, i) for i in range(len(op.results))]
    ctx.create(decl.low_name, inputs + outs, dict(op.attrs), op)


def _code(decl: CustomOp, attrs: dict[str, Attr]) -> CustomCode:
    tensors = tuple((n, False) for n in decl.inputs) + tuple((n, True) for n in decl.outputs)
    kinds = tuple((k, a.kind) for k, a in attrs.items())
    function = decl.function or f"custom_{_ident(decl.domain)}_{_ident(decl.op_type)}"
    return CustomCode(function, tensors, kinds, body=decl.cpp, header=os.path.abspath(decl.header) if decl.header
                      else "")


__all__ = ["CustomOp", "register_custom_op", "load_custom_ops", "custom_ops_fingerprint", "CUSTOM_CODE"]
