"""IR text as a model: sofie-opt's output compiles, through sofie-compile and sofie.compile, to
the same code and the same numbers as the ONNX model it came from.

Against the direct compile the outputs must be bitwise equal (same weights, same kernels); against
onnxruntime the tolerance of tests/e2e/test_models.py (float32 sums in another order).
"""

from __future__ import annotations

import os

import numpy as np

import sofie
from sofie.frontends.onnx import load_onnx
from sofie.ir.printer import print_module
from tests.conftest import ort_run
from tests.e2e.test_errors import cli
from tests.e2e.test_models import ATOL, RTOL
from tests.models import input_shape


def check_same_as_onnx(ir_path: str, onnx_path: str, name: str) -> None:
    x = np.random.default_rng(5).standard_normal((7, *input_shape(name))).astype(np.float32)
    (y_ir,) = sofie.compile(ir_path)(x)
    (y_onnx,) = sofie.compile(onnx_path)(x)
    np.testing.assert_array_equal(y_ir, y_onnx)
    np.testing.assert_allclose(y_ir, ort_run(onnx_path, x)[0], rtol=RTOL, atol=ATOL)


def test_sofie_opt_output_compiles_like_the_model(model_dir: str, tmp_path) -> None:
    onnx_path = os.path.join(model_dir, "resnet_small.onnx")
    ir_path = str(tmp_path / "resnet_small.ir")
    r = cli("sofie-opt", onnx_path, "--fold-batchnorm", "--fuse", "-o", ir_path)
    assert r.returncode == 0, r.stderr
    for model, out in ((ir_path, "from_ir"), (onnx_path, "from_onnx")):
        r = cli("sofie-compile", model, "-o", str(tmp_path / out))
        assert r.returncode == 0, r.stderr
    ir, direct = tmp_path / "from_ir", tmp_path / "from_onnx"
    assert (ir / "resnet_small.dat").read_bytes() == (direct / "resnet_small.dat").read_bytes()
    ir_hxx, direct_hxx = ((d / "resnet_small.hxx").read_text().split("\n", 1) for d in (ir, direct))
    assert ir_hxx[0].endswith("from resnet_small.ir.")  # the first line names the source, the rest is equal
    assert ir_hxx[1] == direct_hxx[1]
    check_same_as_onnx(ir_path, onnx_path, "resnet_small")


def test_a_200x200_weight_is_printed_and_recompiles(model_dir: str, tmp_path) -> None:
    onnx_path = os.path.join(model_dir, "mlp_5x200.onnx")
    text = print_module(load_onnx(onnx_path))
    assert 'weight "0.weight" : tensor<200x200xf32> = dense_resource' in text
    assert "elided" not in text
    ir_path = tmp_path / "mlp.sofie"
    ir_path.write_text(text)
    check_same_as_onnx(str(ir_path), onnx_path, "mlp_5x200")
