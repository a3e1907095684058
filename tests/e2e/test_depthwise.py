"""Depthwise Conv against onnxruntime: the direct kernel (conv2d_depthwise_small,
sofie_rt/depthwise_small.hxx; on AVX-512 rows of up to 16 outputs one register, wider ones in
chunks of 16 columns) for kW <= 8 and s_w 1 or 2, the phase-plane one (sofie::rt::conv2d_depthwise,
sofie_rt/depthwise.hxx) for the rest and for builds without AVX-512.

The phase-plane kernel packs each channel into stride-phase planes and computes whole vectors
across row ends, so the cases reach every part of it: 3x3 and 5x5 at stride 1 and 2 on
images smaller than one vector (7x7), odd (13x11) and several blocks of vectors wide
(30x37); asymmetric pads and pads wider than the kernel needs; strides 3 and (1, 2);
kernel shapes with a generic tap count (2x4, 7x7) and more taps than the tap table holds
(9x9); channel multipliers M/group of 2 and 3; 1-D; dilation (a separate row loop); and each
activation the fuse pass folds into the store, the residual Add among them, on rows narrower
than a vector's worth (the flat store) and of 32+ columns (the row store). The house pattern
of test_conv_pool.py: one model, compiled with no passes (activation as its own op) and with
the default pipeline (fused), run at two batch sizes.
"""

from __future__ import annotations

import numpy as np
import pytest

import sofie
from tests.e2e.test_ops import ATOL, BATCHES, RTOL, Suite

CONFIGS = [("O0", "none"), ("default", "openblas")]


