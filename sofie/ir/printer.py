"""The text form of every IR level. `parse(print_module(m))` prints back identically.

Weights are declared in the module body with their type; small ones carry their values
inline (`dense<[...]>`), the others say `dense_resource` and their bytes follow the module's
closing brace in a resource section, as MLIR's `{-# dialect_resources: ... #-}` does:

    module @m {
      weight "fc.weight" : tensor<200x200xf32> = dense_resource
      ...
    }

    {-#
      resources: {
        "fc.weight": "<base64, see sofie.ir.weight_text>"
      }
    #-}

Elided weights (`elided`, for reading) have no data; the text still parses, compiling fails.
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np

from sofie.ir.core import Function, Module, Operation, Value, Weight
from sofie.ir.weight_text import encode_blob, inline_items

INLINE_LIMIT = 16  # weights up to this many elements are printed inline, larger ones as resources

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*$")


def print_module(m: Module, inline_limit: int = INLINE_LIMIT, elide: bool = False) -> str:
    """The module's text: lossless unless `elide`, which prints large weights as `elided`."""
    lines = [f"module @{m.name}{_attr_dict(m.attrs, [])} {{"]
    blobs: list[Weight] = []
    for w in m.weights.values():
        value = _weight_value(w, inline_limit, elide)
        if value == "dense_resource":
            blobs.append(w)
        lines.append(f"  weight {_quote(w.name)} : {w.type} = {value}")
    for f in m.functions.values():
        lines.extend(_function(f))
    lines.append("}")
    if blobs:
        lines.extend(_resources(blobs))
    return "\n".join(lines) + "\n"


def _resources(weights: list[Weight]) -> list[str]:
    entries = [f"    {_quote(w.name)}: {_quote(encode_blob(w.data, w.type))}" for w in weights]
    return ["", "{-#", "  resources: {", ",\n".join(entries), "  }", "#-}"]


def _function(f: Function) -> list[str]:
    names = ValueNames()
    args = ", ".join(f"{names.define(a)}: {a.type}" for a in f.args)
    outs = ", ".join(str(t) for t in f.declared_output_types())
    attrs = f" attributes{_attr_dict(f.attrs, [])}" if f.attrs else ""
    lines = [f"  func @{f.name}({args}) -> ({outs}){attrs} {{"]
    for op in f.ops:
        lines.append("    " + print_op(op, names))
    lines.append("    return " + ", ".join(names.use(v) for v in f.outputs))
    lines.append("  }")
    return lines


def print_op(op: Operation, names: ValueNames) -> str:
    results = ", ".join(names.define(r) for r in op.results)
    operands = ", ".join("none" if v is None else names.use(v) for v in op.operands)
    text = (f"{results} = " if results else "") + op.name
    if operands:
        text += " " + operands
    text += _attr_dict(op.attrs, list(op.opdef.attrs))
    if op.results:
        text += " : " + ", ".join(str(r.type) for r in op.results)
    if op.loc:
        text += f" loc({_quote(op.loc)})"
    return text


class ValueNames:
    """Readable unique SSA names: the source tensor name when there is one, else a number."""

    def __init__(self) -> None:
        self._names: dict[int, str] = {}
        self._taken: set[str] = set()
        self._next = 0

    def define(self, v: Value) -> str:
        base = sanitize(v.name) if v.name else None
        if base is None:
            while str(self._next) in self._taken:
                self._next += 1
            base = str(self._next)
        name = unique_name(base, self._taken)
        self._names[id(v)] = name
        return "%" + name

    def use(self, v: Value) -> str:
        if id(v) not in self._names:
            raise ValueError(f"value {v!r} used before its definition")
        return "%" + self._names[id(v)]


def unique_name(base: str, taken: set[str]) -> str:
    """`base`, or `base_1`, `base_2`, ... whichever is free; marks it taken."""
    name, k = base, 1
    while name in taken:
        name = f"{base}_{k}"
        k += 1
    taken.add(name)
    return name


def sanitize(name: str) -> str:
    """A name spelled with [A-Za-z0-9_.] only, as SSA names and C++ identifiers need."""
    s = re.sub(r"[^A-Za-z0-9_.]", "_", name).strip("_.") or "t"
    return re.sub(r"_+", "_", s)


def _quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _attr_dict(attrs: dict[str, Any], order: list[str]) -> str:
    if not attrs:
        return ""
    keys = [k for k in order if k in attrs] + sorted(k for k in attrs if k not in order)
    return " {" + ", ".join(f"{k} = {format_attr(attrs[k])}" for k in keys) + "}"


def format_attr(v: Any) -> str:
    if isinstance(v, bool):
        return str(int(v))
    if isinstance(v, int | np.integer):
        return str(int(v))
    if isinstance(v, float | np.floating):
        return format_float(float(v))
    if isinstance(v, str):
        return _quote(v)
    if isinstance(v, list | tuple):
        return "[" + ", ".join(format_attr(x) for x in v) + "]"
    raise TypeError(f"cannot print attribute value {v!r}")


def format_float(x: float) -> str:
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    s = repr(x)
    return s if any(c in s for c in ".en") else s + ".0"


def _weight_value(w: Weight, inline_limit: int, elide: bool) -> str:
    if w.data is None:
        return "elided"
    if w.data.size <= inline_limit:
        items = inline_items(w.data, w.type)
        if items is not None:
            return "dense<[" + ", ".join(items) + "]>"
    return "elided" if elide else "dense_resource"
