"""Dims that are symbols, as values: what a Shape of a tensor with symbolic dims evaluates to.

The constant folder runs ops' numpy references on object arrays whose entries are `Sym`, so
torch's `x.view(x.size(0) * x.size(1), -1)` folds to the target [N*P, -1]: products and exact
quotients of dims stay symbolic; sums of different symbols are not dims sofie plans for and
raise TypeError, which leaves the value unknown at compile time.
"""

from __future__ import annotations

from dataclasses import dataclass

from sofie.ir.types import Dim, dim_factors, make_dim


@dataclass(frozen=True)
class Sym:
    coef: int
    syms: tuple[str, ...]

    @staticmethod
    def of(d: Dim) -> Sym | int:
        """A dim as a value: an int stays an int."""
        if isinstance(d, int):
            return d
        return Sym(*dim_factors(d))

    @property
    def dim(self) -> Dim:
        return make_dim(self.coef, self.syms)

    def _combine(self, other: object, op) -> Sym | int:
        o = other if isinstance(other, Sym) else Sym(int(other), ()) if _is_int(other) else None
        if o is None:
            return NotImplemented
        return _sym(*op(self, o))

    def __mul__(self, other: object) -> Sym | int:
        return self._combine(other, lambda a, b: (a.coef * b.coef, a.syms + b.syms))

    __rmul__ = __mul__

    def __floordiv__(self, other: object) -> Sym | int:
        return self._combine(other, _divide)

    __truediv__ = __floordiv__

    def __rfloordiv__(self, other: object) -> Sym | int:
        if not _is_int(other):
            return NotImplemented
        return _sym(*_divide(Sym(int(other), ()), self))

    __rtruediv__ = __rfloordiv__

    def __add__(self, other: object) -> Sym | int:
        if isinstance(other, Sym) and other.syms == self.syms:
            return _sym(self.coef + other.coef, self.syms)
        if _is_int(other) and int(other) == 0:
            return self
        raise TypeError(f"{self} + {other} is not a product of dims")

    __radd__ = __add__

    def __sub__(self, other: object) -> Sym | int:
        if isinstance(other, Sym) and other.syms == self.syms:
            return _sym(self.coef - other.coef, self.syms)
        if _is_int(other) and int(other) == 0:
            return self
        raise TypeError(f"{self} - {other} is not a product of dims")

    def __neg__(self):
        raise TypeError(f"-{self} is not a dim")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sym) and (self.coef, self.syms) == (other.coef, other.syms)

    def __hash__(self) -> int:
        return hash((self.coef, self.syms))

    def __lt__(self, other: object) -> bool:  # -1 < N in reshape checks: a dim is positive
        return False if not _is_int(other) else False

    def __gt__(self, other: object) -> bool:
        return _is_int(other) and int(other) < 1

    __ge__ = __gt__

    def __le__(self, other: object) -> bool:
        return False

    def __str__(self) -> str:
        return str(self.dim)

    __repr__ = __str__


def _is_int(x: object) -> bool:
    import numpy as np
    return isinstance(x, int | np.integer) and not isinstance(x, bool)


def _sym(coef: int, syms: tuple[str, ...]) -> Sym | int:
    syms = tuple(sorted(syms))
    return coef if not syms or coef == 0 else Sym(coef, syms)


def _divide(a: Sym, b: Sym) -> tuple[int, tuple[str, ...]]:
    left = list(a.syms)
    for s in b.syms:
        if s not in left:
            raise TypeError(f"{a.dim} / {b.dim} is not a product of dims")
        left.remove(s)
    if b.coef == 0 or a.coef % b.coef:
        raise TypeError(f"{a.dim} / {b.dim} is not a whole dim")
    return a.coef // b.coef, tuple(left)
