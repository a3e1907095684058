"""ResNet-18 exported from PyTorch (BatchNorm kept, dynamic batch): after the default
pipeline no BatchNormalization and no standalone Relu remain, the arena at batch 1 is at most
1.1x the most bytes ever live at once (conv scratch included: scratch is planned like any other
allocation), and the outputs match onnxruntime."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import sofie
from bench.models import export
from tests.conftest import ort_run

BIN = os.path.dirname(sys.executable)


@pytest.fixture(scope="module")
def resnet18(tmp_path_factory) -> str:
    return export("resnet18", str(tmp_path_factory.mktemp("resnet18")))


def test_stats_after_default_pipeline(resnet18: str, tmp_path) -> None:
    r = subprocess.run([f"{BIN}/sofie-compile", resnet18, "-o", str(tmp_path), "--stats"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    stats = json.load(open(tmp_path / "resnet18.stats.json"))
    assert "graph.batch_normalization" not in stats["ops"]
    assert "graph.relu" not in stats["ops"] and "graph.add" not in stats["ops"]
    assert stats["ops"]["graph.conv"] == 20
    # one third of every intermediate tensor of the model as exported (batch 1)
    assert stats["arena_bytes"] <= stats["intermediate_bytes_as_imported"] / 3
    # the plan is near the lower bound: the bytes live together at the worst point
    assert stats["arena_bytes"] <= 1.1 * stats["peak_live_bytes"], stats
    # 46.8 MB as exported. BatchNorm folded away; the stride-1 3x3 convs stored
    # Winograd-transformed at compile time: 56x56 and 28x28 at F(4x4) (36/9 of their weights,
    # 9.4 MB), 14x14 and 7x7 at F(2x2) (16/9, 62.9 MB); the rest 9.0 MB: 81.36 MB. The 14x14 and
    # 7x7 layers' GEMMs are gemm_small_n's, whose weights are padded to panels of 48 output
    # channels (256 -> 288, 512 -> 528): 3.5 MB more, 84.87 MB in all
    assert 84_600_000 < stats["weights_bytes"] < 85_100_000


def test_matches_onnxruntime(resnet18: str) -> None:
    m = sofie.compile(resnet18)
    x = np.random.default_rng(0).standard_normal((2, 3, 224, 224)).astype(np.float32)
    y = m(x)[0]
    ref = ort_run(resnet18, x)[0]
    # 20 convolutions deep: float32 rounding differences grow to ~1e-5 relative
    np.testing.assert_allclose(y, ref, rtol=1e-3, atol=1e-4)
    assert np.array_equal(np.argmax(y, 1), np.argmax(ref, 1))
