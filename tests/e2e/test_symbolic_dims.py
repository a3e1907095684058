"""Dims beyond the batch: one build runs every value of each symbol up to its maximum, and
shape arithmetic over symbols (x.size(0) * x.size(1), channel shuffle) folds at compile time.
Outputs are compared with onnxruntime at rtol 1e-5, atol 1e-6 (float32, same operation order
up to the GEMM's summation)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch import nn

import sofie
from sofie.ir.parser import parse
from sofie.ir.verifier import verify
from sofie.pipeline import run_pipeline
from tests.conftest import ort_run

RTOL, ATOL = 1e-5, 1e-6


class ParticleMLP(nn.Module):
    """Per-particle MLP on [N, P, 4] (events, particles per event, features), flattened to
    [N*P, 3] the way analysis code writes it: reshape(n * p, f)."""

    def __init__(self) -> None:
        super().__init__()
        self.l1, self.l2 = nn.Linear(4, 16), nn.Linear(16, 3)

    def forward(self, x):
        y = self.l2(torch.relu(self.l1(x)))
        n, p, f = y.size()
        return y.reshape(n * p, f)


class ChannelShuffle(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(8, 8, 1)

    def forward(self, x):
        x = self.conv(x)
        n, c, h, w = x.size()
        return torch.relu(x.view(n, 2, c // 2, h, w).transpose(1, 2).contiguous().view(n, -1, h, w))


def export(module: nn.Module, example: torch.Tensor, axes: dict, path: str) -> str:
    torch.manual_seed(0)
    module = module.eval()
    torch.onnx.export(module, (example,), path, input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": axes}, dynamo=False)
    return path


@pytest.fixture(scope="module")
def particle_mlp(tmp_path_factory) -> str:
    torch.manual_seed(0)
    return export(ParticleMLP(), torch.randn(2, 5, 4), {0: "N", 1: "P"},
                  str(tmp_path_factory.mktemp("dims") / "pmlp.onnx"))


def test_particle_mlp_runs_at_every_p_from_one_build(particle_mlp: str) -> None:
    model = sofie.compile(particle_mlp, blas="none", dims={"P": 64})
    assert model.stats["symbols"] == {"batch": "N", "dims": {"P": 64}, "max_batch": 64}
    assert model.outputs[0][2] == ["N*P", 3]
    rng = np.random.default_rng(1)
    for n, p in [(2, 1), (2, 3), (2, 50), (1, 64), (70, 3)]:  # 70 > max_batch: runs in chunks
        x = rng.standard_normal((n, p, 4)).astype(np.float32)
        (y,) = model(x)
        (ref,) = ort_run(particle_mlp, x)
        assert y.shape == (n * p, 3)
        np.testing.assert_allclose(y, ref, rtol=RTOL, atol=ATOL)


def test_a_dim_above_its_maximum_is_refused(particle_mlp: str) -> None:
    model = sofie.compile(particle_mlp, blas="none", dims={"P": 8})
    model(np.zeros((2, 8, 4), np.float32))
    with pytest.raises(sofie.SofieError, match=r"dim P = 9 exceeds its maximum 8"):
        model(np.zeros((2, 9, 4), np.float32))


def test_channel_shuffle_with_a_dynamic_batch(tmp_path) -> None:
    torch.manual_seed(0)
    path = export(ChannelShuffle(), torch.randn(2, 8, 5, 5), {0: "N"}, str(tmp_path / "shuffle.onnx"))
    model = sofie.compile(path, blas="none")
    assert set(model.stats["ops"]) == {"graph.conv", "graph.reshape", "graph.transpose", "graph.relu"}  # shapes folded
    for n in (3, 1):
        x = np.random.default_rng(n).standard_normal((n, 8, 5, 5)).astype(np.float32)
        np.testing.assert_allclose(model(x)[0], ort_run(path, x)[0], rtol=RTOL, atol=ATOL)


def test_cli_dim_sets_the_default_maximum(particle_mlp: str, tmp_path) -> None:
    bin_dir = os.path.dirname(sys.executable)
    r = subprocess.run([f"{bin_dir}/sofie-compile", particle_mlp, "-o", str(tmp_path), "--blas", "none",
                        "--dim", "P=128"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    header = (tmp_path / "pmlp.hxx").read_text()
    assert 'kDimNames{{"P"}}' in header and "kDefaultMaxDims{{128}}" in header
    assert "void infer(std::size_t batch, std::size_t d_P, const float* x, float* out0)" in header
    for bad, message in [("Q=4", "no such dim symbol"), ("P=x", "expected SYMBOL=MAX"), ("P=0", "at least 1")]:
        r = subprocess.run([f"{bin_dir}/sofie-compile", particle_mlp, "-o", str(tmp_path), "--blas", "none",
                            "--dim", bad], capture_output=True, text=True)
        assert r.returncode == 2 and message in r.stderr, r.stderr


SHAPE_ARITHMETIC = """module @dims {
  weight "two" : tensor<1xi64> = dense<[2]>
  weight "axis0" : tensor<i64> = dense<[0]>
  weight "axis1" : tensor<i64> = dense<[1]>
  weight "minus1" : tensor<1xi64> = dense<[-1]>
  func @main(%x: tensor<NxPx4xf32>) -> (tensor<N*Px4xf32>, tensor<2*Nx2*Pxf32>, tensor<N*Px4xf32>) {
    %s = graph.shape %x : tensor<3xi64>
    %a0 = graph.weight {ref = "axis0"} : tensor<i64>
    %a1 = graph.weight {ref = "axis1"} : tensor<i64>
    %n = graph.gather %s, %a0 : tensor<i64>
    %p = graph.gather %s, %a1 : tensor<i64>
    %np = graph.mul %n, %p : tensor<i64>
    %np1 = graph.unsqueeze %np {axes = [0]} : tensor<1xi64>
    %m1 = graph.weight {ref = "minus1"} : tensor<1xi64>
    %target = graph.concat %np1, %m1 {axis = 0} : tensor<2xi64>
    %flat = graph.reshape %x, %target : tensor<N*Px4xf32>
    %two = graph.weight {ref = "two"} : tensor<1xi64>
    %n1 = graph.unsqueeze %n {axes = [0]} : tensor<1xi64>
    %nn = graph.mul %n1, %two : tensor<1xi64>
    %t2 = graph.concat %nn, %m1 {axis = 0} : tensor<2xi64>
    %head = graph.reshape %flat, %t2 : tensor<2*Nx2*Pxf32>
    %h2 = graph.flatten %x {axis = 2} : tensor<N*Px4xf32>
    return %flat, %head, %h2
  }
}
"""


def test_shape_arithmetic_over_symbols_folds() -> None:
    """Shape -> Gather -> Mul -> Concat -> Reshape gives [N*P, 4] with no run-time shape ops."""
    m = parse(SHAPE_ARITHMETIC)
    m, _ = run_pipeline(m, ["infer-shapes", "fold-constants", "dce"])
    assert [str(v.type) for v in m.main.outputs] == [
        "tensor<N*Px4xf32>", "tensor<2*Nx2*Pxf32>", "tensor<N*Px4xf32>"]
    # [N*P, 4] is the constant target [-1, 4]; [2*N, 2*P] has no 0/-1 spelling, so its target
    # keeps its shape ops, which lowering evaluates at compile time: no kernel computes a shape
    reshape = next(op for op in m.main.ops if op.name == "graph.reshape")
    assert m.constant_value(reshape.shape).tolist() == [-1, 4]
    low, _ = run_pipeline(m, ["lower"])
    assert {op.name for op in low.main.ops} <= {"low.view", "low.output", "low.copy"}


def test_sums_of_different_symbols_stay_unknown() -> None:
    """N + P is no product of dims: the Reshape target is known only at run time, so its result
    has run-time dims (tests/e2e/test_run_time_dims.py), not the N*P x 4 the text declares."""
    text = SHAPE_ARITHMETIC.replace("%np = graph.mul %n, %p", "%np = graph.add %n, %p")
    with pytest.raises(sofie.SofieError, match=r"graph.reshape: result types tensor<N\*Px4xf32> differ from the "
                                               r"shape rule's tensor<R0xR1xf32>"):
        verify(parse(text))


def test_arena_scales_with_each_symbol(particle_mlp: str) -> None:
    from sofie.frontends import load_model
    from sofie.passes.low.plan_memory import arena_bytes
    low, _ = run_pipeline(load_model(particle_mlp), ["infer-shapes", "fold-constants", "canonicalize",
                                                     "fuse", "dce", "lower", "fuse-loops", "plan-memory"])
    f = low.main
    assert set(f.attrs["arena_terms"]) >= {"1", "N*P"}
    one = arena_bytes(f, {"N": 1, "P": 1})
    assert arena_bytes(f, {"N": 2, "P": 3}) == one + 5 * (arena_bytes(f, {"N": 1, "P": 2}) - one)


def test_mean_over_a_run_time_length(tmp_path):
    """ReduceMean over an axis of run-time length T divides by T read at run time (a
    `low.dim_count`), from one build at every T up to its maximum; float32 sums of at most 8
    terms: rtol 1e-6."""
    import onnx
    from onnx import TensorProto, helper
    g = helper.make_graph([helper.make_node("ReduceMean", ["x", "axes"], ["y"], keepdims=0)], "mean",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", "T", 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                          [helper.make_tensor("axes", TensorProto.INT64, [1], [1])])
    path = str(tmp_path / "mean.onnx")
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)]), path)
    model = sofie.compile(path, dims={"T": 8})
    assert "_count[0] = static_cast<float>(d_T);" in open(model.header).read()
    for t in (1, 3, 8):
        x = np.random.default_rng(t).standard_normal((2, t, 4)).astype(np.float32)
        (y,) = model(x)
        np.testing.assert_allclose(y, x.mean(axis=1), rtol=1e-6, atol=1e-7)