def depthwise_suite() -> Suite:
    s = Suite("depthwise", 19)
    rng = np.random.default_rng(15)

    def w(*shape):
        return rng.standard_normal(shape).astype(np.float32)

    def dw(c: int, k: tuple[int, int], mult: int = 1) -> list:
        return [w(c * mult, 1, *k), w(c * mult)]

    for h, wd in [(7, 7), (13, 11), (30, 37)]:
        for k in (3, 5):
            for st in (1, 2):
                p = (k - 1) // 2
                s.op(f"dw{k}x{k}_s{st}_{h}x{wd}", "Conv", [("N", 5, h, wd), *dw(5, (k, k))], group=5,
                     strides=[st, st], pads=[p] * 4)
    x = ("N", 4, 13, 11)
    s.op("dw3x3_s2_asym_pads", "Conv", [x, *dw(4, (3, 3))], group=4, strides=[2, 2], pads=[0, 2, 1, 0])
    s.op("dw5x5_s1_asym_pads", "Conv", [x, *dw(4, (5, 5))], group=4, pads=[2, 0, 0, 3])
    s.op("dw3x3_wide_pads", "Conv", [x, *dw(4, (3, 3))], group=4, pads=[3, 4, 3, 2])
    s.op("dw3x3_no_pads_s2", "Conv", [x, w(4, 1, 3, 3)], group=4, strides=[2, 2])
    s.op("dw3x3_s3", "Conv", [x, *dw(4, (3, 3))], group=4, strides=[3, 3], pads=[1, 1, 1, 1])
    s.op("dw3x3_s1x2", "Conv", [x, *dw(4, (3, 3))], group=4, strides=[1, 2], pads=[1, 1, 1, 1])
    s.op("dw2x4_generic_taps", "Conv", [x, *dw(4, (2, 4))], group=4, pads=[1, 2, 0, 1])
    s.op("dw7x7", "Conv", [x, *dw(4, (7, 7))], group=4, pads=[3, 3, 3, 3])
    s.op("dw9x9_many_taps", "Conv", [("N", 3, 15, 12), *dw(3, (9, 9))], group=3, strides=[2, 1],
         pads=[4, 4, 4, 4])
    s.op("dw1x1_padded", "Conv", [x, *dw(4, (1, 1))], group=4, pads=[1, 0, 0, 1])
    s.op("dw3x3_s2_mult2", "Conv", [x, *dw(4, (3, 3), 2)], group=4, strides=[2, 2], pads=[1, 1, 1, 1])
    s.op("dw5x5_s1_mult3", "Conv", [("N", 2, 9, 10), *dw(2, (5, 5), 3)], group=2, pads=[2, 2, 2, 2])
    s.op("dw1d_k5_s2", "Conv", [("N", 3, 29), w(3, 1, 5), w(3)], group=3, strides=[2], pads=[2, 1])
    s.op("dw3x3_dilated", "Conv", [x, *dw(4, (3, 3))], group=4, dilations=[2, 2], pads=[2, 2, 2, 2])
    s.op("dw_big_image_s2", "Conv", [("N", 3, 57, 61), *dw(3, (3, 3))], group=3, strides=[2, 2],
         pads=[0, 0, 1, 1])

    # activations fused into the store by the default pipeline
    xa = ("N", 6, 14, 14)

    def conv(s: Suite, k: int, st: int) -> str:
        p = (k - 1) // 2
        return s.node("Conv", [s.inp(xa), s.init(w(6, 1, k, k)), s.init(w(6))], group=6, strides=[st, st],
                      pads=[p] * 4)
    s.case("dw_relu", lambda s: s.node("Relu", [conv(s, 3, 1)]))
    s.case("dw_relu6", lambda s: s.node("Clip", [conv(s, 3, 2), s.init(np.array(0, np.float32)),
                                                 s.init(np.array(6, np.float32))]))
    s.case("dw_hardswish", lambda s: s.node("HardSwish", [conv(s, 5, 1)]))
    s.case("dw_sigmoid", lambda s: s.node("Sigmoid", [conv(s, 5, 2)]))

    def silu(s: Suite, k: int, st: int) -> str:
        y = conv(s, k, st)
        return s.node("Mul", [y, s.node("Sigmoid", [y])])
    s.case("dw_silu_5x5_s2", lambda s: silu(s, 5, 2))
    s.case("dw_silu_3x3_s1", lambda s: silu(s, 3, 1))

    def residual(s: Suite) -> str:
        return s.node("Relu", [s.node("Add", [conv(s, 3, 1), s.inp(("N", 6, 14, 14))])])
    s.case("dw_residual_relu", residual)

    def wide_relu6(s: Suite) -> str:  # rows of 32+ columns: the epilogue in the row copy
        y = s.node("Conv", [s.inp(("N", 3, 30, 33)), s.init(w(3, 1, 3, 3)), s.init(w(3))], group=3,
                   pads=[1, 1, 1, 1])
        return s.node("Clip", [y, s.init(np.array(0, np.float32)), s.init(np.array(6, np.float32))])
    s.case("dw_relu6_wide_rows", wide_relu6)

    # MobileNet / EfficientNet shapes that take the small-image kernel (rows of <= 16 outputs,
    # sofie_rt/depthwise_small.hxx), channel counts not a multiple of 16, each epilogue
    def small(c: int, hw: tuple[int, int], k: int, st: int, pads: list[int], act: str):
        def build(s: Suite) -> str:
            y = s.node("Conv", [s.inp(("N", c, *hw)), s.init(w(c, 1, k, k)), s.init(w(c))], group=c,
                       strides=[st, st], pads=pads)
            if act == "relu6":
                return s.node("Clip", [y, s.init(np.array(0, np.float32)), s.init(np.array(6, np.float32))])
            if act == "silu":
                return s.node("Mul", [y, s.node("Sigmoid", [y])])
            if act == "residual":
                return s.node("Add", [y, s.inp(("N", c, *hw))])
            return y
        return build
    s.case("small_3x3_s1_7x7_relu6", small(20, (7, 7), 3, 1, [1] * 4, "relu6"))
    s.case("small_3x3_s2_14x14_relu6", small(19, (14, 14), 3, 2, [0, 0, 1, 1], "relu6"))
    s.case("small_3x3_s1_14x14_residual", small(17, (14, 14), 3, 1, [1] * 4, "residual"))
    s.case("small_5x5_s1_14x14_silu", small(18, (14, 14), 5, 1, [2] * 4, "silu"))
    s.case("small_5x5_s2_14x14_silu", small(21, (14, 14), 5, 2, [1, 1, 2, 2], "silu"))
    s.case("small_5x5_s1_7x7_odd_pads", small(16, (7, 7), 5, 1, [2, 1, 0, 3], "none"))
    s.case("small_3x3_s1_15x9", small(5, (15, 9), 3, 1, [1] * 4, "relu6"))
    s.case("small_3x3_s1_16x16", small(5, (16, 16), 3, 1, [1] * 4, "none"))
    # rows of more than 16 outputs: the AVX-512 wide path (chunks of 16 columns, several rows per step)
    s.case("wide_3x3_s1_17x17_relu6", small(5, (17, 17), 3, 1, [1] * 4, "relu6"))
    s.case("wide_3x3_s1_56x56_residual", small(3, (56, 56), 3, 1, [1] * 4, "residual"))
    s.case("wide_3x3_s1_33x57_silu", small(3, (33, 57), 3, 1, [1] * 4, "silu"))
    s.case("wide_3x3_s2_112_relu6", small(3, (21, 112), 3, 2, [1] * 4, "relu6"))
    s.case("wide_3x3_s2_65_tf_pads", small(3, (21, 65), 3, 2, [0, 0, 1, 1], "none"))
    s.case("wide_5x5_s1_28x28_silu", small(5, (28, 28), 5, 1, [2] * 4, "silu"))
    s.case("wide_5x5_s2_56_silu", small(3, (23, 56), 5, 2, [1, 1, 2, 2], "silu"))
    s.case("wide_5x5_s2_67", small(3, (11, 67), 5, 2, [2] * 4, "none"))
    s.op("wide_3x3_s1_mult2", "Conv", [("N", 3, 11, 35), *dw(3, (3, 3), 2)], group=3, pads=[1, 1, 1, 1])
    s.op("wide_4x6_s2_no_bias", "Conv", [("N", 2, 12, 50), w(2, 1, 4, 6)], group=2, strides=[2, 2],
         pads=[1, 2, 2, 3])
    s.op("wide_7x7_s1", "Conv", [("N", 2, 9, 40), *dw(2, (7, 7))], group=2, pads=[3, 3, 3, 3])
    s.op("wide_1d_k8_s2", "Conv", [("N", 3, 90), w(3, 1, 8), w(3)], group=3, strides=[2], pads=[3, 4])
    return s


