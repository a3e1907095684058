"""`low.generic` as C++: broadcasts, permutations and reductions over every loop order, built
from low IR text and checked against numpy (float32 sums of at most 5 terms: rtol 1e-6)."""

from __future__ import annotations

import os

import numpy as np

import sofie

HERE = os.path.dirname(os.path.abspath(__file__))


def test_generic_loops_match_numpy() -> None:
    model = sofie.compile(os.path.join(HERE, "generic_loops.ir"), blas="none")
    rng = np.random.default_rng(0)
    b = rng.standard_normal(5).astype(np.float32)
    for n in (1, 4):
        x = rng.standard_normal((n, 3, 5)).astype(np.float32)
        total, peak, perm, sel = model(x, b)
        np.testing.assert_allclose(total, x.sum(axis=1), rtol=1e-6, atol=1e-6)
        np.testing.assert_array_equal(peak, x.max(axis=2))
        np.testing.assert_array_equal(perm, x.transpose(2, 1, 0))
        np.testing.assert_array_equal(sel, np.where(x > b, x, -b))
    text = open(model.header).read()
    assert "float acc = -std::numeric_limits<float>::infinity();" in text


TRANSPOSE = """module @tiled {
  func @main(%x: tensor<Nx70x45xf32>) -> (tensor<Nx45x70xf32>) {
    %t = low.output {index = 0} : tensor<Nx45x70xf32>
    low.generic %x, %t {maps = [[0, 2, 1], [0, 1, 2]], iterators = ["parallel", "parallel", "parallel"], body = "x0"}
    return %t
  }
}
"""


def test_transpose_is_tiled_and_exact_at_ragged_edges(tmp_path) -> None:
    """The innermost loop reads x across rows, so it and the loop x walks contiguously run in
    32 x 32 blocks; 70 and 45 are not multiples of 32, so the last blocks are partial."""
    path = tmp_path / "tiled.ir"
    path.write_text(TRANSPOSE)
    model = sofie.compile(str(path), blas="none")
    text = open(model.header).read()
    assert "i1b += 32" in text and "i2b += 32" in text, text
    x = np.random.default_rng(1).standard_normal((2, 70, 45)).astype(np.float32)
    (t,) = model(x)
    np.testing.assert_array_equal(t, x.transpose(0, 2, 1))
