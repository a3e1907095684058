"""ONNX's narrow element types end to end (storage only): bfloat16, the float8 family,
float8e8m0, float4e2m1, int4 / uint4 / int2 / uint2.

One model of many Casts is compiled once (sofie.compile caches by content hash) and its
outputs compared, bit for bit, with onnx's reference Cast (`onnx.reference.ops.op_cast`,
numpy through ml_dtypes), which is ONNX's rule:

- every bit pattern of each narrow type -> float32 (exact), and back (each value's own bits);
- a dense float32 sweep into each type with saturate 1 and 0: the target's every value, the
  midpoints between neighbours (ties: round to nearest even) and one float32 ulp either side
  of them, the overflow threshold, +-inf, NaN, +-0, subnormals, and random values;
- float64 and float16 sources (one rounding from the source, not through float32);
- float8e8m0 in each round_mode, with and without saturation;
- the 4- and 2-bit integers from floats (truncation, out of range gives 0) and from int64
  (wrapping), and to int8.

NaN compares as NaN (any payload); everything else is exact. QuantizeLinear /
DequantizeLinear on these types and bf16 elementwise math are compared with onnx's
ReferenceEvaluator (exact: they round to the narrow type last, after the same float32 math).
"""

from __future__ import annotations

import ml_dtypes
import numpy as np
import onnx
import pytest
from onnx import TensorProto as TP
from onnx import helper
from onnx.reference import ReferenceEvaluator
from onnx.reference.ops.op_cast import cast_to

import sofie
from sofie.errors import SofieError

FLOAT_TYPES = {  # ONNX type -> ml_dtypes dtype, the narrow floats
    TP.BFLOAT16: ml_dtypes.bfloat16, TP.FLOAT8E4M3FN: ml_dtypes.float8_e4m3fn,
    TP.FLOAT8E4M3FNUZ: ml_dtypes.float8_e4m3fnuz, TP.FLOAT8E5M2: ml_dtypes.float8_e5m2,
    TP.FLOAT8E5M2FNUZ: ml_dtypes.float8_e5m2fnuz, TP.FLOAT4E2M1: ml_dtypes.float4_e2m1fn,
    TP.FLOAT8E8M0: ml_dtypes.float8_e8m0fnu,
}
FLOAT8 = (TP.FLOAT8E4M3FN, TP.FLOAT8E4M3FNUZ, TP.FLOAT8E5M2, TP.FLOAT8E5M2FNUZ)
INT_TYPES = {TP.INT4: ml_dtypes.int4, TP.UINT4: ml_dtypes.uint4, TP.INT2: ml_dtypes.int2, TP.UINT2: ml_dtypes.uint2}
OPSET = 25


def _name(t: int) -> str:
    return TP.DataType.Name(t).lower()


def _all_values(t: int) -> np.ndarray:
    """Every bit pattern of a narrow type, as that type (the 4- and 2-bit ones: their low bits)."""
    dt = np.dtype(FLOAT_TYPES.get(t) or INT_TYPES[t])
    width = {TP.BFLOAT16: 16, TP.FLOAT4E2M1: 4, TP.INT4: 4, TP.UINT4: 4, TP.INT2: 2, TP.UINT2: 2}.get(t, 8)
    bits = np.arange(1 << width, dtype=np.uint16 if width == 16 else np.uint8)
    return bits.view(dt)


def _float_sweep(t: int, rng: np.random.Generator) -> np.ndarray:
    """float32 values that exercise rounding into `t`: its values, the midpoints between them
    (exact ties) and one float32 ulp around each, beyond max, specials, random values."""
    with np.errstate(invalid="ignore"):
        v = np.unique(_all_values(t).astype(np.float64))
    v = v[np.isfinite(v)]
    scale = float(np.max(np.abs(v)))
    mid = (v[:-1] + v[1:]) / 2
    top = v[-1] + (v[-1] - v[-2]) / 2  # the tie above max, and beyond it
    with np.errstate(over="ignore"):  # bf16's are beyond float32: they become inf
        base = np.concatenate([v, mid, [top, top * 1.5, -top, 1e30, -1e30, 1e-30, -1e-30]]).astype(np.float32)
        random = (rng.standard_normal(4000) * rng.choice([1e-3, 1.0, scale], 4000)).astype(np.float32)
    around = np.concatenate([base, np.nextafter(base, np.float32(np.inf)), np.nextafter(base, np.float32(-np.inf))])
    special = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, -np.nan, 1e-45, -1e-45, 3.4e38], np.float32)
    return np.concatenate([around, special, random])


