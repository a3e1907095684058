"""The models of the C++ tests (tests/cpp), their inputs and onnxruntime's outputs.

`python -m tests.cpp.reference` writes particles.onnx and the *.ref files; the C++ programs
compute the same inputs (see inputs()), and tests/e2e/test_ctest.py checks that the stored
references still are onnxruntime's outputs."""

from __future__ import annotations

import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
MODELS = {"lenet": os.path.join(REPO, "examples", "lenet.onnx"), "particles": os.path.join(HERE, "particles.onnx")}
SHAPES = {"lenet": (2, 1, 28, 28), "particles": (3, 5, 4)}  # (batch, ...): particles runs P = 5 of its 32


def inputs(name: str) -> np.ndarray:
    """x[i] = sin(0.37 i) + 0.25 cos(0.11 i) over the flat input, as the C++ programs compute it."""
    i = np.arange(int(np.prod(SHAPES[name])), dtype=np.float64)
    return (np.sin(0.37 * i) + 0.25 * np.cos(0.11 * i)).astype(np.float32).reshape(SHAPES[name])


def particles_model() -> onnx.ModelProto:
    """[N, P, 4] -> per-particle Linear(4, 8) + ReLU -> mean over P -> Linear(8, 2): a dim symbol P."""
    rng = np.random.default_rng(7)
    w1, b1 = rng.standard_normal((4, 8)).astype(np.float32), rng.standard_normal(8).astype(np.float32)
    w2, b2 = rng.standard_normal((8, 2)).astype(np.float32), rng.standard_normal(2).astype(np.float32)
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h0"], name="embed"),
             helper.make_node("Add", ["h0", "b1"], ["h1"], name="embed_bias"),
             helper.make_node("Relu", ["h1"], ["h2"], name="relu"),
             helper.make_node("ReduceMean", ["h2", "axes"], ["pooled"], keepdims=0, name="pool"),
             helper.make_node("Gemm", ["pooled", "w2", "b2"], ["y"], name="head")]
    inits = [numpy_helper.from_array(a, n) for a, n in
             ((w1, "w1"), (b1, "b1"), (w2, "w2"), (b2, "b2"), (np.array([1], np.int64), "axes"))]
    g = helper.make_graph(nodes, "particles", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", "P", 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])


def ort_outputs(name: str) -> np.ndarray:
    import onnxruntime as ort
    s = ort.InferenceSession(MODELS[name], providers=["CPUExecutionProvider"])
    return s.run(None, {"x": inputs(name)})[0]


def read_reference(name: str) -> np.ndarray:
    return np.loadtxt(os.path.join(HERE, f"{name}.ref"), dtype=np.float32)


def main() -> None:
    onnx.save(particles_model(), MODELS["particles"])
    for name in MODELS:
        np.savetxt(os.path.join(HERE, f"{name}.ref"), ort_outputs(name).ravel(), fmt="%.9g")
        print(f"wrote {name}.ref")


if __name__ == "__main__":
    main()
