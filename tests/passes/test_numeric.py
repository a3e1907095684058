"""Every pass alone, and the default pipeline, keeps each model's numbers: the numpy
interpreter (sofie.ir.interpret) runs the graph before and after, onnxruntime is the reference.

Tolerances: rtol 1e-4, atol 1e-5 (float32; BN folding reassociates the affine map)."""

from __future__ import annotations

import numpy as np
import pytest

from sofie.frontends.onnx import load_onnx
from sofie.ir.interpret import run_function
from sofie.pipeline import GRAPH_PIPELINE as DEFAULT_PIPELINE
from sofie.pipeline import op_counts, run_pipeline

ort = pytest.importorskip("onnxruntime")

RTOL, ATOL = 1e-4, 1e-5
PASSES = ["infer-shapes", "fold-constants", "sink-transposes", "canonicalize", "fold-batchnorm", "fuse", "cse", "dce"]
MODEL_NAMES = ["tiny_resnet", "mlp", "shape_chain", "view"]
BATCHES = [1, 3]


def _reference(path: str, x: np.ndarray) -> np.ndarray:
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


def _input(shape: tuple[int, ...], batch: int) -> np.ndarray:
    return np.random.default_rng(batch).standard_normal((batch, *shape[1:])).astype(np.float32)


def _check(module, path: str, shape: tuple[int, ...]) -> None:
    for batch in BATCHES:
        x = _input(shape, batch)
        got = run_function(module, [x])[0]
        np.testing.assert_allclose(got, _reference(path, x), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_unoptimized_matches_onnxruntime(onnx_models, name) -> None:
    path, shape = onnx_models[name]
    _check(load_onnx(path), path, shape)


@pytest.mark.parametrize("pass_name", PASSES)
@pytest.mark.parametrize("name", MODEL_NAMES)
def test_pass_alone_keeps_numbers(onnx_models, name, pass_name) -> None:
    path, shape = onnx_models[name]
    m = load_onnx(path)
    run_pipeline(m, [pass_name])
    _check(m, path, shape)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_default_pipeline_keeps_numbers(onnx_models, name) -> None:
    path, shape = onnx_models[name]
    m = load_onnx(path)
    run_pipeline(m, DEFAULT_PIPELINE)
    _check(m, path, shape)


def test_pipeline_shapes_tiny_resnet(onnx_models) -> None:
    """BN all folded, every Relu fused (the residual Adds first), dropout gone."""
    m = load_onnx(onnx_models["tiny_resnet"][0])
    before = op_counts(m)
    run_pipeline(m, DEFAULT_PIPELINE)
    after = op_counts(m)
    assert before["graph.batch_normalization"] == 7 and before["graph.add"] == 2
    for gone in ("graph.batch_normalization", "graph.relu", "graph.add", "graph.dropout"):
        assert after[gone] == 0, after
    assert after["graph.conv"] == before["graph.conv"]
    fused = [op for op in m.main.ops if op.name == "graph.conv" and len(op.operands) > 3 and op.operands[3]]
    assert len(fused) == 2 and all(op.attr("activation") == "relu" for op in fused)


def test_pipeline_shapes_mlp(onnx_models) -> None:
    m = load_onnx(onnx_models["mlp"][0])
    run_pipeline(m, DEFAULT_PIPELINE)
    names = [op.name for op in m.main.ops if op.name != "graph.weight"]
    assert names == ["graph.gemm", "graph.gemm"], names
    assert [op.attr("activation") for op in m.main.ops if op.name == "graph.gemm"] == ["sigmoid", "tanh"]


def test_pipeline_resolves_shape_chain(onnx_models) -> None:
    m = load_onnx(onnx_models["shape_chain"][0])
    run_pipeline(m, DEFAULT_PIPELINE)
    names = sorted(op.name for op in m.main.ops if op.name != "graph.weight")
    assert names == ["graph.matmul", "graph.reshape"], names
    reshape = next(op for op in m.main.ops if op.name == "graph.reshape")
    target = m.constant_value(reshape.operands[1]).tolist()
    assert target[0] == 0 and len(target) == 2  # the batch copied; the rest spelled from the inferred type


def test_pipeline_resolves_exported_view(onnx_models) -> None:
    """torch's x.view(x.size(0), -1): the Shape/Gather/Unsqueeze/Concat chain is gone."""
    m = load_onnx(onnx_models["view"][0])
    run_pipeline(m, DEFAULT_PIPELINE)
    assert dict(op_counts(m)) == {"graph.conv": 1, "graph.reshape": 1, "graph.gemm": 1}
