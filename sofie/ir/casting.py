"""ONNX Cast on numpy arrays, the narrow types included: the reference the graph dialect folds
with and the C++ backend (`sofie_rt/narrow_types.hxx`) is tested against.

numpy's `astype` (through ml_dtypes) is ONNX's rule for every type but two cases:
- float8 with `saturate` (ONNX's default): out-of-range values and +-inf become +-max
  instead of inf or NaN;
- float8e8m0 (a power of two): ONNX rounds by its exponent bits as `round_mode` says.
"""

from __future__ import annotations

import ml_dtypes
import numpy as np

from sofie.errors import SofieError
from sofie.ir.types import FLOAT8, numpy_dtype

ROUND_MODES = ("up", "down", "nearest")


def cast_array(x: np.ndarray, to: str, saturate: bool = True, round_mode: str = "up") -> np.ndarray:
    """`x` cast to the element type `to` as ONNX Cast does."""
    dt = numpy_dtype(to)
    x = np.asarray(x)
    if to == "f8e8m0":
        return to_e8m0(x, saturate, round_mode)
    if to in FLOAT8 and saturate and x.dtype != dt:
        info = ml_dtypes.finfo(dt)
        # in the source type when it holds max exactly (every source but the narrowest does)
        wide = x.astype(np.float64) if x.dtype.kind in "iub" else x
        with np.errstate(invalid="ignore"):
            return np.clip(wide, float(info.min), float(info.max)).astype(dt)
    with np.errstate(invalid="ignore", over="ignore"):
        return x.astype(dt)


def to_e8m0(x: np.ndarray, saturate: bool, round_mode: str) -> np.ndarray:
    """float8e8m0 (2^(e - 127), 0xff NaN) from the float32 value's exponent bits: `up` rounds
    any fraction away from zero, `down` drops it, `nearest` rounds at the first fraction bit
    (ties up); `saturate` stops rounding past 2^127. NaN and inf keep 0xff; the sign is dropped
    (a negative input is unspecified in ONNX)."""
    if round_mode not in ROUND_MODES:
        raise SofieError(f"Cast to f8e8m0: round_mode '{round_mode}' is not one of {', '.join(ROUND_MODES)}")
    with np.errstate(invalid="ignore", over="ignore"):
        bits = np.asarray(x, np.float32).view(np.uint32)
    exponent = ((bits >> 23) & 0xFF).astype(np.uint16)
    special = exponent == 0xFF
    if round_mode == "up":
        up = (bits & 0x7FFFFF) > 0
    elif round_mode == "nearest":
        up = ((bits & 0x400000) > 0) & (((bits & 0x3FFFFF) > 0) | (exponent > 0))
    else:
        up = np.zeros(bits.shape, bool)
    up &= ~special
    if saturate:
        up &= exponent != 0xFE
    out = np.where(special, 0xFF, (exponent + up) & 0xFF).astype(np.uint8)
    return out.view(numpy_dtype("f8e8m0"))
