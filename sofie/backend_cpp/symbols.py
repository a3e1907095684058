"""The dim symbols of a model's interface: which one is the batch, the others' default maxima,
and the memory plan's arena as a function of the maxima."""

from __future__ import annotations

from dataclasses import dataclass

from sofie.errors import SofieError
from sofie.ir.core import Function, Value
from sofie.ir.liveness import term_value
from sofie.ir.run_time_dims import table
from sofie.ir.types import dim_factors

DEFAULT_DIM_MAXIMUM = 64  # a dim symbol other than the batch, when the user gives no maximum
ARENA_TARGET_BYTES = 64 << 20


@dataclass
class Symbols:
    batch: str | None       # the symbol on axis 0 of the first input, when there is one
    dims: list[str]         # the others, sorted
    max_dims: list[int]     # their default maxima, in that order

    def values(self, max_batch: int) -> dict[str, int]:
        out = dict(zip(self.dims, self.max_dims))
        if self.batch is not None:
            out[self.batch] = max_batch
        return out


def model_symbols(f: Function, dims: dict[str, int] | None = None) -> Symbols:
    """The interface's symbols; `dims` gives maxima (e.g. {"P": 128}) for non-batch ones."""
    dims = dict(dims or {})
    interface = list(f.args) + list(f.outputs)
    run_time = table(f)  # computed in infer from data: not given by the caller
    every = sorted({s for v in interface for s in v.type.symbols if s not in run_time})
    batch = next((v.type.shape[0] for v in f.args if v.type.shape and isinstance(v.type.shape[0], str)
                  and len(dim_factors(v.type.shape[0])[1]) == 1 and dim_factors(v.type.shape[0])[0] == 1), None)
    others = [s for s in every if s != batch]
    unknown = sorted(set(dims) - set(others))
    if unknown:
        raise SofieError(f"--dim {', '.join(unknown)}: the model has no such dim symbol "
                         f"(its symbols: {', '.join(every) or 'none'}; the batch {batch or '-'} takes max_batch)")
    for s, n in dims.items():
        if int(n) < 1:
            raise SofieError(f"--dim {s}={n}: a maximum must be at least 1")
    return Symbols(batch, others, [int(dims.get(s, DEFAULT_DIM_MAXIMUM)) for s in others])


def per_event_axis0(v: Value, batch: str | None) -> bool:
    """Whether `v` holds whole events along axis 0 (so a batch can be sliced there)."""
    if batch is None or not v.type.shape:
        return False
    first = dim_factors(v.type.shape[0])[1]
    rest = [s for d in v.type.shape[1:] for s in dim_factors(d)[1]]
    return first.count(batch) == 1 and batch not in rest


def arena_at(f: Function, values: dict[str, int]) -> int:
    """The planned arena's bytes for given symbol maxima."""
    terms = f.attrs["arena_terms"]
    return max(sum(c * term_value(t, values) for c, t in zip(row, terms)) for row in f.attrs["arena"])


def default_max_batch(f: Function, symbols: Symbols) -> int:
    """Events a Session's arena holds by default: 64, or fewer so the arena stays near 64 MB
    (ResNet-18: 16). Larger batches run in chunks of this size."""
    if symbols.batch is None:
        return 1
    base = symbols.values(1)
    per_event = arena_at(f, symbols.values(2)) - arena_at(f, base)
    return max(1, min(64, ARENA_TARGET_BYTES // max(per_event, 1)))