def _same(got: np.ndarray, want: np.ndarray, what: str) -> None:
    """Equal bit for bit, NaN matching any NaN."""
    assert got.dtype == want.dtype, f"{what}: dtype {got.dtype}, expected {want.dtype}"
    with np.errstate(invalid="ignore"):
        g, w = got.astype(np.float64), want.astype(np.float64)
    nan = np.isnan(w)
    same = np.where(nan, np.isnan(g), got.view(np.uint8 if got.itemsize == 1 else np.uint16 if got.itemsize == 2
                                                   else np.uint32 if got.itemsize == 4 else np.uint64)
                    == want.view(np.uint8 if want.itemsize == 1 else np.uint16 if want.itemsize == 2
                                 else np.uint32 if want.itemsize == 4 else np.uint64))
    if not same.all():
        k = int(np.flatnonzero(~same)[0])
        raise AssertionError(f"{what}: {int((~same).sum())} of {same.size} differ; first [{k}]: "
                             f"got {g[k]!r}, expected {w[k]!r}")


class _Model:
    """A model of independent Cast nodes on its own graph inputs, built and compiled once."""

    def __init__(self) -> None:
        self.nodes, self.inputs, self.outputs, self.feeds, self.expected = [], [], [], {}, {}
        self.labels: dict[str, str] = {}  # a case's name -> its output

    def cast(self, x: np.ndarray, src: int, to: int, label: str = "", **attrs) -> None:
        k = len(self.nodes)
        if label:
            self.labels[label] = f"y{k}"
        xin, yout = f"x{k}", f"y{k}"
        self.nodes.append(helper.make_node("Cast", [xin], [yout], to=to, name=f"cast{k}", **attrs))
        self.inputs.append(helper.make_tensor_value_info(xin, src, [x.size]))
        self.outputs.append(helper.make_tensor_value_info(yout, to, [x.size]))
        self.feeds[xin] = x
        self.expected[yout] = (cast_to(x, to, bool(attrs.get("saturate", 1)), attrs.get("round_mode", "up")),
                               f"Cast {_name(src)} -> {_name(to)} {attrs}")

    def run(self) -> dict[str, np.ndarray]:
        g = helper.make_graph(self.nodes, "narrow_casts", self.inputs, self.outputs)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET)])
        compiled = sofie.compile(m)
        got = compiled(*[self.feeds[i.name] for i in self.inputs])
        return {o.name: y for o, y in zip(self.outputs, got)}


def _cases() -> _Model:
    with np.errstate(all="ignore"):  # the sweeps overflow and meet NaN on purpose
        return _add_cases(_Model())


def _add_cases(m: _Model) -> _Model:
    rng = np.random.default_rng(0)
    for t in FLOAT_TYPES:
        every = _all_values(t)
        m.cast(every, t, TP.FLOAT)  # exact
        m.cast(every.astype(np.float32), TP.FLOAT, t)  # back to its own bits
        m.cast(every, t, TP.FLOAT16)
        sweep = _float_sweep(t, rng)
        if t == TP.FLOAT8E8M0:
            for mode in ("up", "down", "nearest"):
                for sat in (0, 1):
                    m.cast(np.abs(sweep), TP.FLOAT, t, saturate=sat, round_mode=mode)
            continue
        for sat in ((0, 1) if t in FLOAT8 else (1,)):
            m.cast(sweep, TP.FLOAT, t, saturate=sat)
            m.cast(sweep.astype(np.float16), TP.FLOAT16, t, saturate=sat)
        # float64: rounded once (a value just above a float32 tie rounds up here)
        wide = sweep.astype(np.float64)
        m.cast(wide + np.abs(wide) * 2.0 ** -30, TP.DOUBLE, t)
    for t in FLOAT8:
        for sat in (0, 1):
            m.cast(np.array([1e6, -np.inf, -0.0], np.float32), TP.FLOAT, t, label=f"overflow {t} {sat}", saturate=sat)
    ties = np.array([1 + 2 ** -8, 1 + 3 * 2 ** -8, -(1 + 2 ** -8), 1 + 2 ** -8 + 2 ** -20], np.float32)
    m.cast(ties, TP.FLOAT, TP.BFLOAT16, label="bf16 ties")
    for t in INT_TYPES:
        every = _all_values(t)
        m.cast(every, t, TP.FLOAT)
        m.cast(every, t, TP.INT8)
        m.cast(every, t, TP.FLOAT16)
        floats = np.array([0.0, -0.0, 0.4, 0.9, 1.5, -1.5, 2.5, -2.5, 3.9, -3.9, 7.9, 8.0, -8.0, -8.9, -9.0,
                           15.5, 16.0, 100.0, -100.0, np.inf, -np.inf, np.nan], np.float32)
        m.cast(floats, TP.FLOAT, t)
        m.cast(np.arange(-40, 40, dtype=np.int64), TP.INT64, t)  # wraps
        m.cast(np.array([True, False]), TP.BOOL, t)
    return m


