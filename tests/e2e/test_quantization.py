"""The quantization family against onnxruntime, exactly (integer results bit for bit, float
results of DequantizeLinear to the last bit as both compute (x - zp) * scale in float):
QuantizeLinear / DequantizeLinear per tensor, per axis (negative too), blocked (also a block
that does not divide the axis), with and without zero points of both signednesses, 8- and
16-bit, float16 data and scales, output_dtype, run-time scales, rounding ties (half to even)
and saturation; DynamicQuantizeLinear; MatMulInteger, ConvInteger, QLinearMatMul and
QLinearConv with per-tensor, per-row / per-column / per-channel zero points and scales.

Cases share one model per opset (the house pattern of test_ops.py), compiled once.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import sofie
from sofie.errors import SofieError
from tests.e2e.test_ops import BATCHES, Suite, f32

_INT_KINDS = {"u8": (np.uint8, TensorProto.UINT8), "i8": (np.int8, TensorProto.INT8),
              "u16": (np.uint16, TensorProto.UINT16), "i16": (np.int16, TensorProto.INT16),
              "i32": (np.int32, TensorProto.INT32)}
U8, I8, U16, I16, I32 = (TensorProto.UINT8, TensorProto.INT8, TensorProto.UINT16, TensorProto.INT16,
                         TensorProto.INT32)


class QSuite(Suite):
    """A Suite whose run-time inputs may be integers (kind u8, i8, ...: uniform over the
    type's range; i32: within +-10^6)."""

    def qinp(self, shape: tuple, kind: str) -> str:
        name = self._fresh("q")
        dims = [d if isinstance(d, int) else "N" for d in shape]
        self.inputs.append(helper.make_tensor_value_info(name, _INT_KINDS[kind][1], dims))
        self.feed_specs[name] = (tuple(shape), kind)
        return name

    def feeds(self, batch: int, seed: int = 0) -> dict[str, np.ndarray]:
        out = {k: np.asarray(v) for k, v in super().feeds(batch, seed).items()}  # () gives a numpy scalar
        rng = np.random.default_rng(seed + 100)
        for name, (shape, kind) in self.feed_specs.items():
            if kind in _INT_KINDS:
                dt = np.dtype(_INT_KINDS[kind][0])
                lo, hi = (-10**6, 10**6) if kind == "i32" else (np.iinfo(dt).min, np.iinfo(dt).max)
                dims = tuple(batch if d == "N" else d for d in shape)
                out[name] = rng.integers(lo, hi, dims, endpoint=True).astype(dt)
        return out

    def qcase(self, name: str, build, elem: int) -> None:
        """A case whose output has element type `elem`."""
        assert name not in self.cases, name
        self._case = name
        self.output(name, build(self), elem)
        self.cases.append(name)


def _u8(*xs) -> np.ndarray:
    return np.array(xs, np.uint8)


def _i8(*xs) -> np.ndarray:
    return np.array(xs, np.int8)


def _scalar(a: np.ndarray) -> np.ndarray:
    return np.asarray(a).reshape(())


def _ties(s: QSuite, shape: tuple) -> str:
    """Whole numbers in [-16, 16): divided by a scale of 2 they tie at every odd one."""
    return s.node("Floor", [s.node("Mul", [s.inp(shape), s.init(_scalar(f32(8.0)))])])


def _quantize(s: QSuite) -> None:
    x = ("N", 3, 4)
    sc = _scalar(f32(0.05))
    for tag, zp, elem in (("u8", _scalar(_u8(128)), U8), ("i8", _scalar(_i8(-3)), I8),
                          ("u16", np.array(30000, np.uint16), U16), ("i16", np.array(-7, np.int16), I16)):
        s.qcase(f"q_tensor_{tag}", lambda s, zp=zp: s.node("QuantizeLinear", [s.inp(x), s.init(sc), s.init(zp)]),
                elem)
    s.qcase("q_no_zp_u8", lambda s: s.node("QuantizeLinear", [s.inp(x), s.init(sc)]), U8)
    s.qcase("q_output_dtype_i8", lambda s: s.node("QuantizeLinear", [s.inp(x), s.init(sc)],
                                                  output_dtype=TensorProto.INT8), I8)
    s.qcase("q_scale_shape1", lambda s: s.node("QuantizeLinear", [s.inp(x), s.init(f32(0.1)), s.init(_u8(7))]),
            U8)
    s.qcase("q_runtime_scale", lambda s: s.node("QuantizeLinear", [s.inp(x), s.inp((), "positive"),
                                                                    s.init(_scalar(_i8(5)))]), I8)
    for tag, axis, n in (("axis1", 1, 3), ("axis_m1", -1, 4), ("axis_m2", -2, 3)):
        sc_v = np.linspace(0.01, 0.2, n, dtype=np.float32)
        s.qcase(f"q_{tag}_u8", lambda s, axis=axis, sc_v=sc_v, n=n: s.node(
            "QuantizeLinear", [s.inp(x), s.init(sc_v), s.init(np.arange(n, dtype=np.uint8) * 50)], axis=axis), U8)
        s.qcase(f"q_{tag}_i8", lambda s, axis=axis, sc_v=sc_v, n=n: s.node(
            "QuantizeLinear", [s.inp(x), s.init(sc_v), s.init(np.arange(n, dtype=np.int8) * 40 - 60)], axis=axis),
                I8)
    s.qcase("q_axis0_static", lambda s: s.node("QuantizeLinear", [s.inp((2, 3)), s.init(f32(0.02, 0.3)),
                                                                   s.init(_u8(10, 200))], axis=0), U8)
    rng = np.random.default_rng(11)
    for tag, xs, sshape, axis, block in (("blocked_divides", (2, 3, 6), (2, 3, 3), 2, 2),
                                         ("blocked_remainder", (2, 5, 3), (2, 2, 3), 1, 3),
                                         ("blocked_m1", (4, 4), (4, 1), -1, 4)):
        bs = (rng.random(sshape) * 0.1 + 0.01).astype(np.float32)
        bz = rng.integers(-20, 20, sshape).astype(np.int8)
        s.qcase(f"q_{tag}", lambda s, xs=xs, bs=bs, bz=bz, axis=axis, block=block: s.node(
            "QuantizeLinear", [s.inp(xs), s.init(bs), s.init(bz)], axis=axis, block_size=block), I8)
    s.qcase("q_ties_u8", lambda s: s.node("QuantizeLinear", [_ties(s, x), s.init(_scalar(f32(2.0))),
                                                              s.init(_scalar(_u8(100)))]), U8)
    s.qcase("q_ties_i8", lambda s: s.node("QuantizeLinear", [_ties(s, x), s.init(_scalar(f32(2.0)))],
                                          output_dtype=TensorProto.INT8), I8)
    s.qcase("q_saturate_u8", lambda s: s.node("QuantizeLinear", [s.inp(x), s.init(_scalar(f32(0.002))),
                                                                  s.init(_scalar(_u8(128)))]), U8)
    s.qcase("q_saturate_i8", lambda s: s.node("QuantizeLinear", [s.inp(x), s.init(_scalar(f32(0.004))),
                                                                  s.init(_scalar(_i8(0)))], saturate=1), I8)
    s.qcase("q_saturate_i16", lambda s: s.node("QuantizeLinear", [s.inp(x), s.init(_scalar(f32(1e-5))),
                                                                   s.init(np.array(0, np.int16))]), I16)
    s.qcase("q_float16", lambda s: s.node("QuantizeLinear", [
        s.node("Cast", [s.inp(x)], to=TensorProto.FLOAT16), s.init(np.array(0.03, np.float16)),
        s.init(_scalar(_i8(1)))]), I8)


def _dequantize(s: QSuite) -> None:
    x = ("N", 3, 4)
    sc = _scalar(f32(0.05))
    for tag, zp in (("u8", _scalar(_u8(128))), ("i8", _scalar(_i8(-3))), ("u16", np.array(30000, np.uint16)),
                    ("i16", np.array(-7, np.int16))):
        s.case(f"dq_tensor_{tag}", lambda s, zp=zp, tag=tag: s.node(
            "DequantizeLinear", [s.qinp(x, tag), s.init(sc), s.init(zp)]))
    s.case("dq_no_zp_i8", lambda s: s.node("DequantizeLinear", [s.qinp(x, "i8"), s.init(sc)]))
    s.case("dq_int32", lambda s: s.node("DequantizeLinear", [s.qinp(x, "i32"), s.init(_scalar(f32(1e-3)))]))
    s.case("dq_runtime_scale", lambda s: s.node("DequantizeLinear", [s.qinp(x, "u8"), s.inp((), "positive"),
                                                                      s.init(_scalar(_u8(9)))]))
    for tag, axis, n in (("axis1", 1, 3), ("axis_m1", -1, 4)):
        sc_v = np.linspace(0.01, 0.2, n, dtype=np.float32)
        s.case(f"dq_{tag}_u8", lambda s, axis=axis, sc_v=sc_v, n=n: s.node(
            "DequantizeLinear", [s.qinp(x, "u8"), s.init(sc_v), s.init(np.arange(n, dtype=np.uint8) * 50)],
            axis=axis))
        s.case(f"dq_{tag}_i8", lambda s, axis=axis, sc_v=sc_v, n=n: s.node(
            "DequantizeLinear", [s.qinp(x, "i8"), s.init(sc_v), s.init(np.arange(n, dtype=np.int8) * 40 - 60)],
            axis=axis))
    rng = np.random.default_rng(12)
    for tag, xs, sshape, axis, block in (("blocked_divides", (2, 3, 6), (2, 3, 3), 2, 2),
                                         ("blocked_remainder", (2, 5, 3), (2, 2, 3), 1, 3)):
        bs = (rng.random(sshape) * 0.1 + 0.01).astype(np.float32)
        bz = rng.integers(0, 255, sshape).astype(np.uint8)
        s.case(f"dq_{tag}", lambda s, xs=xs, bs=bs, bz=bz, axis=axis, block=block: s.node(
            "DequantizeLinear", [s.qinp(xs, "u8"), s.init(bs), s.init(bz)], axis=axis, block_size=block))
    s.case("dq_float16_scale", lambda s: s.node("Cast", [s.node(
        "DequantizeLinear", [s.qinp(x, "i8"), s.init(np.array(0.0123, np.float16)), s.init(_scalar(_i8(2)))])],
        to=TensorProto.FLOAT))
    # a round trip: quantize then dequantize, per channel
    s.case("roundtrip_axis1", lambda s: s.node("DequantizeLinear", [s.node(
        "QuantizeLinear", [s.inp(x), s.init(f32(0.01, 0.02, 0.03)), s.init(_i8(-1, 0, 1))]),
        s.init(f32(0.01, 0.02, 0.03)), s.init(_i8(-1, 0, 1))]))


def _integer_matmul(s: QSuite) -> None:
    rng = np.random.default_rng(13)
    b_u8 = rng.integers(0, 256, (6, 5)).astype(np.uint8)
    b_i8 = rng.integers(-128, 128, (6, 5)).astype(np.int8)
    s.qcase("mmi_u8_u8", lambda s: s.node("MatMulInteger", [s.qinp(("N", 4, 6), "u8"), s.init(b_u8),
                                                             s.init(_scalar(_u8(12))), s.init(_scalar(_u8(200)))]),
            I32)
    s.qcase("mmi_u8_i8", lambda s: s.node("MatMulInteger", [s.qinp((4, 6), "u8"), s.init(b_i8),
                                                             s.init(_scalar(_u8(128)))]), I32)
    s.qcase("mmi_i8_i8_no_zp", lambda s: s.node("MatMulInteger", [s.qinp((3, 6), "i8"), s.qinp((6, 2), "i8")]),
            I32)
    # K = 300: 300 * 255 * 255 may pass 2^24, so the run-time operands multiply in double
    s.qcase("mmi_wide_k_inputs", lambda s: s.node("MatMulInteger", [s.qinp((2, 300), "u8"), s.qinp((300, 3), "u8")]),
            I32)
    for tag, elem, a_kind, b, zp in (("u8", U8, "u8", b_u8, _u8), ("i8", I8, "i8", b_i8, _i8)):
        for opset_tag in ("",):
            s.qcase(f"qlmm_{tag}{opset_tag}", lambda s, a_kind=a_kind, b=b, zp=zp: s.node("QLinearMatMul", [
                s.qinp(("N", 4, 6), a_kind), s.init(_scalar(f32(0.02))), s.init(_scalar(zp(3))),
                s.init(b), s.init(_scalar(f32(0.01))), s.init(_scalar(zp(5))),
                s.init(_scalar(f32(0.3))), s.init(_scalar(zp(7)))]), elem)
    s.qcase("qlmm_per_column", lambda s: s.node("QLinearMatMul", [
        s.qinp(("N", 4, 6), "u8"), s.init(_scalar(f32(0.02))), s.init(_scalar(_u8(3))),
        s.init(b_u8), s.init(np.linspace(0.005, 0.02, 5, dtype=np.float32)), s.init(_u8(0, 60, 128, 200, 255)),
        s.init(_scalar(f32(0.3))), s.init(_scalar(_u8(7)))]), U8)
    s.qcase("qlmm_runtime_scales", lambda s: s.node("QLinearMatMul", [
        s.qinp((4, 6), "u8"), s.inp((), "positive"), s.init(_scalar(_u8(100))),
        s.init(b_u8), s.inp((), "positive"), s.init(_scalar(_u8(120))),
        s.inp((), "positive"), s.init(_scalar(_u8(128)))]), U8)


def _integer_conv(s: QSuite) -> None:
    rng = np.random.default_rng(14)
    w_u8 = rng.integers(0, 256, (4, 2, 3, 3)).astype(np.uint8)
    w_i8 = rng.integers(-128, 128, (4, 2, 3, 3)).astype(np.int8)
    x = ("N", 2, 6, 5)
    s.qcase("convi_pads", lambda s: s.node("ConvInteger", [s.qinp(x, "u8"), s.init(w_u8), s.init(_scalar(_u8(30))),
                                                            s.init(_scalar(_u8(140)))], pads=[1, 1, 1, 1]), I32)
    s.qcase("convi_strides_no_zp", lambda s: s.node("ConvInteger", [s.qinp(x, "u8"), s.init(w_u8)],
                                                    strides=[2, 1]), I32)
    s.qcase("convi_group_dilation", lambda s: s.node("ConvInteger", [
        s.qinp(("N", 4, 7, 7), "u8"), s.init(w_u8[:, :1]), s.init(_scalar(_u8(5)))], group=4, dilations=[2, 2]), I32)
    b = rng.integers(-1000, 1000, 4).astype(np.int32)
    ws = np.array([0.01, 0.02, 0.005, 0.03], np.float32)
    s.qcase("qlconv_u8_bias", lambda s: s.node("QLinearConv", [
        s.qinp(x, "u8"), s.init(_scalar(f32(0.02))), s.init(_scalar(_u8(120))),
        s.init(w_u8), s.init(_scalar(f32(0.01))), s.init(_scalar(_u8(130))),
        s.init(_scalar(f32(1.5))), s.init(_scalar(_u8(100))), s.init(b)], pads=[1, 1, 1, 1]), U8)
    s.qcase("qlconv_u8_i8w_per_channel", lambda s: s.node("QLinearConv", [
        s.qinp(x, "u8"), s.init(_scalar(f32(0.03))), s.init(_scalar(_u8(128))),
        s.init(w_i8), s.init(ws), s.init(np.zeros(4, np.int8)),
        s.init(_scalar(f32(0.7))), s.init(_scalar(_u8(110)))], strides=[2, 2]), U8)
    s.qcase("qlconv_i8", lambda s: s.node("QLinearConv", [
        s.qinp(x, "i8"), s.init(_scalar(f32(0.03))), s.init(_scalar(_i8(-2))),
        s.init(w_i8), s.init(_scalar(f32(0.01))), s.init(_scalar(_i8(0))),
        s.init(_scalar(f32(0.5))), s.init(_scalar(_i8(4))), s.init(b)]), I8)


def suite21() -> QSuite:
    s = QSuite("quant21", 21)
    _quantize(s)
    _dequantize(s)
    return s


def suite10() -> QSuite:
    s = QSuite("quant10", 10)
    _integer_matmul(s)
    _integer_conv(s)
    return s


def suite13() -> QSuite:
    """Opset 13: per-axis quantization without block_size; DynamicQuantizeLinear."""
    s = QSuite("quant13", 13)
    x = ("N", 3, 4)
    s.qcase("q13_axis1", lambda s: s.node("QuantizeLinear", [s.inp(x), s.init(f32(0.01, 0.05, 0.1)),
                                                              s.init(_u8(0, 128, 255))]), U8)
    s.case("dq13_axis_m1", lambda s: s.node("DequantizeLinear", [s.qinp(x, "i8"), s.init(f32(0.1, 0.2, 0.3, 0.4)),
                                                                  s.init(_i8(-1, 0, 1, 2))], axis=-1))
    for k, elem in ((0, U8), (1, TensorProto.FLOAT), (2, U8)):
        s.qcase(f"dynamic_{k}", lambda s, k=k: s.node("DynamicQuantizeLinear", [s.inp((5, 7))], 3)[k], elem)
    s.qcase("dynamic_positive", lambda s: s.node("DynamicQuantizeLinear", [s.inp((3, 4), "positive")], 3)[0], U8)
    return s


SUITES = {"quant21": suite21, "quant10": suite10, "quant13": suite13}
_BUILT: dict[str, dict] = {}


def _onnxruntime(proto: onnx.ModelProto):
    import onnxruntime as ort
    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return lambda feeds: sess.run(None, feeds)


def _results(name: str) -> dict:
    """{case: {batch: (sofie, onnxruntime)}} of one suite, built and run once."""
    if name not in _BUILT:
        s = SUITES[name]()
        proto = s.model()
        m = sofie.compile(proto, name=name, blas="none")
        run = _onnxruntime(proto)
        order = [i[0] for i in m.inputs]
        res: dict[str, dict] = {c: {} for c in s.cases}
        for batch in BATCHES:
            feeds = s.feeds(batch, seed=batch)
            got = m(*[feeds[n] for n in order])
            for o, g, r in zip(s.outputs, got, run(feeds), strict=True):
                res[o.name][batch] = (g, r)
        _BUILT[name] = res
    return _BUILT[name]


def _params():
    for name, make in SUITES.items():
        for c in make().cases:
            yield pytest.param(name, c, id=f"{name}-{c}")


@pytest.mark.parametrize("suite,case", list(_params()))
def test_matches_onnxruntime_exactly(suite: str, case: str) -> None:
    res = _results(suite)
    assert sorted(res[case]) == sorted(BATCHES), f"{case}: compared at batches {sorted(res[case])}"
    for batch, (got, ref) in res[case].items():
        assert got.shape == ref.shape, f"{case}: shape {got.shape} != onnxruntime {ref.shape}"
        assert got.dtype == ref.dtype, f"{case}: dtype {got.dtype} != onnxruntime {ref.dtype}"
        np.testing.assert_array_equal(got, ref, err_msg=f"{case} batch {batch}")


def test_ties_round_half_to_even() -> None:
    """2.5 -> 2, 3.5 -> 4, -2.5 -> -2, 0.5 -> 0 (numbers spelled out, beyond agreeing with ORT)."""
    node = helper.make_node("QuantizeLinear", ["x", "s", "z"], ["y"], name="q")
    g = helper.make_graph([node], "ties", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [8])],
                          [helper.make_tensor_value_info("y", TensorProto.INT8, [8])],
                          [onnx.numpy_helper.from_array(_scalar(f32(1.0)), "s"),
                           onnx.numpy_helper.from_array(_scalar(_i8(0)), "z")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 21)])
    m.ir_version = 8
    x = f32(2.5, 3.5, -2.5, 0.5, -0.5, 1.5, 200.0, -1e9)
    (y,) = sofie.compile(m, blas="none")(x)
    np.testing.assert_array_equal(y, _i8(2, 4, -2, 0, 0, 2, 127, -128))


