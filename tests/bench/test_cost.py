"""bench/cost.py: FLOPs and streamed bytes read from the ONNX graph, on models small enough to
count by hand."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from bench.cost import model_cost

F = TensorProto.FLOAT


def save(tmp_path, nodes, inputs, outputs, inits) -> str:
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(n, F, s) for n, s in inputs],
                          [helper.make_tensor_value_info(n, F, None) for n in outputs],
                          [numpy_helper.from_array(v.astype(np.float32), k) for k, v in inits.items()])
    path = str(tmp_path / "m.onnx")
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def test_gemm_relu_matmul(tmp_path) -> None:
    # Gemm [N,3] x [4,3]^T: N*4*3 MACs; Relu: none; MatMul [N,4] x [4,5]: N*5*4 MACs
    path = save(tmp_path, [helper.make_node("Gemm", ["x", "W", "B"], ["h"], transB=1),
                           helper.make_node("Relu", ["h"], ["r"]),
                           helper.make_node("MatMul", ["r", "V"], ["y"])],
                [("x", ["N", 3])], ["y"], {"W": np.ones((4, 3)), "B": np.ones(4), "V": np.ones((4, 5))})
    c = model_cost(path, {"x": np.zeros((2, 3), np.float32)})
    assert c.flops == 2 * (2 * 4 * 3 + 2 * 5 * 4)
    assert c.weight_bytes == 4 * (12 + 4 + 20)
    assert c.bytes == c.weight_bytes + 4 * 2 * 3 + 4 * 2 * 5  # + input + output


def test_conv_grouped_and_transposed(tmp_path) -> None:
    # Conv 4->6 channels, groups 2, 3x3, pad 1 on 5x5: 6*5*5 outputs x (4/2)*3*3 MACs each;
    # ConvTranspose 6->2, 2x2 stride 2: every one of 6*5*5 inputs scatters into 2*2*2 outputs
    path = save(tmp_path, [helper.make_node("Conv", ["x", "W"], ["h"], group=2, pads=[1] * 4),
                           helper.make_node("ConvTranspose", ["h", "T"], ["y"], strides=[2, 2])],
                [("x", [1, 4, 5, 5])], ["y"], {"W": np.ones((6, 2, 3, 3)), "T": np.ones((6, 2, 2, 2))})
    c = model_cost(path, {"x": np.zeros((1, 4, 5, 5), np.float32)})
    assert c.flops == 2 * (6 * 25 * 2 * 9 + 6 * 25 * 2 * 4)


def test_lstm(tmp_path) -> None:
    # LSTM, 7 steps, batch 3, input 5, hidden 4: each step 4 gates x 4 x (5 + 4) MACs per event
    path = save(tmp_path, [helper.make_node("LSTM", ["x", "W", "R"], ["y"], hidden_size=4)],
                [("x", [7, 3, 5])], ["y"], {"W": np.ones((1, 16, 5)), "R": np.ones((1, 16, 4))})
    c = model_cost(path, {"x": np.zeros((7, 3, 5), np.float32)})
    assert c.flops == 2 * 7 * 3 * 16 * (5 + 4)
