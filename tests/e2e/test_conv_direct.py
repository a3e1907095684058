"""Convs of few taps per output over wide rows (sofie::rt::conv2d_direct, sofie_rt/conv_direct.hxx)
against onnxruntime.

The kernel reads each tap of an output row from the image's stride-phase planes through a
table of offsets, 6 output channels by up to 64 output columns a tile, so the cases cover:
output channel counts that leave a partial row tile (13, 1, 2, 64 = 10 x 6 + 4), row widths
that leave a masked last vector or a narrower last tile (33, 35, 48, 50, 97), strides 1 and 2
and unequal (1, 2) and (3, 1), symmetric, asymmetric and one-sided pads (the planes' zero
columns and rows), even and odd kernels up to the 192-tap limit (3 x 8 x 8), one input
channel, and each epilogue (bias or none, a residual Add, ReLU, Clip, SiLU: the activations
outside the register kernels' clamp). Then the conv fused with the MaxPool that alone reads it
(conv2d_direct_max_pool, passes/low/fuse_conv_pool.py): ResNet's stem, 2x2 and 3x2 windows,
column strides 1 and 2, row strides 1 to 3, a 5-row window, pads on some sides, ceil_mode (a last
window past the conv's rows), each epilogue, and with intra-op threads. The house pattern of
test_conv_small_n.py: compiled with no passes and with the default pipeline (fused), run at two
batch sizes.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest

import sofie
from tests.e2e.test_ops import ATOL, BATCHES, RTOL, Suite

CONFIGS = [("O0", "none"), ("default", "openblas")]


def direct_suite() -> Suite:
    s = Suite("direct", 17)
    rng = np.random.default_rng(29)

    def w(*shape):
        return (rng.standard_normal(shape) / np.sqrt(np.prod(shape[1:]))).astype(np.float32)

    s.op("stem_7x7_s2", "Conv", [("N", 3, 70, 70), w(64, 3, 7, 7), w(64)], strides=[2, 2],
         pads=[3, 3, 3, 3])
    s.op("c3x3_s2_one_sided_pads", "Conv", [("N", 3, 67, 67), w(32, 3, 3, 3), w(32)], strides=[2, 2],
         pads=[0, 0, 1, 1])
    s.op("c3x3_s1_m13", "Conv", [("N", 3, 40, 35), w(13, 3, 3, 3), w(13)], pads=[1, 1, 1, 1])
    s.op("c5x5_one_channel_m2", "Conv", [("N", 1, 52, 101), w(2, 1, 5, 5), w(2)])
    s.op("c5x5_m1_no_bias", "Conv", [("N", 2, 20, 52), w(1, 2, 5, 5)], pads=[2, 1, 0, 3])
    s.op("c8x8_192_taps", "Conv", [("N", 3, 30, 71), w(7, 3, 8, 8), w(7)], strides=[1, 2],
         pads=[4, 3, 3, 4])
    s.op("c4x6_s3x1", "Conv", [("N", 4, 31, 50), w(10, 4, 4, 6), w(10)], strides=[3, 1],
         pads=[1, 2, 2, 3])
    s.op("c2x2_s2_w97", "Conv", [("N", 5, 9, 194), w(6, 5, 2, 2), w(6)], strides=[2, 2])
    s.op("c1x1_s2_w48", "Conv", [("N", 16, 5, 96), w(20, 16, 1, 1), w(20)], strides=[1, 2])

    x = ("N", 3, 66, 66)

    def stem(s: Suite, m: int = 24) -> str:
        return s.node("Conv", [s.inp(x), s.init(w(m, 3, 3, 3)), s.init(w(m))], strides=[2, 2],
                      pads=[1, 1, 1, 1])
    s.case("relu", lambda s: s.node("Relu", [stem(s)]))
    s.case("relu6", lambda s: s.node("Clip", [stem(s), s.init(np.array(0, np.float32)),
                                              s.init(np.array(6, np.float32))]))

    def silu(s: Suite) -> str:
        y = stem(s, 17)
        return s.node("Mul", [y, s.node("Sigmoid", [y])])
    s.case("silu", silu)
    s.case("residual_relu", lambda s: s.node("Relu", [s.node("Add", [stem(s, 20), s.inp(("N", 20, 33, 33))])]))

    # a MaxPool reading the conv alone: conv2d_direct_max_pool (fuse-conv-pool) in the default
    # pipeline, conv2d_direct then max_pool at O0
    def pooled(s: Suite, conv_attrs: dict, act: str | None, shape=(3, 70, 70), m: int = 64, k: int = 7,
               bias: bool = True, **pool) -> str:
        ins = [s.inp(("N", *shape)), s.init(w(m, shape[0], k, k))] + ([s.init(w(m))] if bias else [])
        y = s.node("Conv", ins, **conv_attrs)
        if act == "relu":
            y = s.node("Relu", [y])
        elif act == "relu6":
            y = s.node("Clip", [y, s.init(np.array(0, np.float32)), s.init(np.array(6, np.float32))])
        elif act == "silu":
            y = s.node("Mul", [y, s.node("Sigmoid", [y])])
        return s.node("MaxPool", [y], **pool)
    s2p = {"strides": [2, 2], "pads": [3, 3, 3, 3]}
    s.case("pool_resnet_stem", lambda s: pooled(s, s2p, "relu", kernel_shape=[3, 3], strides=[2, 2],
                                                 pads=[1, 1, 1, 1]))
    s.case("pool_2x2_no_bias", lambda s: pooled(s, {"pads": [1, 1, 1, 1]}, "relu6", (3, 40, 66), 13, 3, False,
                                                 kernel_shape=[2, 2], strides=[2, 2]))
    s.case("pool_ceil_mode", lambda s: pooled(s, {"strides": [2, 2]}, "relu", (3, 67, 67), 10, 3,
                                               kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1))
    s.case("pool_3x2_s1_pads", lambda s: pooled(s, {"pads": [1, 1, 1, 1]}, "silu", (2, 21, 45), 7, 3,
                                                 kernel_shape=[3, 2], strides=[1, 1], pads=[1, 0, 1, 1]))
    s.case("pool_5_rows_s3x2", lambda s: pooled(s, {"pads": [2, 2, 2, 2]}, None, (1, 30, 64), 20, 5,
                                                 kernel_shape=[5, 3], strides=[3, 2], pads=[2, 1, 2, 1]))
    return s


SUITE = direct_suite()
_RESULTS: dict[tuple, dict] = {}


def _compare(passes: str, blas: str) -> dict[str, dict[int, tuple[np.ndarray, np.ndarray]]]:
    if (passes, blas) not in _RESULTS:
        _RESULTS[(passes, blas)] = SUITE.run_both(passes, blas)
    return _RESULTS[(passes, blas)]


def test_kernel_choice() -> None:
    """Up to 192 taps, s_w 1 or 2, dilation 1, group 1 and 32 or more output columns take
    conv2d_direct; one past any of these limits stays sofie::rt::conv2d, and so does a pointwise
    conv (its GEMM reads X in place)."""
    s = Suite("direct_choice", 17)
    rng = np.random.default_rng(5)

    def conv(name: str, c: int, k: int, hw: tuple[int, int], group: int = 1, **attrs) -> None:
        s.op(name, "Conv", [("N", c, *hw), rng.standard_normal((8, c // group, k, k)).astype(np.float32)],
             group=group, **attrs)
    conv("taps_147", 3, 7, (40, 40))
    conv("taps_192", 3, 8, (40, 40))
    conv("columns_32", 2, 3, (40, 34))
    conv("taps_196", 4, 7, (40, 40))
    conv("columns_31", 2, 3, (40, 33))
    conv("stride_w_3", 2, 3, (40, 100), strides=[1, 3])
    conv("dilated", 2, 3, (40, 40), dilations=[2, 2])
    conv("grouped", 4, 3, (40, 40), group=2)
    conv("pointwise", 16, 1, (40, 40))
    text = open(sofie.compile(s.model(), name="direct_choice", blas="none").header).read()
    assert text.count("sofie::rt::conv2d_direct(") == 3
    assert text.count("sofie::rt::conv2d(") == 6


def test_pool_fusion_choice() -> None:
    """The default pipeline fuses each pooled case's conv and MaxPool (5 of them); a MaxPool
    whose conv output is also an output of the model stays a max_pool of its own."""
    text = open(sofie.compile(SUITE.model(), name="direct_fused", blas="none").header).read()
    assert text.count("sofie::rt::conv2d_direct_max_pool(") == 5
    s = Suite("direct_shared", 17)
    rng = np.random.default_rng(3)

    def shared(s: Suite) -> str:
        y = s.node("Conv", [s.inp(("N", 3, 40, 40)), s.init(rng.standard_normal((8, 3, 3, 3)).astype(np.float32))],
                   pads=[1, 1, 1, 1])
        s.outputs.append(onnx.helper.make_tensor_value_info(y, onnx.TensorProto.FLOAT, None))
        return s.node("MaxPool", [y], kernel_shape=[3, 3], strides=[2, 2])
    s.case("shared", shared)
    text = open(sofie.compile(s.model(), name="direct_shared", blas="none").header).read()
    assert "conv2d_direct_max_pool(" not in text and text.count("sofie::rt::conv2d_direct(") == 1


def test_pool_fusion_intra_op_threads_bitwise() -> None:
    """With 2 intra-op threads the fused stem shares out output channels: the same bits as 1."""
    s = Suite("direct_threads", 17)
    rng = np.random.default_rng(4)
    s.case("stem", lambda s: s.node("MaxPool", [s.node("Relu", [s.node("Conv", [
        s.inp(("N", 3, 64, 64)), s.init(rng.standard_normal((64, 3, 7, 7)).astype(np.float32)),
        s.init(rng.standard_normal(64).astype(np.float32))], strides=[2, 2], pads=[3, 3, 3, 3])])],
        kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]))
    one = sofie.compile(s.model(), name="direct_threads", blas="none")
    two = sofie.compile(s.model(), name="direct_threads", blas="none", intra_op_threads=2)
    assert "conv2d_direct_max_pool(" in open(one.header).read()
    x = rng.standard_normal((2, 3, 64, 64)).astype(np.float32)
    assert np.array_equal(one(x)[0], two(x)[0])


@pytest.mark.parametrize("passes,blas", CONFIGS)
@pytest.mark.parametrize("case", SUITE.cases)
def test_conv_direct_matches_onnxruntime(case: str, passes: str, blas: str) -> None:
    per_batch = _compare(passes, blas)[case]
    assert sorted(per_batch) == sorted(BATCHES)
    for batch, (got, ref) in per_batch.items():
        assert got.shape == ref.shape, f"{case}: shape {got.shape} != onnxruntime {ref.shape}"
        np.testing.assert_allclose(got, ref, rtol=RTOL, atol=ATOL, err_msg=f"{case} batch {batch}")
