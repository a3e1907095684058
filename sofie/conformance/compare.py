"""The comparison rules: floats (the narrow ones too) within rtol 1e-3 + atol 1e-5 (NaN where the reference has NaN,
infinities equal), every other type exactly; dtype and shape must match."""

from __future__ import annotations

import numpy as np

from sofie.ir.types import STORAGE_FLOATS, numpy_dtype

RTOL = 1e-3
ATOL = 1e-5


# bfloat16, float8, ...: ml_dtypes' numpy types are of kind 'V', but compare as floats
_NARROW_FLOATS = {numpy_dtype(t) for t in STORAGE_FLOATS}


def compare(name: str, got: np.ndarray, want: np.ndarray, rtol: float = RTOL, atol: float = ATOL) -> str | None:
    """None when `got` matches `want`, else why not (one line)."""
    if got.dtype != want.dtype:
        return f"output '{name}': dtype {got.dtype}, expected {want.dtype}"
    if got.shape != want.shape:
        return f"output '{name}': shape {list(got.shape)}, expected {list(want.shape)}"
    if got.dtype.kind == "f" or got.dtype in _NARROW_FLOATS:
        g, w = got.astype(np.float64), want.astype(np.float64)
        ok = np.isclose(g, w, rtol=rtol, atol=atol, equal_nan=True)
    else:
        g, w = got, want
        ok = got == want
    if ok.all():
        return None
    bad = np.flatnonzero(~ok)
    i = np.unravel_index(bad[0], got.shape) if got.ndim else ()
    where = f"[{', '.join(map(str, i))}]"
    return (f"output '{name}': {bad.size} of {got.size} element(s) differ, first at {where}: "
            f"got {g[i].item()!r}, expected {w[i].item()!r}")