def test_matmul_integer_per_row_and_column_zero_points() -> None:
    """A zero point per row of A ([M]) and per column of B ([N]), as the spec defines them
    (onnxruntime takes one value only, onnx's reference broadcasts [M] as numpy would, against
    K): against numpy, exactly."""
    rng = np.random.default_rng(15)
    b = rng.integers(0, 256, (6, 5)).astype(np.uint8)
    azp, bzp = _u8(1, 2, 3, 250), _u8(0, 9, 100, 128, 255)
    node = helper.make_node("MatMulInteger", ["a", "b", "azp", "bzp"], ["y"], name="mmi")
    g = helper.make_graph([node], "rows", [helper.make_tensor_value_info("a", U8, ["N", 4, 6])],
                          [helper.make_tensor_value_info("y", I32, None)],
                          [onnx.numpy_helper.from_array(v, k) for v, k in ((b, "b"), (azp, "azp"), (bzp, "bzp"))])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 10)])
    m.ir_version = 8
    a = rng.integers(0, 256, (3, 4, 6)).astype(np.uint8)
    (y,) = sofie.compile(m, blas="none")(a)
    want = (a.astype(np.int32) - azp.astype(np.int32)[:, None]) @ (b.astype(np.int32) - bzp.astype(np.int32))
    assert y.dtype == np.int32
    np.testing.assert_array_equal(y, want)


