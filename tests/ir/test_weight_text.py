"""Weights in IR text: every element type round-trips bit for bit, inline or as a resource
blob, and corrupt blobs are SofieErrors naming the weight, what was expected and what was found."""

from __future__ import annotations

import re

import numpy as np
import pytest

from sofie.errors import SofieError
from sofie.ir.core import Module
from sofie.ir.parser import parse
from sofie.ir.printer import print_module
from sofie.ir.types import DTYPES, NARROW_INTS, STORAGE_FLOATS, int_range, numpy_dtype


def float_edges(dt: np.dtype) -> np.ndarray:
    """Zeros of both signs, extremes, subnormals, infinities, and NaNs with payloads and signs."""
    fi = np.finfo(dt)
    values = np.array([0.0, -0.0, 1.0, -1.5, 0.1, fi.max, -fi.max, fi.tiny, fi.smallest_subnormal,
                       -fi.smallest_subnormal, np.inf, -np.inf, np.nan], dt)
    bits, u = dt.itemsize * 8, np.dtype(f"u{dt.itemsize}")
    inf, sign, quiet = int(np.array(np.inf, dt).view(u)), 1 << (bits - 1), 1 << (fi.nmant - 1)
    nans = np.array([inf | 1, sign | inf | quiet | 5, (1 << bits) - 1], u).view(dt)  # signaling, -nan(5), all ones
    return np.concatenate([values, nans])


def every_pattern(name: str) -> np.ndarray:
    """Each bit pattern of a narrow type (the 4- and 2-bit integers: each value's canonical byte)."""
    dt = numpy_dtype(name)
    if name in NARROW_INTS:
        lo, hi = int_range(name)
        return np.arange(lo, hi + 1).astype(dt)
    bits = np.arange(1 << (8 * dt.itemsize), dtype=np.dtype(f"u{dt.itemsize}"))
    return bits[:16] if name == "f4e2m1" else bits.view(dt)


def edges(name: str) -> np.ndarray:
    dt = numpy_dtype(name)
    if name in NARROW_INTS or (name in STORAGE_FLOATS and name != "f16"):
        return every_pattern(name)
    if dt.kind == "f":
        return float_edges(dt)
    if dt.kind == "b":
        return np.array([True, False, False, True], dt)
    ii = np.iinfo(dt)
    return np.array(sorted({ii.min, ii.max, 0, 1, ii.max - 1, ii.min + 1} | ({-1} if ii.min < 0 else set())), dt)


def random_of(name: str, n: int) -> np.ndarray:
    """n elements with every bit pattern possible (float NaNs included)."""
    dt = numpy_dtype(name)
    raw = np.random.default_rng(7).integers(0, 256, n * dt.itemsize, dtype=np.uint8)
    if dt.kind == "b":
        raw = raw & 1
    if name in NARROW_INTS or name == "f4e2m1":  # their bytes hold the low bits only
        raw = raw & (3 if name in ("i2", "u2") else 15)
    return raw.view(dt)


def assert_bit_exact(got: np.ndarray, want: np.ndarray) -> None:
    assert got.dtype == want.dtype and got.shape == want.shape
    assert got.tobytes() == want.tobytes()


@pytest.mark.parametrize("inline_limit", [16, 0])  # inline where exact, then every weight a blob
@pytest.mark.parametrize("dtype", list(DTYPES))
def test_every_dtype_round_trips_bit_exactly(dtype: str, inline_limit: int) -> None:
    m = Module("m")
    m.add_weight("edges", edges(dtype))
    m.add_weight("edges_2d", edges(dtype)[:4].reshape(2, 2))
    m.add_weight("scalar", edges(dtype)[1:2].reshape(()))
    m.add_weight("empty", np.zeros((0, 3), numpy_dtype(dtype)))
    m.add_weight("big", random_of(dtype, 1000).reshape(10, 100))
    text = print_module(m, inline_limit=inline_limit)
    back = parse(text)
    for name, w in m.weights.items():
        assert back.weights[name].type == w.type
        assert_bit_exact(back.weights[name].data, w.data)
    assert print_module(back, inline_limit=inline_limit) == text
    assert "elided" not in text


def test_inline_only_when_the_decimals_read_back_exactly() -> None:
    m = Module("m")
    m.add_weight("plain", np.array([0.1, -0.0, np.inf, np.nan], np.float32))
    m.add_weight("payload", np.array([0x7FC00001], np.uint32).view(np.float32))  # NaN payload 1
    m.add_weight("big", np.zeros(17, np.float32))
    text = print_module(m)
    assert 'weight "plain" : tensor<4xf32> = dense<[0.1, -0.0, inf, nan]>' in text
    assert 'weight "payload" : tensor<1xf32> = dense_resource' in text
    assert 'weight "big" : tensor<17xf32> = dense_resource' in text
    # the bytes follow the module, one quoted entry per weight
    section = text[text.index("}\n\n{-#"):]
    assert re.findall(r'^    "(\w+)": "[A-Za-z0-9+/=]+",?$', section, re.M) == ["payload", "big"]
    assert section.endswith("\n#-}\n")


