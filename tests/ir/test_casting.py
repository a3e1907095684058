"""`sofie.ir.casting.cast_array`, the numpy Cast the graph dialect folds with, against onnx's
reference Cast (`onnx.reference.ops.op_cast.cast_to`), bit for bit: into every narrow type from
a float32 sweep with saturate 0 and 1 (float8e8m0 in each round_mode), from float16, float64
and int64; and a constant Cast folded at compile time gives the same bits."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto as TP
from onnx import helper
from onnx.reference.ops.op_cast import cast_to

from sofie.frontends.onnx import load_onnx
from sofie.ir.casting import cast_array
from sofie.ir.types import NARROW_INTS, STORAGE_FLOATS, dtype_name, numpy_dtype
from sofie.pipeline import run_pipeline

NARROW = [t for t in STORAGE_FLOATS if t != "f16"] + list(NARROW_INTS)
ONNX_CODE = {t: helper.np_dtype_to_tensor_dtype(numpy_dtype(t)) for t in NARROW}


def _sweep() -> np.ndarray:
    """float32 values around every narrow type's range and precision: a log-spaced grid with
    its midpoints, their float32 neighbours, and the specials."""
    grid = np.concatenate([2.0 ** np.arange(-140, 130, 0.125), [0.0, 0.25, 0.5, 1.5, 2.5, 3.5, 7.5, 8.5]])
    with np.errstate(over="ignore"):
        grid = np.concatenate([grid, -grid]).astype(np.float32)
    mids = (grid[:-1].astype(np.float64) + grid[1:]) / 2
    base = np.concatenate([grid, mids.astype(np.float32)])
    return np.concatenate([base, np.nextafter(base, np.float32(np.inf)), np.nextafter(base, np.float32(-np.inf)),
                           np.array([np.inf, -np.inf, np.nan, -0.0], np.float32)])


def _bits(a: np.ndarray) -> np.ndarray:
    return a.view(np.uint8 if a.itemsize == 1 else np.uint16)


def _same(got: np.ndarray, want: np.ndarray) -> None:
    assert got.dtype == want.dtype
    with np.errstate(invalid="ignore"):
        nan = np.isnan(want.astype(np.float32))
    ok = np.where(nan, np.isnan(got.astype(np.float32)), _bits(got) == _bits(want))
    assert ok.all(), f"{int((~ok).sum())} differ, first at {int(np.flatnonzero(~ok)[0])}"


@pytest.mark.parametrize("to", NARROW)
def test_cast_array_matches_onnx_reference(to: str) -> None:
    x = _sweep()
    sources = [x, x.astype(np.float64) * (1 + 2.0 ** -35)]
    with np.errstate(all="ignore"):
        sources += [x.astype(np.float16), np.arange(-70, 70, dtype=np.int64)]
    modes = ("up", "down", "nearest") if to == "f8e8m0" else ("up",)
    for src in sources:
        for saturate in (True, False):
            for mode in modes:
                if to == "f8e8m0" and src.dtype.kind != "f":
                    continue  # the reference takes e8m0's sources as float32 only
                with np.errstate(all="ignore"):
                    want = cast_to(src, ONNX_CODE[to], saturate, mode)
                    got = cast_array(src, to, saturate, mode)
                _same(got, want)


def test_a_constant_cast_folds_to_the_reference_bits() -> None:
    """Cast of a weight (saturate 0 and 1) folds into a float8 weight (each Cast feeds a
    Reshape: a returned value is never folded)."""
    x = np.array([1e6, -1e6, 464.0, 465.0, -0.0, np.nan, 0.3], np.float32)
    nodes = [helper.make_node("Cast", ["c"], ["c0"], to=TP.FLOAT8E4M3FN, saturate=0),
             helper.make_node("Cast", ["c"], ["c1"], to=TP.FLOAT8E4M3FN),
             helper.make_node("Reshape", ["c0", "shape"], ["y0"]), helper.make_node("Reshape", ["c1", "shape"], ["y1"])]
    outs = [helper.make_tensor_value_info(n, TP.FLOAT8E4M3FN, [7]) for n in ("y0", "y1")]
    inits = [onnx.numpy_helper.from_array(x, "c"), onnx.numpy_helper.from_array(np.array([7], np.int64), "shape")]
    m = load_onnx(helper.make_model(helper.make_graph(nodes, "g", [], outs, inits),
                                    opset_imports=[helper.make_opsetid("", 21)]))
    m, _ = run_pipeline(m, ["infer-shapes", "fold-constants"])
    folded = [m.constant_value(v.owner.operands[0]) for v in m.main.outputs]
    assert all(f is not None and dtype_name(f.dtype) == "f8e4m3fn" for f in folded)
    _same(folded[0], cast_to(x, TP.FLOAT8E4M3FN, False))
    _same(folded[1], cast_to(x, TP.FLOAT8E4M3FN, True))