@pytest.fixture(scope="module")
def cast_results():
    m = _cases()
    return m, m.run()


def test_narrow_casts_match_onnx_reference(cast_results):
    m, got = cast_results
    for name, (want, what) in m.expected.items():
        _same(got[name], want, what)


def test_bf16_rounds_ties_to_even(cast_results):
    """1 + 2^-8 is halfway between bf16 1 and 1 + 2^-7: to even (1); 1 + 3 * 2^-8 is halfway
    between 1 + 2^-7 and 1 + 2^-6: to even (up); just above a tie rounds up."""
    m, got = cast_results
    want = np.array([1.0, 1 + 2 ** -6, -1.0, 1 + 2 ** -7], np.float32).astype(ml_dtypes.bfloat16)
    _same(got[m.labels["bf16 ties"]], want, "bf16 ties")


def test_float8_overflow_saturates_or_not(cast_results):
    """ONNX Cast's tables: beyond max (after rounding) and +-inf give +-max with saturate,
    else NaN (+-inf for E5M2); FNUZ has no -0 (-0 gives 0)."""
    m, got = cast_results
    nan, inf = np.nan, np.inf
    table = {  # x = [1e6, -inf, -0.0]
        (TP.FLOAT8E4M3FN, 1): [448, -448, -0.0], (TP.FLOAT8E4M3FN, 0): [nan, nan, -0.0],
        (TP.FLOAT8E5M2, 1): [57344, -57344, -0.0], (TP.FLOAT8E5M2, 0): [inf, -inf, -0.0],
        (TP.FLOAT8E4M3FNUZ, 1): [240, -240, 0.0], (TP.FLOAT8E4M3FNUZ, 0): [nan, nan, 0.0],
        (TP.FLOAT8E5M2FNUZ, 1): [57344, -57344, 0.0], (TP.FLOAT8E5M2FNUZ, 0): [nan, nan, 0.0],
    }
    for (t, sat), want in table.items():
        y = got[m.labels[f"overflow {t} {sat}"]]
        _same(y, np.array(want, np.float32).astype(FLOAT_TYPES[t]), f"{_name(t)} saturate={sat}")
        assert np.signbit(y.astype(np.float32)[2]) == np.signbit(want[2])


def _model(nodes, inputs, outputs, opset=OPSET):
    g = helper.make_graph(nodes, "m", inputs, outputs)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


@pytest.mark.parametrize("to", [TP.FLOAT8E4M3FN, TP.FLOAT8E5M2, TP.FLOAT8E4M3FNUZ, TP.FLOAT8E5M2FNUZ,
                                TP.FLOAT4E2M1, TP.INT4, TP.UINT4, TP.INT2, TP.UINT2])
