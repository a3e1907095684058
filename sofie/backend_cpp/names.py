"""C++ identifiers and size expressions for low values."""

from __future__ import annotations

import math
import re

from sofie.ir.core import Value
from sofie.ir.printer import unique_name
from sofie.ir.types import Dim

CPP_KEYWORDS = {"int", "float", "double", "char", "auto", "case", "class", "const", "default", "delete",
                "do", "else", "enum", "for", "if", "new", "return", "static", "struct", "switch",
                "this", "union", "while", "b", "mb", "W", "A", "std", "sofie"}


class Names:
    """C++ identifiers for low values: the tensor's name, made unique and legal."""

    def __init__(self) -> None:
        self._names: dict[int, str] = {}
        self._taken: set[str] = set(CPP_KEYWORDS)

    def define(self, v: Value, prefix: str = "t_") -> str:
        base = prefix + re.sub(r"[^A-Za-z0-9_]", "_", v.name or "v").strip("_")
        name = unique_name(re.sub(r"_+", "_", base), self._taken)
        self._names[id(v)] = name
        return name

    def __getitem__(self, v: Value | None) -> str:
        return "nullptr" if v is None else self._names[id(v)]


def dim_expr(d: Dim) -> str:
    """A dim in C++: the batch symbol is the chunk size `b`."""
    return "b" if isinstance(d, str) else str(d)


def size_expr(dims: tuple[Dim, ...] | list[Dim]) -> str:
    n = math.prod(d for d in dims if isinstance(d, int))
    syms = [d for d in dims if isinstance(d, str)]
    if not syms:
        return str(n)
    return "b" if n == 1 else f"b * {n}"