def _qdq_conv() -> onnx.ModelProto:
    """The QDQ form exporters write: Q -> DQ of the input, DQ of a per-channel int8 weight,
    Conv + Relu in float, Q of the result."""
    rng = np.random.default_rng(16)
    inits = {"s": np.array(0.02, np.float32), "z": np.array(128, np.uint8),
             "w": rng.integers(-127, 128, (8, 4, 3, 3)).astype(np.int8),
             "ws": np.linspace(0.002, 0.01, 8, dtype=np.float32), "wz": np.zeros(8, np.int8),
             "ys": np.array(0.05, np.float32), "yz": np.array(10, np.uint8)}
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"]),
             helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["xd"]),
             helper.make_node("DequantizeLinear", ["w", "ws", "wz"], ["wd"], axis=0),
             helper.make_node("Conv", ["xd", "wd"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("QuantizeLinear", ["r", "ys", "yz"], ["y"])]
    g = helper.make_graph(nodes, "qdq", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4, 8, 8])],
                          [helper.make_tensor_value_info("y", U8, None)],
                          [onnx.numpy_helper.from_array(v, k) for k, v in inits.items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 21)])
    m.ir_version = 8
    return m


def test_qdq_conv_fuses_and_matches_onnxruntime() -> None:
    """Q and DQ of the input fuse into one loop, the weight's DQ folds, Relu rides in the conv's
    epilogue: two loops and a conv. onnxruntime runs the float graph as written (no QDQ fusion
    into QLinearConv); the float conv sums in another order, so a result a hair from a rounding
    boundary may land one step away: at most 1 apart, and nearly all equal."""
    import onnxruntime as ort
    proto = _qdq_conv()
    model = sofie.compile(proto, blas="none")
    assert model.stats["low_ops"]["low.generic"] == 2, model.stats["low_ops"]
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(proto.SerializeToString(), so, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(17).standard_normal((3, 4, 8, 8)).astype(np.float32)
    (got,), (want,) = model(x), sess.run(None, {"x": x})
    diff = np.abs(got.astype(np.int32) - want.astype(np.int32))
    assert got.dtype == np.uint8 and diff.max() <= 1 and (diff > 0).mean() < 0.01, diff.max()


def _accumulator_type(b: np.ndarray, k: int = 0) -> str:
    """The element type MatMulInteger(a: u8 [4, K], b, 0, 0) multiplies in."""
    from sofie.frontends.onnx import load_onnx
    inputs = [helper.make_tensor_value_info("a", U8, [4, b.shape[0] if b.ndim > 1 else k])]
    node = helper.make_node("MatMulInteger", ["a", "b"], ["y"], name="mmi")
    g = helper.make_graph([node], "acc", inputs, [helper.make_tensor_value_info("y", I32, None)],
                          [onnx.numpy_helper.from_array(b, "b")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 10)])
    (mm,) = [op for op in load_onnx(m).main.ops if op.name == "graph.matmul"]
    return mm.result.type.dtype


