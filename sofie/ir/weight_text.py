"""How a weight's values are spelled in IR text, exactly: decimals inline for small weights,
base64 blobs in the trailing resource section for the rest. The printer and the parser both
come here, so a spelling and its reading cannot drift apart.

Blobs are base64 of the little-endian bytes of the declared element type (C order). Why
base64: bytes, not decimals, so every value comes back bit for bit (NaN payloads, -0.0,
subnormals, f16); 4 characters per 3 bytes where MLIR's hex costs 2 per byte; and the
standard library encodes and decodes it at C speed with strict validation, which a model of
hundreds of megabytes needs.
"""

from __future__ import annotations

import base64
import binascii
import re

import numpy as np

from sofie.errors import SofieError
from sofie.ir.types import FLOATS, SUB_BYTE_BITS, TensorType, int_range, is_float, numpy_dtype

_NOT_BASE64 = re.compile(r"[^A-Za-z0-9+/=]")


def _le_dtype(ty: TensorType) -> np.dtype:
    return numpy_dtype(ty.dtype).newbyteorder("<")


def encode_blob(data: np.ndarray, ty: TensorType) -> str:
    """The base64 of `data`'s bytes as little-endian elements of `ty`, whatever the host."""
    le = np.ascontiguousarray(data, dtype=_le_dtype(ty))
    return base64.b64encode(le.tobytes()).decode("ascii")


def decode_blob(text: str, ty: TensorType, what: str) -> np.ndarray:
    """The array a blob holds for a weight of type `ty`; `what` names the weight in errors."""
    try:
        raw = base64.b64decode(text, validate=True)
    except binascii.Error:
        raise SofieError(f"{what}: {_base64_problem(text)}") from None
    want = ty.static_size() * ty.itemsize
    if len(raw) != want:
        raise SofieError(f"{what}: resource holds {len(raw)} bytes, its type {ty} needs {want} "
                         f"({ty.static_size()} elements of {ty.itemsize} bytes)")
    if ty.dtype == "i1" and raw.translate(None, b"\x00\x01"):  # a byte other than 0 and 1 is left
        k = next(i for i, b in enumerate(raw) if b > 1)
        raise SofieError(f"{what}: element {k} of an i1 resource is byte {raw[k]:#04x}, expected 0x00 or 0x01")
    bits = SUB_BYTE_BITS.get(ty.dtype)
    if bits is not None and raw.translate(None, bytes(range(1 << bits))):  # a byte with high bits set
        k = next(i for i, b in enumerate(raw) if b >> bits)
        raise SofieError(f"{what}: element {k} of an {ty.dtype} resource is byte {raw[k]:#04x}, "
                         f"expected the low {bits} bits only")
    # bytearray: a writable copy the module owns; astype: native byte order for the backend
    data = np.frombuffer(bytearray(raw), dtype=_le_dtype(ty)).astype(numpy_dtype(ty.dtype), copy=False)
    return data.reshape(tuple(int(d) for d in ty.shape))


def _base64_problem(text: str) -> str:
    bad = _NOT_BASE64.search(text)
    if bad:
        return (f"resource has {bad.group()!r} at character {bad.start()}; expected base64 "
                f"(A-Z a-z 0-9 + / and '=' padding)")
    return f"resource is {len(text)} characters of base64, expected a multiple of 4 with '=' padding only at the end"


def inline_items(data: np.ndarray, ty: TensorType) -> list[str] | None:
    """The decimal spellings of `data`'s elements as `ty`, or None when they would not read
    back to the same bits (NaN payloads and signs; any rounding doubt): those go to a blob."""
    flat = np.ascontiguousarray(data, dtype=numpy_dtype(ty.dtype)).reshape(-1)
    if is_float(ty.dtype):
        # str() of a numpy float is its shortest spelling that reads back to the same value
        items = [_float_literal(str(x)) for x in flat]
        values: list[int | float] = [float(s) for s in items]
    else:
        items = [str(int(x)) for x in flat]
        values = [int(s) for s in items]
    same = dense_array(values, ty, "").tobytes() == flat.tobytes()
    return items if same else None


def _float_literal(s: str) -> str:
    return s if any(c in s for c in ".ena") else s + ".0"


def dense_array(values: list[int | float], ty: TensorType, what: str) -> np.ndarray:
    """The array of `dense<[...]>` literals for a weight of type `ty`."""
    dt = numpy_dtype(ty.dtype)
    if len(values) != ty.static_size():
        raise SofieError(f"{what}: has {len(values)} values, its type {ty} holds {ty.static_size()}")
    if is_float(ty.dtype):
        # through float32 for the narrow floats: its shortest spelling reads back exactly, and
        # ml_dtypes converts from float32 in one rounding
        wide = np.float64 if ty.dtype in FLOATS else np.float32
        with np.errstate(over="ignore"):
            data = np.array(values, dtype=wide).astype(dt)
    else:
        lo, hi = (0, 1) if dt.kind == "b" else int_range(ty.dtype)
        for v in values:
            if not isinstance(v, int) or not lo <= v <= hi:
                raise SofieError(f"{what}: value {v} is not {ty.dtype} (integers {lo} to {hi})")
        data = np.array(values, dtype=np.int64 if lo < 0 else np.uint64).astype(dt)
    return data.reshape(tuple(int(d) for d in ty.shape))
