"""Elementwise chains exported by PyTorch fuse into one loop nest (no intermediate buffer) and
still match onnxruntime: SiLU (x * sigmoid(x)), GELU (its erf decomposition: Div, Erf, Add,
Mul, Mul) and a bias + activation chain. Tolerances: rtol 1e-5, atol 1e-6 (float32, vmath
functions within 2 ulp)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import sofie
from tests.conftest import ort_run


class Chains(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.linspace(-1, 1, 7))

    def forward(self, x):
        return nn.functional.silu(x), nn.functional.gelu(x), torch.tanh(torch.relu(x + self.bias)) * 0.5


@pytest.fixture(scope="module")
def chains(tmp_path_factory) -> str:
    path = str(tmp_path_factory.mktemp("chains") / "chains.onnx")
    torch.onnx.export(Chains().eval(), (torch.randn(2, 7),), path, input_names=["x"],
                      output_names=["silu", "gelu", "chain"], dynamic_axes={"x": {0: "N"}}, dynamo=False,
                      opset_version=17)  # before Gelu was an ONNX op: the erf decomposition
    return path


def test_chains_fuse_into_one_loop_each(chains: str) -> None:
    model = sofie.compile(chains, blas="none")
    # one loop per output; the GELU graph alone had 5 elementwise ops
    assert model.stats["low_ops"]["low.generic"] == 3, model.stats["low_ops"]
    assert "low.alloc" not in model.stats["low_ops"] and model.stats["arena_bytes"] == 0
    header = open(model.header).read()
    assert "sofie::rt::vmath::silu(" in header and "sofie::rt::vmath::erf(" in header
    x = np.random.default_rng(0).standard_normal((5, 7)).astype(np.float32) * 4
    x[0, :3] = [0.0, -0.0, 30.0]
    for got, want in zip(model(x), ort_run(chains, x), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