def test_integer_matmul_runs_in_float_only_when_exact() -> None:
    """float32 when 255 * (largest column sum of |b|) <= 2^24, from b's data: 258 columns of
    255 just fit, 259 do not; small values fit with any K up to the bound."""
    assert _accumulator_type(np.full((258, 3), 255, np.uint8)) == "f32"
    assert _accumulator_type(np.full((259, 3), 255, np.uint8)) == "f64"
    assert _accumulator_type(np.full((2000, 3), 30, np.uint8)) == "f32"
    assert _accumulator_type(np.full((2200, 3), 30, np.uint8)) == "f64"


# ---- what is refused, and how ----------------------------------------------------------------

def _one(op: str, inputs: list, opset: int = 21, **attrs) -> onnx.ModelProto:
    """One node; inputs are (name, elem, shape) graph inputs or arrays (initializers)."""
    ins, inits, names = [], [], []
    for k, i in enumerate(inputs):
        name = f"in{k}"
        if isinstance(i, tuple):
            ins.append(helper.make_tensor_value_info(name, i[0], list(i[1])))
        elif isinstance(i, TensorProto):  # a tensor numpy has no type for (int4)
            i.name = name
            inits.append(i)
        else:
            inits.append(onnx.numpy_helper.from_array(np.asarray(i), name))
        names.append(name)
    node = helper.make_node(op, names, ["out"], name="the_node", **attrs)
    g = helper.make_graph([node], "err", ins, [helper.make_tensor_value_info("out", TensorProto.UNDEFINED, None)],
                          inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    return m


_X = (TensorProto.FLOAT, (2, 3, 4))
ERRORS = {
    # float6 has no sofie element type (int4, int2, float8 and float4 do: tests/e2e/test_narrow_types.py)
    "float6_zero_point": (_one("QuantizeLinear", [_X, _scalar(f32(0.1)), (TensorProto.FLOAT6E2M3, ())]),
                          r"unsupported element type FLOAT6E2M3"),
    "float6_zero_point_initializer": (_one("QuantizeLinear", [_X, _scalar(f32(0.1)), helper.make_tensor(
        "z", TensorProto.FLOAT6E3M2, [], [1.0])]), r"tensor 'in2' has unsupported element type FLOAT6E3M2"),
    "float6_output_dtype": (_one("QuantizeLinear", [_X, _scalar(f32(0.1))], output_dtype=TensorProto.FLOAT6E2M3),
                            r"the_node.*output_dtype has unsupported element type FLOAT6E2M3"),
    "int32_output_dtype": (_one("QuantizeLinear", [_X, _scalar(f32(0.1))], output_dtype=TensorProto.INT32),
                           r"the_node.*unsupported element type i32"),
    "float6_x": (_one("DequantizeLinear", [(TensorProto.FLOAT6E2M3, (2, 3)), _scalar(f32(0.1))]),
                 r"unsupported element type FLOAT6E2M3"),
    "int4_x_float8_zero_point": (_one("DequantizeLinear", [(TensorProto.INT4, (2, 3)), _scalar(f32(0.1)),
                                                           (TensorProto.FLOAT8E4M3FN, ())]),
                                 r"the_node.*zero point is f8e4m3fn, x i4"),
    "bf16_result": (_one("QuantizeLinear", [_X, _scalar(f32(0.1))], output_dtype=TensorProto.BFLOAT16),
                    r"the_node.*result has unsupported element type bf16"),
    "axis_scale_length": (_one("QuantizeLinear", [_X, f32(0.1, 0.2)], axis=1),
                          r"the_node.*scale has shape \[2\], expected one value or \[3\]"),
    "axis_out_of_range": (_one("QuantizeLinear", [_X, f32(0.1, 0.2, 0.3)], axis=3),
                          r"the_node.*axis 3 is out of range"),
    "block_scale_shape": (_one("QuantizeLinear", [_X, np.ones((2, 3, 3), np.float32)], axis=2, block_size=2),
                          r"the_node.*scale has shape \[2, 3, 3\], expected \[2, 3, 2\]"),
    "zero_point_type": (_one("QuantizeLinear", [_X, f32(0.1, 0.2, 0.3), _u8(1, 2, 3).astype(np.int32)]),
                        r"the_node.*unsupported element type i32"),
    "matmul_integer_int16": (_one("MatMulInteger", [(TensorProto.INT16, (2, 3)), np.ones((3, 2), np.int16)],
                                  opset=10), r"the_node.*A is i16, expected u8 or i8"),
    "qlinear_matmul_per_row_scale": (_one("QLinearMatMul", [
        (U8, (2, 3)), f32(0.1, 0.2), _scalar(_u8(0)), np.ones((3, 2), np.uint8), _scalar(f32(0.1)),
        _scalar(_u8(0)), _scalar(f32(0.1)), _scalar(_u8(0))], opset=10), r"the_node.*a_scale must be one value"),
}


@pytest.mark.parametrize("case", list(ERRORS))
def test_refused_with_clear_error(case: str) -> None:
    model, pattern = ERRORS[case]
    with pytest.raises(SofieError, match=pattern):
        sofie.compile(model, name="err", blas="none")


def _qlinear_conv_3x3(w: np.ndarray, channels: int) -> onnx.ModelProto:
    """QLinearConv (u8 x and w, pads 1) on [N, C, 6, 6] with w [C, C, 3, 3]: a conv Winograd
    would take if it could."""
    inits = [onnx.numpy_helper.from_array(v, k) for k, v in {
        "xs": np.array(0.05, np.float32), "xz": np.array(128, np.uint8), "w": w,
        "ws": np.array(0.01, np.float32), "wz": np.array(120, np.uint8),
        "ys": np.array(0.5, np.float32), "yz": np.array(100, np.uint8)}.items()]
    node = helper.make_node("QLinearConv", ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz"], ["y"],
                            pads=[1, 1, 1, 1], name="qconv")
    g = helper.make_graph([node], "qconv", [helper.make_tensor_value_info("x", U8, ["N", channels, 6, 6])],
                          [helper.make_tensor_value_info("y", U8, None)], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])


