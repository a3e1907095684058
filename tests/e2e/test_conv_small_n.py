"""Convs whose GEMMs have few columns (sofie::rt::conv2d_small_n, sofie_rt/gemm_small_n.hxx)
against onnxruntime.

The kernel vectorizes over output channels with the weights packed at compile time in panels
of 48 rows, so the cases cover: channel counts that are not a multiple of 48 or 16 (a last
panel of 1..47 rows, M = 1), column counts that split into tiles unevenly (49 = 7 x 7, 16,
40, 196), K over one block (1100 and 2100 > 1024: partial sums stored, read back, and added to), pointwise convs
read in place and padded / strided / dilated / 1-D ones through im2col bands, and each
epilogue (bias or none, residual Add, ReLU, SiLU, Clip). The house pattern of
test_depthwise.py: compiled with no passes and with the default pipeline (fused), run at two
batch sizes.
"""

from __future__ import annotations

import numpy as np
import pytest

import sofie
from tests.e2e.test_ops import ATOL, BATCHES, RTOL, Suite

CONFIGS = [("O0", "none"), ("default", "openblas")]


def small_n_suite() -> Suite:
    s = Suite("small_n", 23)
    rng = np.random.default_rng(23)

    def w(*shape):
        return (rng.standard_normal(shape) / np.sqrt(np.prod(shape[1:]))).astype(np.float32)

    s.op("pw_7x7_m100", "Conv", [("N", 320, 7, 7), w(100, 320, 1, 1), w(100)])
    s.op("pw_7x7_m1_no_bias", "Conv", [("N", 400, 7, 7), w(1, 400, 1, 1)])
    s.op("pw_7x7_k_blocks", "Conv", [("N", 1100, 7, 7), w(52, 1100, 1, 1), w(52)])
    s.op("pw_4x4_three_k_blocks", "Conv", [("N", 2100, 4, 4), w(20, 2100, 1, 1), w(20)])
    s.op("pw_14x14_m20", "Conv", [("N", 576, 14, 14), w(20, 576, 1, 1), w(20)])
    s.op("c3x3_s2_14_to_7", "Conv", [("N", 40, 14, 14), w(33, 40, 3, 3), w(33)], strides=[2, 2],
         pads=[1, 1, 1, 1])
    s.op("c3x3_4x4_m130", "Conv", [("N", 64, 4, 4), w(130, 64, 3, 3)], pads=[1, 1, 1, 1])
    s.op("c3x3_dilated", "Conv", [("N", 64, 9, 9), w(24, 64, 3, 3), w(24)], dilations=[2, 2],
         pads=[2, 1, 2, 3])
    s.op("c1x1_s2_asym", "Conv", [("N", 336, 13, 11), w(49, 336, 1, 1), w(49)], strides=[2, 2])
    s.op("c1d_k3", "Conv", [("N", 128, 40), w(64, 128, 3), w(64)], pads=[1, 1])

    x7 = ("N", 512, 7, 7)

    def pointwise(s: Suite, m: int = 96) -> str:
        return s.node("Conv", [s.inp(x7), s.init(w(m, 512, 1, 1)), s.init(w(m))])
    s.case("pw_relu", lambda s: s.node("Relu", [pointwise(s)]))
    s.case("pw_relu6", lambda s: s.node("Clip", [pointwise(s), s.init(np.array(0, np.float32)),
                                                 s.init(np.array(6, np.float32))]))

    def silu(s: Suite) -> str:
        y = pointwise(s, 70)
        return s.node("Mul", [y, s.node("Sigmoid", [y])])
    s.case("pw_silu", silu)
    s.case("pw_residual_relu", lambda s: s.node("Relu", [s.node("Add", [pointwise(s, 112),
                                                                        s.inp(("N", 112, 7, 7))])]))

    def residual_k_blocks(s: Suite) -> str:  # the epilogue on the last of two K blocks
        y = s.node("Conv", [s.inp(("N", 1100, 4, 4)), s.init(w(50, 1100, 1, 1)), s.init(w(50))])
        return s.node("Relu", [s.node("Add", [y, s.inp(("N", 50, 4, 4))])])
    s.case("pw_k_blocks_residual_relu", residual_k_blocks)
    return s


SUITE = small_n_suite()
_RESULTS: dict[tuple, dict] = {}


def _compare(passes: str, blas: str) -> dict[str, dict[int, tuple[np.ndarray, np.ndarray]]]:
    if (passes, blas) not in _RESULTS:
        _RESULTS[(passes, blas)] = SUITE.run_both(passes, blas)
    return _RESULTS[(passes, blas)]


def test_kernel_choice() -> None:
    """Up to 64 GEMM columns take conv2d_small_n; more columns (196 with 96 output channels
    too: the main GEMM then reads B in place) and grouped convs stay sofie::rt::conv2d."""
    s = Suite("small_n_choice", 3)
    rng = np.random.default_rng(3)

    def conv(name: str, c: int, m: int, hw: tuple[int, int], group: int = 1) -> None:
        s.op(name, "Conv", [("N", c, *hw), rng.standard_normal((m, c // group, 1, 1)).astype(np.float32)],
             group=group)
    conv("c7x7", 320, 32, (7, 7))
    conv("c8x8_short_k", 16, 1, (8, 8))
    conv("c14x14_m96", 64, 96, (14, 14))
    conv("c14x14_m95", 64, 95, (14, 14))
    conv("c15x14_m96", 64, 96, (15, 14))
    conv("grouped", 640, 32, (7, 7), group=2)
    text = open(sofie.compile(s.model(), name="small_n_choice", blas="none").header).read()
    assert text.count("sofie::rt::conv2d_small_n(") == 2  # c7x7, c8x8_short_k
    assert text.count("sofie::rt::conv2d(") == 4


@pytest.mark.parametrize("passes,blas", CONFIGS)
@pytest.mark.parametrize("case", SUITE.cases)
def test_conv_small_n_matches_onnxruntime(case: str, passes: str, blas: str) -> None:
    per_batch = _compare(passes, blas)[case]
    assert sorted(per_batch) == sorted(BATCHES)
    for batch, (got, ref) in per_batch.items():
        assert got.shape == ref.shape, f"{case}: shape {got.shape} != onnxruntime {ref.shape}"
        np.testing.assert_allclose(got, ref, rtol=RTOL, atol=ATOL, err_msg=f"{case} batch {batch}")
