"""C++ spellings of IR element types: the only place C type names live."""

from __future__ import annotations

from sofie.errors import SofieError

CPP_TYPES: dict[str, str] = {
    "f32": "float", "f64": "double", "f16": "std::uint16_t",
    "i64": "std::int64_t", "i32": "std::int32_t", "i16": "std::int16_t", "i8": "std::int8_t",
    "u64": "std::uint64_t", "u32": "std::uint32_t", "u16": "std::uint16_t", "u8": "std::uint8_t",
    "i1": "bool",
    # ONNX's narrow types as their bits (sofie_rt/narrow_types.hxx converts them)
    "bf16": "std::uint16_t", "f8e4m3fn": "std::uint8_t", "f8e4m3fnuz": "std::uint8_t",
    "f8e5m2": "std::uint8_t", "f8e5m2fnuz": "std::uint8_t", "f8e8m0": "std::uint8_t", "f4e2m1": "std::uint8_t",
    "i4": "std::uint8_t", "u4": "std::uint8_t", "i2": "std::uint8_t", "u2": "std::uint8_t",
}


def cpp_type(dtype: str) -> str:
    if dtype not in CPP_TYPES:
        raise SofieError(f"C++ backend: no C++ type for element type {dtype}")
    return CPP_TYPES[dtype]
