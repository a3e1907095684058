"""The reference PyTorch models, compiled with every BLAS choice, against onnxruntime."""

from __future__ import annotations

import os

import numpy as np
import pytest

import sofie
from tests.conftest import ort_run
from tests.models import MODELS, input_shape

BLAS = [pytest.param("openblas"), pytest.param("none"),
        pytest.param("cblas", marks=pytest.mark.needs_system_blas),
        pytest.param("eigen", marks=pytest.mark.needs_system_blas)]

# float32 GEMMs summed in another order than onnxruntime's: differences of a few ulps per
# accumulation, up to ~1e-5 relative on these depths
RTOL, ATOL = 1e-4, 1e-5


@pytest.mark.parametrize("blas", BLAS)
@pytest.mark.parametrize("name", list(MODELS))
def test_model_matches_onnxruntime(model_dir: str, name: str, blas: str) -> None:
    path = os.path.join(model_dir, name + ".onnx")
    m = sofie.compile(path, blas=blas)
    rng = np.random.default_rng(42)
    for batch in (1, 16):
        x = rng.standard_normal((batch, *input_shape(name))).astype(np.float32)
        (y,) = m(x)
        (ref,) = ort_run(path, x)
        assert y.shape == ref.shape
        np.testing.assert_allclose(y, ref, rtol=RTOL, atol=ATOL, err_msg=f"{name} {blas} batch {batch}")


@pytest.mark.parametrize("name", list(MODELS))
def test_unoptimized_matches_optimized(model_dir: str, name: str) -> None:
    """-O0 (passes=[]) and the default pipeline agree, and both agree with onnxruntime."""
    path = os.path.join(model_dir, name + ".onnx")
    x = np.random.default_rng(1).standard_normal((5, *input_shape(name))).astype(np.float32)
    y0 = sofie.compile(path, passes=[])(x)[0]
    y1 = sofie.compile(path)(x)[0]
    (ref,) = ort_run(path, x)
    np.testing.assert_allclose(y0, ref, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(y1, y0, rtol=RTOL, atol=ATOL)


def test_batches_above_max_batch_run_in_chunks(model_dir: str) -> None:
    path = os.path.join(model_dir, "mlp_5x200.onnx")
    m = sofie.compile(path, max_batch=4)
    x = np.random.default_rng(3).standard_normal((11, 200)).astype(np.float32)
    np.testing.assert_allclose(m(x)[0], ort_run(path, x)[0], rtol=RTOL, atol=ATOL)


def test_second_compile_is_cached(model_dir: str) -> None:
    path = os.path.join(model_dir, "linear_10x50.onnx")
    a = sofie.compile(path)
    mtime = os.path.getmtime(a.header)
    b = sofie.compile(path)
    assert b.folder == a.folder and os.path.getmtime(b.header) == mtime


def test_torch_module_compiles_directly() -> None:
    import torch
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(8, 4), torch.nn.Tanh()).eval()
    x = torch.randn(3, 8)
    m = sofie.compile(net, example_inputs=(x,))
    np.testing.assert_allclose(m(x.numpy())[0], net(x).detach().numpy(), rtol=1e-5, atol=1e-6)