def test_quantize_dequantize_narrow(to):
    """QuantizeLinear per axis with a zero point of the narrow type (and saturate 0 for float8),
    then DequantizeLinear back, against onnx's ReferenceEvaluator, exactly."""
    rng = np.random.default_rng(to)
    x = (rng.standard_normal((3, 40)) * 4).astype(np.float32)
    x[0, :6] = [0.5, 1.5, 2.5, -0.5, 1e9, -1e9]  # ties to even, saturation
    scale = np.array([0.5, 0.25, 2.0], np.float32)
    dt = np.dtype(FLOAT_TYPES.get(to) or INT_TYPES[to])
    # float8's zero point must be 0; float4's is added before the cast (and unread by Dequantize)
    zp_values = {TP.FLOAT4E2M1: [0, 1, -0.5], TP.INT2: [0, 1, -1], **{t: [0, 0, 0] for t in FLOAT8}}
    zp = np.array(zp_values.get(to, [0, 1, 2]), np.float32).astype(dt)
    inits = [onnx.numpy_helper.from_array(scale, "s"), onnx.numpy_helper.from_array(zp, "zp")]
    attrs = {"saturate": 0} if to in FLOAT8 else {}
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "zp"], ["q"], axis=0, **attrs),
             helper.make_node("DequantizeLinear", ["q", "s", "zp"], ["y"], axis=0)]
    m = _model(nodes, [helper.make_tensor_value_info("x", TP.FLOAT, [3, 40])],
               [helper.make_tensor_value_info("q", to, [3, 40]), helper.make_tensor_value_info("y", TP.FLOAT, [3, 40])])
    m.graph.initializer.extend(inits)
    want_q, want_y = ReferenceEvaluator(m).run(None, {"x": x})
    got_q, got_y = sofie.compile(m)(x)
    _same(got_q, want_q, f"QuantizeLinear to {_name(to)}")
    _same(got_y, want_y, f"DequantizeLinear from {_name(to)}")


def test_bf16_elementwise_computes_through_float():
    """Celu, Add and Sigmoid on bf16: read as float, computed in float, rounded once to bf16
    (ONNX's reference computes these in float too, so the result is exact but for the float
    libm's last bit, which bf16's 8 bits hide)."""
    rng = np.random.default_rng(1)
    x = (rng.standard_normal(500) * 3).astype(ml_dtypes.bfloat16)
    b = (rng.standard_normal(500)).astype(ml_dtypes.bfloat16)
    info = [helper.make_tensor_value_info(n, TP.BFLOAT16, [500]) for n in ("x", "b")]
    nodes = [helper.make_node("Celu", ["x"], ["c"], alpha=1.5), helper.make_node("Add", ["x", "b"], ["s"]),
             helper.make_node("Sigmoid", ["x"], ["g"])]
    m = _model(nodes, info, [helper.make_tensor_value_info(n, TP.BFLOAT16, [500]) for n in ("c", "s", "g")])
    got = sofie.compile(m)(x, b)
    x32, b32 = x.astype(np.float32), b.astype(np.float32)
    want = [np.maximum(x32, 0) + np.minimum(0, 1.5 * np.expm1(x32 / 1.5)), x32 + b32, 1 / (1 + np.exp(-x32))]
    for g, w, what in zip(got, want, ("Celu", "Add", "Sigmoid")):
        assert g.dtype == ml_dtypes.bfloat16
        # within one bf16 ulp of the float result rounded to bf16 (the float libm may differ in its last bit)
        np.testing.assert_allclose(g.astype(np.float32), w.astype(ml_dtypes.bfloat16).astype(np.float32),
                                   rtol=2 ** -7, atol=0, err_msg=what)


def test_narrow_weights_and_data_movement():
    """int4 and float8 initializers (packed two per byte in the TensorProto) are unpacked at
    import; Concat / Transpose move the bytes."""
    w4 = np.array([[-8, 7, -1], [3, 0, -3]], ml_dtypes.int4)
    w8 = np.array([[448, -0.5, 1e-3], [2, -2, 0]], np.float32).astype(ml_dtypes.float8_e4m3fn)
    inits = [onnx.numpy_helper.from_array(w4, "w4"), onnx.numpy_helper.from_array(w8, "w8")]
    nodes = [helper.make_node("Concat", ["x", "w4"], ["c"], axis=0), helper.make_node("Transpose", ["c"], ["t"]),
             helper.make_node("Cast", ["w8"], ["f"], to=TP.FLOAT)]
    m = _model(nodes, [helper.make_tensor_value_info("x", TP.INT4, [1, 3])],
               [helper.make_tensor_value_info("t", TP.INT4, [3, 3]),
                helper.make_tensor_value_info("f", TP.FLOAT, [2, 3])])
    m.graph.initializer.extend(inits)
    x = np.array([[1, -2, 5]], ml_dtypes.int4)
    t, f = sofie.compile(m)(x)
    np.testing.assert_array_equal(t.astype(np.int8), np.concatenate([x, w4]).T.astype(np.int8))
    np.testing.assert_array_equal(f, w8.astype(np.float32))


