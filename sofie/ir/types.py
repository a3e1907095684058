"""Tensor types: an element type and a shape whose dims are ints or symbols (`N`)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import ml_dtypes
import numpy as np

from sofie.errors import SofieError

# A dim is an int, a symbol ('N', 'P') or a product of symbols with an integer factor, spelled
# canonically ('N*P', '4*N'): what shape arithmetic over symbols folds into.
Dim = int | str

# IR spelling <-> numpy dtype. One table, read by the printer, parser and frontends (the C++
# spellings live in the backend).
DTYPES: dict[str, np.dtype] = {
    "f32": np.dtype(np.float32), "f64": np.dtype(np.float64), "f16": np.dtype(np.float16),
    "i64": np.dtype(np.int64), "i32": np.dtype(np.int32), "i16": np.dtype(np.int16), "i8": np.dtype(np.int8),
    "u8": np.dtype(np.uint8), "u16": np.dtype(np.uint16), "u32": np.dtype(np.uint32), "u64": np.dtype(np.uint64),
    "i1": np.dtype(np.bool_),
    # ONNX's narrow types, as ml_dtypes spells them in numpy (one element per byte, the 4- and
    # 2-bit ones too: ONNX packs those only in a TensorProto, which the importer unpacks)
    "bf16": np.dtype(ml_dtypes.bfloat16),
    "f8e4m3fn": np.dtype(ml_dtypes.float8_e4m3fn), "f8e4m3fnuz": np.dtype(ml_dtypes.float8_e4m3fnuz),
    "f8e5m2": np.dtype(ml_dtypes.float8_e5m2), "f8e5m2fnuz": np.dtype(ml_dtypes.float8_e5m2fnuz),
    "f8e8m0": np.dtype(ml_dtypes.float8_e8m0fnu), "f4e2m1": np.dtype(ml_dtypes.float4_e2m1fn),
    "i4": np.dtype(ml_dtypes.int4), "u4": np.dtype(ml_dtypes.uint4),
    "i2": np.dtype(ml_dtypes.int2), "u2": np.dtype(ml_dtypes.uint2),
}
_BY_NUMPY = {v: k for k, v in DTYPES.items()}

# Element-type groups that ops and kernels declare what they support with. f16 is storage
# only: it is read, written, moved and cast (through float), never computed on.
FLOATS = ("f32", "f64")
# Storage-only floats: read, written, moved and cast (through float); f16 and bf16 are also
# computed on by elementwise ops, read as f32 and rounded back (`COMPUTED_AS_F32`).
FLOAT8 = ("f8e4m3fn", "f8e4m3fnuz", "f8e5m2", "f8e5m2fnuz")
STORAGE_FLOATS = ("f16", "bf16") + FLOAT8 + ("f8e8m0", "f4e2m1")
COMPUTED_AS_F32 = ("f16", "bf16")
# Storage-only 4- and 2-bit integers: one element per byte, holding the value's low bits as
# ml_dtypes does (-3 as int4 is the byte 0x0d); cast to compute on them.
NARROW_INTS = ("i4", "u4", "i2", "u2")
# the bits of the types narrower than a byte (one per byte in memory, the high bits 0)
SUB_BYTE_BITS = {"i4": 4, "u4": 4, "f4e2m1": 4, "i2": 2, "u2": 2}
SIGNED_INTS = ("i8", "i16", "i32", "i64")
UNSIGNED_INTS = ("u8", "u16", "u32", "u64")
INTS = SIGNED_INTS + UNSIGNED_INTS
NUMERIC = FLOATS + INTS  # the types arithmetic runs on


def dtype_name(dt: np.dtype | type) -> str:
    """IR spelling of a numpy dtype."""
    dt = np.dtype(dt)
    if dt not in _BY_NUMPY:
        raise SofieError(f"unsupported element type {dt}")
    return _BY_NUMPY[dt]


def numpy_dtype(name: str) -> np.dtype:
    return DTYPES[name]


def is_float(name: str) -> bool:
    """A floating-point element type, storage-only ones included."""
    return name in FLOATS or name in STORAGE_FLOATS


def int_range(name: str) -> tuple[int, int]:
    """(lowest, highest) of an integer element type, the narrow ones included."""
    info = ml_dtypes.iinfo(DTYPES[name]) if name in NARROW_INTS else np.iinfo(DTYPES[name])
    return int(info.min), int(info.max)


@dataclass(frozen=True)
class TensorType:
    dtype: str
    shape: tuple[Dim, ...]

    def __post_init__(self) -> None:
        if self.dtype not in DTYPES:
            raise SofieError(f"unknown element type '{self.dtype}'")

    @property
    def rank(self) -> int:
        return len(self.shape)

    @property
    def is_static(self) -> bool:
        return all(isinstance(d, int) for d in self.shape)

    @property
    def symbols(self) -> tuple[str, ...]:
        """Every symbol the shape multiplies by, with repetition, sorted ('N*P' gives N and P)."""
        return tuple(sorted(s for d in self.shape for s in dim_factors(d)[1]))

    @property
    def itemsize(self) -> int:
        return numpy_dtype(self.dtype).itemsize

    def static_size(self) -> int:
        """Element count with every symbol taken as 1: the per-event size for a batch symbol."""
        return math.prod(dim_factors(d)[0] for d in self.shape)

    def with_shape(self, shape: tuple[Dim, ...] | list[Dim]) -> TensorType:
        return TensorType(self.dtype, tuple(shape))

    def __str__(self) -> str:
        dims = "".join(f"{d}x" for d in self.shape)
        return f"tensor<{dims}{self.dtype}>"


def broadcast_shapes(*shapes: tuple[Dim, ...]) -> tuple[Dim, ...]:
    """Numpy broadcasting over symbolic dims; a symbol broadcasts only with 1 or itself."""
    rank = max((len(s) for s in shapes), default=0)
    out: list[Dim] = []
    for i in range(rank):
        dims = {s[len(s) - rank + i] for s in shapes if len(s) - rank + i >= 0}
        dims.discard(1)
        if len(dims) > 1:
            raise SofieError(f"shapes {' and '.join(fmt_shape(s) for s in shapes)} do not broadcast")
        out.append(dims.pop() if dims else 1)
    return tuple(out)


def fmt_shape(shape: tuple[Dim, ...]) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def dims_product(dims: tuple[Dim, ...] | list[Dim]) -> tuple[int, tuple[str, ...]]:
    """Split a product of dims into its integer factor and its sorted symbols."""
    n, syms = 1, []
    for d in dims:
        c, s = dim_factors(d)
        n *= c
        syms.extend(s)
    return n, tuple(sorted(syms))


def dim_factors(d: Dim) -> tuple[int, tuple[str, ...]]:
    """(integer factor, symbols) of a dim: 6 -> (6, ()), 'N' -> (1, ('N',)), '4*N*P' -> (4, ('N', 'P'))."""
    if isinstance(d, int):
        return d, ()
    coef, syms = 1, []
    for part in d.split("*"):
        if part.isdigit():
            coef *= int(part)
        else:
            syms.append(part)
    return coef, tuple(sorted(syms))


def make_dim(coef: int, syms: tuple[str, ...] | list[str]) -> Dim:
    """The canonical dim for coef * product(syms)."""
    syms = sorted(syms)
    if not syms or coef == 0:
        return coef
    return "*".join(([str(coef)] if coef != 1 else []) + syms)
