"""Each pass alone, compiled to C++ and run: the lowering handles what every pass produces."""

from __future__ import annotations

import os

import numpy as np
import pytest

import sofie
from sofie.pipeline import available_passes
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


def test_O0_runs_no_pass(model_dir: str, tmp_path) -> None:
    import json
    import subprocess
    import sys
    cmd = [f"{os.path.dirname(sys.executable)}/sofie-compile", os.path.join(model_dir, "resnet_small.onnx"),
           "-o", str(tmp_path), "--name", "net", "--stats"]
    stats = {}
    for flag in ("-O0", None):
        r = subprocess.run(cmd + ([flag] if flag else []), capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        stats[flag] = json.load(open(tmp_path / "net.stats.json"))
    # -O0 runs no optimizing pass; f16 widening, lowering and the memory plan always run (lowering
    # and the printer need them)
    assert [p["name"] for p in stats["-O0"]["passes"]] == ["widen-f16", "lower", "plan-memory"]
    assert stats["-O0"]["ops"]["graph.batch_normalization"] == 6
    assert "graph.batch_normalization" not in stats[None]["ops"]
    # fusion and folding leave fewer tensors to compute
    assert stats[None]["intermediate_bytes"] < stats["-O0"]["intermediate_bytes"]
