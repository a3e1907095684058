"""Run-time dims: dim symbols whose value is computed inside `infer` from tensor data (a
ReduceSum's axes, a Reshape's target shape, TopK's k given as inputs), each with an upper
bound that is a dim of the interface (an int, or an expression in the interface's symbols).

A function records them in `attrs["run_time_dims"]` as [name, bound] pairs (`R0`, `R1`, ...),
which the IR text prints and parses like any attribute. Shape rules create them through
`run_time_dim`; the memory plan sizes every tensor at the bounds (`at_bounds`), so the arena
stays a function of the interface's maxima; lowering binds each one (`low.bind_dims`) before
the first kernel that reads it.
"""

from __future__ import annotations

from sofie.errors import SofieError
from sofie.ir.core import Function, Operation
from sofie.ir.types import Dim, TensorType, dim_factors, dims_product, make_dim

ATTR = "run_time_dims"
PREFIX = "R"


def table(f: Function | None) -> dict[str, Dim]:
    """The run-time dims of `f` and their bounds."""
    if f is None:
        return {}
    return {str(name): bound for name, bound in f.attrs.get(ATTR, [])}


def run_time_dim(op: Operation, result: int, axis: int, bound: Dim) -> Dim:
    """The run-time dim for axis `axis` of result `result` of `op`, bounded by `bound`: the one
    that position already holds when the shape rule runs again (the name is stable), else a
    fresh `R<k>` recorded on the op's function."""
    f = op.parent
    if f is None:
        raise SofieError(f"{op.describe()}: a run-time dim needs the op to be in a function")
    known = table(f)
    if result < len(op.results):
        shape = op.results[result].type.shape
        prior = shape[axis] if axis < len(shape) else None
        if isinstance(prior, str) and prior in known and known[prior] == bound:
            return prior
    k = 0
    while f"{PREFIX}{k}" in known:
        k += 1
    name = f"{PREFIX}{k}"
    f.attrs[ATTR] = [*f.attrs.get(ATTR, []), [name, bound]]
    return name


def bound_sizes(bounds: dict[str, Dim], sizes: dict[str, int]) -> dict[str, int]:
    """Each run-time dim's bound for the interface's dims `sizes`, every symbol taken as at least
    1 (the value a reduced axis of a 0-sized dim has): what outputs are allocated at, and what
    the run checks each run-time dim against."""
    at_least_one = {s: max(int(v), 1) for s, v in sizes.items()}
    out = {}
    for name, b in bounds.items():
        coef, syms = dim_factors(b)
        for s in syms:
            coef *= at_least_one[s]
        out[name] = coef
    return out


def at_bounds(t: TensorType, bounds: dict[str, Dim]) -> TensorType:
    """`t` with every run-time dim replaced by its bound: the size memory is planned at."""
    if not bounds or not any(s in bounds for s in t.symbols):
        return t
    return t.with_shape(tuple(_dim_at_bounds(d, bounds) for d in t.shape))


def _dim_at_bounds(d: Dim, bounds: dict[str, Dim]) -> Dim:
    coef, syms = dim_factors(d)
    if not any(s in bounds for s in syms):
        return d
    parts: list[Dim] = [coef] + [bounds.get(s, s) for s in syms]
    c, rest = dims_product(parts)
    return make_dim(c, rest)


def has_run_time_dims(t: TensorType, bounds: dict[str, Dim]) -> bool:
    return any(s in bounds for s in t.symbols)