@pytest.mark.parametrize("op, t, message", [
    ("Add", TP.FLOAT8E4M3FN, r"node 'n' \(Add.*Add is not defined on element type f8e4m3fn"),
    ("Add", TP.INT4, r"node 'n' \(Add.*Add is not defined on element type i4"),
    ("MatMul", TP.FLOAT8E4M3FN, r"graph.matmul \(node 'n'\): no kernel for element type f8e4m3fn"),
    ("Einsum", TP.BFLOAT16, r"node 'n' \(Einsum.*Einsum is not defined on element type bf16"),
    # (Softmax, MatMul, Conv and the reductions on bf16 compute in f32: the widen-f16 pass)
    ("BitwiseAnd", TP.BFLOAT16, r"node 'n' \(BitwiseAnd.*BitwiseAnd is not defined on element type bf16"),
])
def test_no_kernel_is_refused(op, t, message):
    """Math on a storage-only type without a float path is refused at compile time, naming the
    node, the op and the type."""
    inputs = ["a"] if op == "Softmax" else ["a", "b"]
    info = [helper.make_tensor_value_info(n, t, [2, 2]) for n in inputs]
    attrs = {"equation": "ij,jk->ik"} if op == "Einsum" else {}
    y = helper.make_tensor_value_info("y", t, [2, 2])
    m = _model([helper.make_node(op, inputs, ["y"], name="n", **attrs)], info, [y])
    with pytest.raises(SofieError, match=message):
        sofie.compile(m)


@pytest.mark.parametrize("t, dt, ulp", [(TP.BFLOAT16, ml_dtypes.bfloat16, 2 ** -7), (TP.FLOAT16, np.float16, 2 ** -10)])
def test_matmul_on_storage_floats_computes_in_float(t, dt, ulp):
    """MatMul (batched, broadcasting B) on bf16 / f16: widened to float, one float GEMM, rounded
    once, as onnx's reference (numpy's matmul on these types accumulates in float). The sums
    may round differently by the order of their terms: one ulp at most, most elements equal."""
    rng = np.random.default_rng(3)
    a = rng.standard_normal((2, 5, 64)).astype(dt)
    b = rng.standard_normal((64, 7)).astype(dt)
    info = [helper.make_tensor_value_info("a", t, [2, 5, 64]), helper.make_tensor_value_info("b", t, [64, 7])]
    y = helper.make_tensor_value_info("y", t, [2, 5, 7])
    m = _model([helper.make_node("MatMul", ["a", "b"], ["y"])], info, [y])
    (got,) = sofie.compile(m)(a, b)
    (want,) = ReferenceEvaluator(m).run(None, {"a": a, "b": b})
    assert got.dtype == want.dtype == dt
    g, w = got.astype(np.float64), want.astype(np.float64)
    np.testing.assert_allclose(g, w, rtol=ulp, atol=0)
    assert (g == w).mean() > 0.9


def test_einsum_moves_storage_types():
    """An Einsum that only moves elements (a transpose, a diagonal) runs on any type."""
    x = (np.arange(9, dtype=np.float32) - 4).reshape(3, 3).astype(ml_dtypes.bfloat16)
    nodes = [helper.make_node("Einsum", ["x"], ["t"], equation="ij->ji"),
             helper.make_node("Einsum", ["x"], ["d"], equation="ii->i")]
    m = _model(nodes, [helper.make_tensor_value_info("x", TP.BFLOAT16, [3, 3])],
               [helper.make_tensor_value_info("t", TP.BFLOAT16, [3, 3]),
                helper.make_tensor_value_info("d", TP.BFLOAT16, [3])])
    t, d = sofie.compile(m)(x)
    _same(t, np.ascontiguousarray(x.T), "Einsum ij->ji")
    _same(d, np.ascontiguousarray(np.diagonal(x)), "Einsum ii->i")


def test_a_wrong_input_dtype_names_the_ml_dtypes_cast():
    m = _model([helper.make_node("Cast", ["x"], ["y"], to=TP.FLOAT)],
               [helper.make_tensor_value_info("x", TP.BFLOAT16, [2])],
               [helper.make_tensor_value_info("y", TP.FLOAT, [2])])
    want = r"input 'x' must be bfloat16, got float32; cast with x.astype\(ml_dtypes.bfloat16\)"
    with pytest.raises(SofieError, match=want):
        sofie.compile(m)(np.zeros(2, np.float32))
