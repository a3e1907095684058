"""Conv, ConvTranspose and pooling in 1, 2 and 3 spatial dims against onnxruntime.

The house pattern of test_ops.py: every case is an independent subgraph of ONE model (its
Suite), compiled once per configuration, run at two sizes of the symbolic batch N, one test
per case. Float32 at test_ops' tolerances (conv and pooling sum in another order than
onnxruntime); integer MaxPool exactly.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import sofie
from tests.e2e.test_ops import ATOL, BATCHES, RTOL, Suite

CONFIGS = [("O0", "none"), ("default", "openblas")]


def conv_suite() -> Suite:
    s = Suite("conv_pool", 19)
    rng = np.random.default_rng(11)

    def w(*shape):
        return rng.standard_normal(shape).astype(np.float32)

    # Conv 1-D (a 2-D conv of height 1) and 3-D (im2col of output-plane bands + GEMM)
    x1 = ("N", 4, 19)
    s.op("conv1d_plain", "Conv", [x1, w(6, 4, 3), w(6)])
    s.op("conv1d_pads_strides", "Conv", [x1, w(6, 4, 5), w(6)], pads=[2, 1], strides=[3])
    s.op("conv1d_dilations", "Conv", [x1, w(5, 4, 3)], dilations=[3], pads=[1, 2])
    s.op("conv1d_group2", "Conv", [x1, w(6, 2, 3), w(6)], group=2)
    s.op("conv1d_causal_depthwise", "Conv", [x1, w(4, 1, 4), w(4)], group=4, pads=[3, 0])
    s.op("conv1d_depthwise_mult2_strided", "Conv", [x1, w(8, 1, 3)], group=4, strides=[2], dilations=[2])
    for ap in ("SAME_UPPER", "SAME_LOWER", "VALID"):
        s.op(f"conv1d_{ap.lower()}", "Conv", [x1, w(6, 4, 4), w(6)], auto_pad=ap, strides=[2])
    s.op("conv1d_pointwise", "Conv", [x1, w(3, 4, 1), w(3)])
    x3 = ("N", 3, 5, 6, 7)
    s.op("conv3d_plain", "Conv", [x3, w(4, 3, 3, 3, 3), w(4)])
    s.op("conv3d_asym_pads", "Conv", [x3, w(4, 3, 2, 3, 2), w(4)], pads=[1, 0, 2, 0, 1, 1])
    s.op("conv3d_strides_dilations", "Conv", [x3, w(5, 3, 2, 2, 3)], strides=[2, 1, 2], dilations=[2, 2, 1])
    s.op("conv3d_group3_depthwise", "Conv", [x3, w(6, 1, 3, 3, 3), w(6)], group=3, pads=[1] * 6)
    s.op("conv3d_same_upper", "Conv", [x3, w(4, 3, 3, 3, 3), w(4)], auto_pad="SAME_UPPER", strides=[2, 2, 2])
    s.op("conv3d_pointwise", "Conv", [x3, w(2, 3, 1, 1, 1), w(2)])
    s.op("conv3d_big_planes", "Conv", [("N", 8, 6, 20, 20), w(8, 8, 3, 3, 3), w(8)], pads=[1] * 6)
    # Conv 2-D depthwise: the direct kernel, not a GEMM per channel
    x2 = ("N", 4, 9, 11)
    s.op("conv2d_depthwise_asym", "Conv", [x2, w(4, 1, 3, 2), w(4)], group=4, pads=[0, 1, 2, 0])
    s.op("conv2d_depthwise_strided_dilated", "Conv", [x2, w(8, 1, 3, 3)], group=4, strides=[2, 3],
         dilations=[2, 1], pads=[1, 1, 1, 1])
    s.op("conv2d_depthwise_1x1", "Conv", [x2, w(4, 1, 1, 1), w(4)], group=4)
    s.op("conv2d_single_channel", "Conv", [("N", 1, 7, 5), w(3, 1, 3, 3), w(3)], pads=[1, 0, 1, 0])

    # fused epilogues (default pipeline): residual Add then activation, in 1-D, 3-D, depthwise
    def fused(s: Suite, x, wt, b, **attrs) -> str:
        y = s.node("Conv", [s.inp(x), s.init(wt), s.init(b)], **attrs)
        z = s.inp(("N", wt.shape[0], *[d for d in x[2:]]))
        return s.node("Relu", [s.node("Add", [y, z])])
    s.case("conv1d_residual_relu", lambda s: fused(s, x1, w(5, 4, 3), w(5), pads=[1, 1]))
    s.case("conv3d_residual_relu", lambda s: fused(s, x3, w(2, 3, 3, 3, 3), w(2), pads=[1] * 6))
    s.case("conv2d_depthwise_residual_relu", lambda s: fused(s, x2, w(4, 1, 3, 3), w(4), group=4,
                                                             pads=[1, 1, 1, 1]))

    # BatchNormalization folded into the weights (default pipeline) around 1-D and 3-D convs
    def bn(s: Suite, x: str, c: int) -> str:
        return s.node("BatchNormalization", [x, s.init(w(c)), s.init(w(c)), s.init(w(c)),
                                             s.init(np.abs(w(c)) + 0.5)])
    s.case("conv1d_then_batchnorm", lambda s: bn(s, s.node("Conv", [s.inp(x1), s.init(w(5, 4, 3)), s.init(w(5))],
                                                           pads=[1, 1]), 5))
    s.case("batchnorm_then_conv3d", lambda s: s.node("Conv", [bn(s, s.inp(x3), 3), s.init(w(4, 3, 2, 2, 2)),
                                                              s.init(w(4))]))

    # ConvTranspose: GEMM + col2im
    t1, t2, t3 = ("N", 3, 6), ("N", 4, 5, 4), ("N", 2, 3, 4, 3)
    s.op("convT1d_plain", "ConvTranspose", [t1, w(3, 2, 3), w(2)])
    s.op("convT1d_strides_pads_outpad", "ConvTranspose", [t1, w(3, 4, 4)], strides=[3], pads=[1, 2],
         output_padding=[2])
    s.op("convT2d_plain", "ConvTranspose", [t2, w(4, 3, 3, 3), w(3)])
    s.op("convT2d_strides_pads", "ConvTranspose", [t2, w(4, 2, 3, 2), w(2)], strides=[2, 3], pads=[1, 0, 0, 1])
    s.op("convT2d_dilations", "ConvTranspose", [t2, w(4, 2, 2, 3)], dilations=[2, 3])
    s.op("convT2d_group2", "ConvTranspose", [t2, w(4, 3, 3, 3), w(6)], group=2, strides=[2, 2])
    s.op("convT2d_depthwise", "ConvTranspose", [t2, w(4, 1, 3, 3), w(4)], group=4, strides=[2, 1])
    s.op("convT2d_output_shape", "ConvTranspose", [t2, w(4, 2, 3, 3), w(2)], strides=[2, 2],
         output_shape=[12, 10])
    s.op("convT2d_output_shape_same_upper", "ConvTranspose", [t2, w(4, 2, 3, 3)], strides=[2, 2],
         output_shape=[10, 8], auto_pad="SAME_UPPER")
    s.op("convT2d_output_padding", "ConvTranspose", [t2, w(4, 2, 3, 3), w(2)], strides=[3, 2],
         output_padding=[1, 1], kernel_shape=[3, 3])
    for ap in ("SAME_UPPER", "SAME_LOWER", "VALID"):
        s.op(f"convT2d_{ap.lower()}", "ConvTranspose", [t2, w(4, 2, 4, 3), w(2)], auto_pad=ap, strides=[2, 3])
    s.op("convT3d_plain", "ConvTranspose", [t3, w(2, 3, 2, 3, 2), w(3)])
    s.op("convT3d_strides_pads", "ConvTranspose", [t3, w(2, 2, 3, 3, 3), w(2)], strides=[2, 1, 2],
         pads=[1, 0, 1, 1, 1, 0], dilations=[1, 2, 1])
    s.op("convT2d_1x1", "ConvTranspose", [t2, w(4, 3, 1, 1), w(3)])

    # windowed pooling in 1-3 D
    p1, p2, p3 = ("N", 3, 17), ("N", 2, 9, 10), ("N", 2, 6, 7, 5)
    for tag, x, k, extra in [("1d", p1, [3], dict(pads=[1, 2], strides=[2])),
                             ("2d", p2, [3, 2], dict(pads=[1, 0, 2, 1], strides=[2, 3])),
                             ("3d", p3, [2, 3, 2], dict(pads=[1, 0, 1, 0, 1, 1], strides=[2, 2, 1]))]:
        nd = len(k)
        s.op(f"maxpool{tag}", "MaxPool", [x], kernel_shape=k, **extra)
        s.op(f"maxpool{tag}_ceil_dilations", "MaxPool", [x], kernel_shape=k, ceil_mode=1,
             dilations=[2] * nd, strides=[2] * nd)
        s.op(f"maxpool{tag}_same_upper", "MaxPool", [x], kernel_shape=k, auto_pad="SAME_UPPER", strides=[2] * nd)
        for cip in (0, 1):
            s.op(f"avgpool{tag}_cip{cip}", "AveragePool", [x], kernel_shape=k, count_include_pad=cip, **extra)
            s.op(f"avgpool{tag}_ceil_cip{cip}", "AveragePool", [x], kernel_shape=k, count_include_pad=cip,
                 ceil_mode=1, strides=[2] * nd, pads=[1] * (2 * nd))
            s.op(f"avgpool{tag}_dilations_cip{cip}", "AveragePool", [x], kernel_shape=k, count_include_pad=cip,
                 dilations=[2] * nd, pads=[1] * (2 * nd))
        s.op(f"avgpool{tag}_same_lower", "AveragePool", [x], kernel_shape=k, auto_pad="SAME_LOWER")
        for p in (1, 2, 3):
            s.op(f"lppool{tag}_p{p}", "LpPool", [x], kernel_shape=k, p=p, **extra)
        s.op(f"lppool{tag}_dilations", "LpPool", [x], kernel_shape=k, dilations=[2] * nd)
    s.op("maxpool2d_storage_order1", "MaxPool", [p2], kernel_shape=[2, 2], storage_order=1)
    # the row kernels (window 2 or 3 wide, stride 1 or 2): rows long enough for whole vectors
    # and edge columns on both sides, window rows in chunks of 3, 2 and 1
    pw = ("N", 2, 9, 41)
    for kh, kw, st, pads in [(3, 3, 1, [1, 1, 1, 1]), (3, 3, 2, [1, 1, 1, 1]), (2, 2, 2, [0, 0, 0, 0]),
                             (5, 2, 1, [2, 1, 2, 0]), (4, 3, 2, [0, 2, 1, 2]), (1, 3, 1, [0, 0, 0, 0])]:
        s.op(f"maxpool2d_rows_k{kh}x{kw}_s{st}", "MaxPool", [pw], kernel_shape=[kh, kw], strides=[st, st],
             pads=pads)
    s.op("maxpool2d_rows_ceil", "MaxPool", [pw], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1],
         ceil_mode=1)
    for cip in (0, 1):  # ceil_mode: the last window of each row hangs past the end padding
        s.op(f"avgpool2d_ceil_overhang_cip{cip}", "AveragePool", [p2], kernel_shape=[3, 3], strides=[2, 2],
             pads=[1, 1, 1, 1], ceil_mode=1, count_include_pad=cip)

    # global pools, any rank
    for tag, x in [("1d", p1), ("2d", p2), ("3d", p3)]:
        s.op(f"global_maxpool{tag}", "GlobalMaxPool", [x])
        s.op(f"global_avgpool{tag}", "GlobalAveragePool", [x])
        for p in (1, 2, 3):
            s.op(f"global_lppool{tag}_p{p}", "GlobalLpPool", [x], p=p)
    return s


SUITE = conv_suite()
_RESULTS: dict[tuple, dict] = {}


def _compare(passes: str, blas: str) -> dict[str, dict[int, tuple[np.ndarray, np.ndarray]]]:
    """{case: {batch: (sofie, onnxruntime)}} for one configuration, compiled once."""
    if (passes, blas) not in _RESULTS:
        _RESULTS[(passes, blas)] = SUITE.run_both(passes, blas)
    return _RESULTS[(passes, blas)]


@pytest.mark.parametrize("passes,blas", CONFIGS)
@pytest.mark.parametrize("case", SUITE.cases)
def test_conv_pool_matches_onnxruntime(case: str, passes: str, blas: str) -> None:
    per_batch = _compare(passes, blas)[case]
    assert sorted(per_batch) == sorted(BATCHES)
    for batch, (got, ref) in per_batch.items():
        assert got.shape == ref.shape, f"{case}: shape {got.shape} != onnxruntime {ref.shape}"
        if case.startswith("maxpool"):  # a max is exact: the same bits (+-0 aside)
            np.testing.assert_array_equal(got, ref, err_msg=f"{case} batch {batch}")
        else:
            np.testing.assert_allclose(got, ref, rtol=RTOL, atol=ATOL, err_msg=f"{case} batch {batch}")


# ---- integer MaxPool (int8, uint8 in ONNX): exact -------------------------------------------------

INT_TYPES = {"u8": (TensorProto.UINT8, np.uint8), "i8": (TensorProto.INT8, np.int8)}
INT_CASES = {"maxpool2d_pads": ("MaxPool", ("N", 2, 7, 6), dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1])),
             "maxpool1d_ceil": ("MaxPool", ("N", 2, 9), dict(kernel_shape=[2], strides=[2], ceil_mode=1)),
             "maxpool3d_strides": ("MaxPool", ("N", 1, 4, 5, 3), dict(kernel_shape=[2, 2, 2], strides=[1, 2, 1]))}


def int_model(t: str) -> onnx.ModelProto:
    elem = INT_TYPES[t][0]
    nodes, ins, outs = [], [], []
    for name, (op, shape, attrs) in INT_CASES.items():
        ins.append(helper.make_tensor_value_info(f"{name}.x", elem, list(shape)))
        outs.append(helper.make_tensor_value_info(name, elem, None))
        nodes.append(helper.make_node(op, [f"{name}.x"], [name], name=name, **attrs))
    g = helper.make_graph(nodes, f"pool_{t}", ins, outs)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 19)])


@pytest.mark.parametrize("t", list(INT_TYPES))
def test_integer_max_pool_matches_onnxruntime(t: str) -> None:
    import onnxruntime as ort
    proto = int_model(t)
    m = sofie.compile(proto, name=f"pool_{t}")
    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    info = np.iinfo(INT_TYPES[t][1])
    rng = np.random.default_rng(5)
    for batch in BATCHES:
        feeds = {f"{n}.x": rng.integers(info.min, info.max, size=(batch, *shape[1:]), endpoint=True,
                                        dtype=INT_TYPES[t][1]) for n, (_, shape, _) in INT_CASES.items()}
        got = m(*[feeds[n] for n, _, _ in m.inputs])
        for name, g, r in zip(INT_CASES, got, sess.run(None, feeds), strict=True):
            np.testing.assert_array_equal(g, r, err_msg=f"{t} {name} batch {batch}")


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_max_pool_of_minus_infinity_is_minus_infinity(nd: int) -> None:
    """A window of -inf taps (masked scores, say) pools to -inf, as torch's max_pool gives;
    onnxruntime's CPU kernel starts its max at the lowest finite float and returns that, and
    onnx's reference fails on these pads, so torch is the reference here. Exact comparison."""
    import torch
    shape = [1, 2] + [4] * nd
    g = helper.make_graph([helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[2] * nd, pads=[1] * (2 * nd))],
                          "pool", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])
    x = np.full(shape, -np.inf, np.float32)
    x.reshape(-1)[::5] = 1.0
    got = sofie.compile(m, name=f"maxpool_ninf{nd}", blas="none")(x)[0]
    pool = getattr(torch.nn.functional, f"max_pool{nd}d")
    want = pool(torch.from_numpy(x), kernel_size=2, stride=1, padding=1).numpy()
    np.testing.assert_array_equal(got, want)
    assert np.isneginf(got).any()