SUITE = depthwise_suite()
_RESULTS: dict[tuple, dict] = {}


def _compare(passes: str, blas: str) -> dict[str, dict[int, tuple[np.ndarray, np.ndarray]]]:
    """{case: {batch: (sofie, onnxruntime)}} for one configuration, compiled once."""
    if (passes, blas) not in _RESULTS:
        _RESULTS[(passes, blas)] = SUITE.run_both(passes, blas)
    return _RESULTS[(passes, blas)]


def test_kernel_choice() -> None:
    """Depthwise convs of kW <= 8 and s_w 1 or 2 take the direct kernel (sofie_rt/depthwise_small.hxx)
    whatever their row width; s_w 3, kW 9 and dilated ones the phase-plane one (through
    sofie::rt::conv2d)."""
    s = Suite("dw_choice", 3)
    rng = np.random.default_rng(3)
    for name, hw, k, st, dil in [("small", (14, 14), 3, 1, 1), ("edge", (9, 16), 3, 1, 1), ("wide", (9, 17), 3, 1, 1),
                                 ("wide_s2", (9, 113), 5, 2, 1), ("k8", (9, 40), 8, 1, 1), ("s3", (9, 60), 3, 3, 1),
                                 ("k9", (9, 40), 9, 1, 1), ("dilated", (9, 9), 3, 1, 2)]:
        s.op(name, "Conv", [("N", 4, *hw), rng.standard_normal((4, 1, k, k)).astype(np.float32)], group=4,
             pads=[dil * (k // 2)] * 4, strides=[st, st], dilations=[dil, dil])
    text = open(sofie.compile(s.model(), name="dw_choice", blas="none").header).read()
    assert text.count("sofie::rt::conv2d_depthwise_small(") == 5  # small, edge, wide, wide_s2, k8
    assert text.count("sofie::rt::conv2d(") == 3  # s3, k9, dilated


@pytest.mark.parametrize("passes,blas", CONFIGS)
@pytest.mark.parametrize("case", SUITE.cases)
def test_depthwise_matches_onnxruntime(case: str, passes: str, blas: str) -> None:
    per_batch = _compare(passes, blas)[case]
    assert sorted(per_batch) == sorted(BATCHES)
    for batch, (got, ref) in per_batch.items():
        assert got.shape == ref.shape, f"{case}: shape {got.shape} != onnxruntime {ref.shape}"
        np.testing.assert_allclose(got, ref, rtol=RTOL, atol=ATOL, err_msg=f"{case} batch {batch}")
