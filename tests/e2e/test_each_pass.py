"""Each pass alone, compiled to C++ and run: the lowering handles what every pass produces."""

from __future__ import annotations

import os

import numpy as np
import pytest

import sofie
from sofie.passes.pass_manager import available_passes
from tests.conftest import ort_run
from tests.models import input_shape

PASSES = sorted(set(available_passes()) - {"plan-memory"})


@pytest.mark.parametrize("name", ["resnet_small", "mlp_5x200"])
@pytest.mark.parametrize("pass_name", PASSES)
def test_single_pass_compiles_and_matches(model_dir: str, name: str, pass_name: str) -> None:
    path = os.path.join(model_dir, name + ".onnx")
    m = sofie.compile(path, passes=[pass_name, "plan-memory"], blas="none")
    x = np.random.default_rng(5).standard_normal((2, *input_shape(name))).astype(np.float32)
    # float32 sums in another order than onnxruntime's (folded BatchNorm changes rounding too)
    np.testing.assert_allclose(m(x)[0], ort_run(path, x)[0], rtol=1e-4, atol=1e-5)
