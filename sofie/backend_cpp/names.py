"""C++ identifiers and size expressions for low values."""

from __future__ import annotations

import re

from sofie.ir.core import Value
from sofie.ir.printer import unique_name
from sofie.ir.types import Dim, dims_product

CPP_KEYWORDS = {"int", "float", "double", "char", "auto", "case", "class", "const", "default", "delete",
                "do", "else", "enum", "for", "if", "new", "return", "static", "struct", "switch",
                "this", "union", "while", "b", "mb", "W", "A", "std", "sofie", "acc", "shape", "perm"}
# loop indices and epilogue parameters the printers declare inside op blocks
CPP_KEYWORDS |= {f"i{k}" for k in range(16)} | {f"x{k}" for k in range(16)}


class Names:
    """C++ identifiers for low values (the tensor's name, made unique and legal), and the C++
    spelling of dims: the batch symbol is the chunk size `b`, any other symbol S the run's
    value `d_S`; their maxima (what offsets scale with) are `mb` and `m_S`."""

    def __init__(self, batch: str | None = None, dims: list[str] | tuple[str, ...] = ()) -> None:
        self._names: dict[int, str] = {}
        self._taken: set[str] = set(CPP_KEYWORDS) | {f"d_{s}" for s in dims} | {f"m_{s}" for s in dims}
        self.batch = batch
        self.dims = list(dims)

    def define(self, v: Value, prefix: str = "t_") -> str:
        base = prefix + re.sub(r"[^A-Za-z0-9_]", "_", v.name or "v").strip("_")
        name = unique_name(re.sub(r"_+", "_", base), self._taken)
        self._names[id(v)] = name
        return name

    def fresh(self, base: str) -> str:
        """A new local identifier from `base` (made legal and unique)."""
        return unique_name(re.sub(r"_+", "_", re.sub(r"[^A-Za-z0-9_]", "_", base)).strip("_"), self._taken)

    def __getitem__(self, v: Value | None) -> str:
        return "nullptr" if v is None else self._names[id(v)]

    def symbol(self, s: str) -> str:
        return "b" if s == self.batch else f"d_{s}"

    def maximum(self, s: str) -> str:
        return "mb" if s == self.batch else f"m_{s}"

    def dim(self, d: Dim) -> str:
        """A dim's value in the run body."""
        return self.size([d])

    def size(self, dims: tuple[Dim, ...] | list[Dim]) -> str:
        """The product of dims in the run body (an element count)."""
        coef, syms = dims_product(dims)
        factors = [self.symbol(s) for s in syms]
        if coef != 1 or not factors:
            factors.append(str(coef))
        return " * ".join(factors) if len(factors) == 1 else "(" + " * ".join(factors) + ")"
