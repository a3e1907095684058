"""Small models for the RDataFrame tests, built with onnx.helper (no torch export)."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def mlp_onnx(path: str, n_in: int = 4, hidden: int = 16, n_out: int = 3, seed: int = 0) -> str:
    """x[N, n_in] -> Gemm -> Relu -> Gemm -> y[N, n_out] (n_out 1: a single score)."""
    rng = np.random.default_rng(seed)
    inits = [numpy_helper.from_array(rng.standard_normal(s).astype(np.float32), n)
             for n, s in [("w1", (n_in, hidden)), ("b1", (hidden,)), ("w2", (hidden, n_out)), ("b2", (n_out,))]]
    nodes = [helper.make_node("Gemm", ["x", "w1", "b1"], ["h"]), helper.make_node("Relu", ["h"], ["r"]),
             helper.make_node("Gemm", ["r", "w2", "b2"], ["y"])]
    graph = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", n_in])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", n_out])], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path