def test_blobs_are_little_endian_base64() -> None:
    m = Module("m")
    m.add_weight("w", np.array([1], np.int32))
    assert '"w": "AQAAAA=="' in print_module(m, inline_limit=0)  # 01 00 00 00


def test_elided_weights_print_and_parse_without_data() -> None:
    m = Module("m")
    m.add_weight("small", np.arange(3, dtype=np.float32))
    m.add_weight("big", np.arange(300, dtype=np.float32))
    text = print_module(m, elide=True)
    assert 'weight "big" : tensor<300xf32> = elided' in text and "{-#" not in text
    assert 'weight "small" : tensor<3xf32> = dense<[0.0, 1.0, 2.0]>' in text
    back = parse(text)
    assert back.weights["big"].data is None
    assert print_module(back) == text  # an elided weight stays elided


GOOD = """module @m {
  weight "w" : tensor<2x3xf32> = dense_resource
  weight "b" : tensor<3xi1> = dense_resource
}

{-#
  resources: {
    "w": "AACAPwAAAEAAAEBAAACAQAAAoEAAAMBA",
    "b": "AQAB"
  }
#-}
"""


def test_the_corruption_fixture_is_valid() -> None:
    m = parse(GOOD)
    np.testing.assert_array_equal(m.weights["w"].data, [[1, 2, 3], [4, 5, 6]])
    np.testing.assert_array_equal(m.weights["b"].data, [True, False, True])
    assert print_module(m, inline_limit=0) == GOOD


@pytest.mark.parametrize("old, new, message", [
    ('"AACAPwAAAEAAAEBAAACAQAAAoEAAAMBA"', '"AACAPwAAAE!AAEBAAACAQAAAoEAAAMBA"',
     r'<text>:8: weight "w": resource has \'!\' at character 10; expected base64'),
    ('"AACAPwAAAEAAAEBAAACAQAAAoEAAAMBA"', '"AACAPwAAAEAAAEBAAACAQAAAoEAAAMB"',
     r'weight "w": resource is 31 characters of base64, expected a multiple of 4'),
    ('"AACAPwAAAEAAAEBAAACAQAAAoEAAAMBA"', '"AACAPwAAAEAAAEBAAACAQAAAoEA="',
     r'weight "w": resource holds 20 bytes, its type tensor<2x3xf32> needs 24 \(6 elements of 4 bytes\)'),
    ('"b": "AQAB"', '"b": "AQIB"', r'weight "b": element 1 of an i1 resource is byte 0x02, expected 0x00 or 0x01'),
    ('"b": "AQAB"', '"b": "AQAB",\n    "ghost": "AAAA"',
     r'<text>:10: resource "ghost" belongs to no weight \(expected a declaration \'weight "ghost" : <type> '
     r'= dense_resource\'\)'),
    (',\n    "b": "AQAB"', "",
     r'<text>:3: weight "b" is declared dense_resource, but the resource section has no entry "b"'),
    ('"b": "AQAB"', '"b": "AQAB",\n    "b": "AQAB"', r'<text>:10: resource "b" appears twice'),
    ('  weight "b"', '  weight "w" : tensor<1xf32> = elided\n  weight "b"', r'weight "w" is declared twice'),
    ("\n#-}", "\n", r"<text>:10:3: syntax error"),
    ('dense_resource\n  weight "b"', 'dense<[1.0, 2.0]>\n  weight "b"',
     r'weight "w": has 2 values, its type tensor<2x3xf32> holds 6'),
])
def test_corrupt_weights_name_the_weight_and_the_mismatch(old: str, new: str, message: str) -> None:
    assert old in GOOD
    with pytest.raises(SofieError, match=message):
        parse(GOOD.replace(old, new, 1))


@pytest.mark.parametrize("dtype, value", [("u8", "256"), ("i8", "-129"), ("u64", "-1"), ("i1", "2"),
                                          ("i32", "1.5")])
def test_inline_values_outside_the_type_are_errors(dtype: str, value: str) -> None:
    text = f'module @m {{\n  weight "c" : tensor<1x{dtype}> = dense<[{value}]>\n}}\n'
    with pytest.raises(SofieError, match=f'weight "c": value {re.escape(value)} is not {dtype}'):
        parse(text)


@pytest.mark.parametrize("dtype, width", [("i4", 4), ("u2", 2), ("f4e2m1", 4)])
def test_sub_byte_resources_hold_only_the_low_bits(dtype: str, width: int) -> None:
    """A 4- or 2-bit element is one byte whose high bits are 0 (as ml_dtypes lays it out)."""
    text = GOOD.replace("tensor<3xi1>", f"tensor<3x{dtype}>").replace('"AQAB"', '"AfAB"')  # 01 f0 01
    with pytest.raises(SofieError, match=f'weight "b": element 1 of an {dtype} resource is byte 0xf0, '
                                         f'expected the low {width} bits only'):
        parse(text)
