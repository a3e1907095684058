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