def test_qlinear_conv_runs_in_float_without_winograd_when_exact() -> None:
    """|x - 128| <= 128 and each output channel's sum of |w - 120| bound the partial sums: below
    2^24 the conv runs in float32, marked exact so that it takes im2col + GEMM, never Winograd
    (whose transforms round), and matches onnxruntime bit for bit; above, it runs in double."""
    import onnxruntime as ort
    from onnx.reference import ReferenceEvaluator

    from sofie.frontends.onnx import load_onnx
    rng = np.random.default_rng(5)
    w = rng.integers(0, 256, (32, 32, 3, 3)).astype(np.uint8)
    proto = _qlinear_conv_3x3(w, 32)
    (conv,) = [op for op in load_onnx(proto).main.ops if op.name == "graph.conv"]
    assert conv.result.type.dtype == "f32" and conv.attr("exact") == 1
    model = sofie.compile(proto, blas="none")
    assert "winograd" not in open(model.header).read()
    x = rng.integers(0, 256, (3, 32, 6, 6)).astype(np.uint8)
    (got,) = model(x)
    np.testing.assert_array_equal(got, ReferenceEvaluator(proto).run(None, {"x": x})[0])
    # onnxruntime requantizes with a float32 multiplier, the reference in double: a value a
    # hair from a rounding boundary may land one step away
    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    diff = np.abs(got.astype(np.int32) - sess.run(None, {"x": x})[0].astype(np.int32))
    assert diff.max() <= 1 and (diff > 0).mean() < 0.001
    wide = np.full((4, 600, 3, 3), 255, np.uint8)  # 128 * 600 * 9 * 135 > 2^24
    (conv,) = [op for op in load_onnx(_qlinear_conv_3x3(wide, 600)).main.ops if op.name == "graph.conv"]
    assert conv.result.type.dtype == "f64"
