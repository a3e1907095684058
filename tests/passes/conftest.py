"""Small ONNX models for the pass tests, exported with torch into pytest's tmp_path."""

from __future__ import annotations

import os

import pytest
import torch
import torch.nn as nn

from bench.models import Block


class TinyResNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, 1, 1, bias=False), nn.BatchNorm2d(8), nn.ReLU())
        self.pre_bn = nn.BatchNorm2d(8)                 # BN before an unpadded 1x1 conv
        self.mix = nn.Conv2d(8, 8, 1)
        self.layers = nn.Sequential(Block(8, 8, 1), Block(8, 16, 2))
        self.fc = nn.Linear(16 * 4 * 4, 10)
        self.drop = nn.Dropout(0.5)

    def forward(self, x):
        x = self.mix(self.pre_bn(self.stem(x)))
        x = self.layers(x)
        return self.fc(self.drop(torch.flatten(x, 1)))


class ViewNet(nn.Module):
    """x.view(x.size(0), -1) exports as Shape -> Gather -> Unsqueeze -> Concat -> Reshape."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 4, 3)
        self.fc = nn.Linear(4 * 3 * 3, 3)

    def forward(self, x):
        x = torch.relu(self.conv(x))
        return self.fc(x.view(x.size(0), -1))


class Mlp(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w1 = nn.Parameter(torch.randn(12, 20))
        self.b1 = nn.Parameter(torch.randn(20))
        self.bn = nn.BatchNorm1d(20)
        self.fc2 = nn.Linear(20, 5)

    def forward(self, x):
        h = x @ self.w1 + self.b1           # MatMul + Add: canonicalized to Gemm
        h = torch.sigmoid(self.bn(h))       # BN after the Gemm, then an activation epilogue
        return torch.tanh(self.fc2(h.t().t()))  # a transpose pair that cancels


def _randomize_bn(model: nn.Module) -> None:
    """Non-trivial running statistics, so a wrong fold shows in the numbers."""
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d):
            c = m.num_features
            m.running_mean.copy_(torch.randn(c, generator=g) * 0.5)
            m.running_var.copy_(torch.rand(c, generator=g) + 0.5)
            m.weight.data.copy_(torch.randn(c, generator=g))
            m.bias.data.copy_(torch.randn(c, generator=g))


def export(model: nn.Module, example: torch.Tensor, path: str) -> str:
    torch.manual_seed(0)
    _randomize_bn(model)
    model.eval()
    torch.onnx.export(model, (example,), path, input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "N"}, "y": {0: "N"}}, opset_version=17, dynamo=False,
                      training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=False)
    return path


MODELS = {
    "tiny_resnet": (TinyResNet, (2, 3, 8, 8)),
    "mlp": (Mlp, (3, 12)),
    "view": (ViewNet, (2, 2, 5, 5)),
}


@pytest.fixture(scope="session")
def onnx_models(tmp_path_factory) -> dict[str, tuple[str, tuple[int, ...]]]:
    """name -> (path, example input shape)."""
    d = tmp_path_factory.mktemp("pass_models")
    torch.manual_seed(0)
    models = {name: (export(cls(), torch.randn(*shape), os.path.join(d, f"{name}.onnx")), shape)
              for name, (cls, shape) in MODELS.items()}
    models["shape_chain"] = (shape_chain_model(os.path.join(d, "shape_chain.onnx")), (2, 3, 4))
    return models


def shape_chain_model(path: str) -> str:
    """The exporter's dynamic-batch reshape chain built by hand with 1-D constants:
    y = Reshape(x, Concat(Unsqueeze(Squeeze(Gather(Shape(x), [0]))), [-1])) @ W."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = np.random.default_rng(0).standard_normal((12, 5)).astype(np.float32)
    inits = [numpy_helper.from_array(np.array([0], np.int64), "zero"),
             numpy_helper.from_array(np.array([-1], np.int64), "minus_one"),
             numpy_helper.from_array(w, "w")]
    nodes = [helper.make_node("Shape", ["x"], ["s"], name="shape"),
             helper.make_node("Gather", ["s", "zero"], ["n1"], name="gather", axis=0),
             helper.make_node("Squeeze", ["n1", "zero"], ["n"], name="squeeze"),
             helper.make_node("Unsqueeze", ["n", "zero"], ["n2"], name="unsqueeze"),
             helper.make_node("Concat", ["n2", "minus_one"], ["target"], name="concat", axis=0),
             helper.make_node("Reshape", ["x", "target"], ["flat"], name="reshape"),
             helper.make_node("MatMul", ["flat", "w"], ["y"], name="matmul")]
    graph = helper.make_graph(
        nodes, "shape_chain", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 5])], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path
