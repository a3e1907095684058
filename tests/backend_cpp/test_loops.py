"""`low.generic` as C++: broadcasts, permutations and reductions over every loop order, built
from low IR text and checked against numpy (float32 sums of at most 5 terms: rtol 1e-6)."""

from __future__ import annotations

import numpy as np

import sofie

REDUCTIONS = """module @loops {
  func @main(%x: tensor<Nx3x5xf32>, %b: tensor<5xf32>) -> (tensor<Nx5xf32>, tensor<Nx3xf32>, tensor<5x3xNxf32>, tensor<Nx3x5xf32>) {
    %sum = low.output {index = 0} : tensor<Nx5xf32>
    low.generic %x, %sum {maps = [[0, 1, 2], [0, 2]], iterators = ["parallel", "reduction", "parallel"], body = "add(acc, x0)"}
    %max = low.output {index = 1} : tensor<Nx3xf32>
    low.generic %x, %max {maps = [[0, 1, 2], [0, 1]], iterators = ["parallel", "parallel", "reduction"], body = "max(acc, x0)", init = -inf}
    %t = low.output {index = 2} : tensor<5x3xNxf32>
    low.generic %x, %t {maps = [[2, 1, 0], [0, 1, 2]], iterators = ["parallel", "parallel", "parallel"], body = "x0"}
    %y = low.output {index = 3} : tensor<Nx3x5xf32>
    low.generic %x, %b, %y {maps = [[0, 1, 2], [2], [0, 1, 2]], iterators = ["parallel", "parallel", "parallel"], body = "select(gt(x0, x1), x0, neg(x1))"}
    return %sum, %max, %t, %y
  }
}
"""


def test_generic_loops_match_numpy(tmp_path) -> None:
    path = tmp_path / "loops.ir"
    path.write_text(REDUCTIONS)
    model = sofie.compile(str(path), blas="none")
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
