"""The generated Session's typed interface through the Python binding: one typed pointer per
input and output, inputs named like the Session's own identifiers, and the batch limits."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper

import sofie


def model(inputs: list, outputs: list, nodes: list):
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(*i) for i in inputs],
                          [helper.make_tensor_value_info(*o) for o in outputs])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def test_typed_inputs_and_outputs_named_like_session_identifiers() -> None:
    """f32, i64 and f64 pointers in one infer; inputs called `done`, `out0` and `arena` (names
    the Session code uses itself) are renamed in C++, and the batch of 5 runs in 3 chunks."""
    m = sofie.compile(model(
        [("done", TensorProto.FLOAT, ["N", 3]), ("out0", TensorProto.FLOAT, ["N", 3]),
         ("arena", TensorProto.INT64, ["N", 2]), ("d", TensorProto.DOUBLE, ["N", 2])],
        [("r", TensorProto.FLOAT, ["N", 3]), ("nk", TensorProto.INT64, ["N", 2]), ("ad", TensorProto.DOUBLE, ["N", 2])],
        [helper.make_node("Add", ["done", "out0"], ["s"], name="add"),
         helper.make_node("Relu", ["s"], ["r"], name="relu"),
         helper.make_node("Neg", ["arena"], ["nk"], name="neg"),
         helper.make_node("Abs", ["d"], ["ad"], name="abs")]), name="typed", blas="none", max_batch=2)
    header = open(m.header).read()
    assert ("void infer(std::size_t batch, const float* done_1, const float* out0_1, const std::int64_t* arena_1, "
            "const double* d, float* out0, std::int64_t* out1, double* out2)") in header
    assert "std::vector<" not in header  # the one-event convenience form needs a single output
    rng = np.random.default_rng(4)
    a, b = rng.standard_normal((2, 5, 3)).astype(np.float32)
    k = rng.integers(-9, 9, (5, 2)).astype(np.int64)
    d = rng.standard_normal((5, 2))
    r, nk, ad = m(a, b, k, d)
    np.testing.assert_array_equal(r, np.maximum(a + b, 0))
    np.testing.assert_array_equal(nk, -k)
    np.testing.assert_array_equal(ad, np.abs(d))


def test_symbol_off_axis_0_is_a_dim_bounded_by_its_maximum() -> None:
    """A symbol on axis 1 is no batch (it cannot be sliced): it is a dim of each call, up to
    the maximum the Session was built with; above it the Session refuses with its message."""
    m = sofie.compile(model([("x", TensorProto.FLOAT, [3, "N"])], [("y", TensorProto.FLOAT, [3, "N"])],
                            [helper.make_node("Relu", ["x"], ["y"], name="relu")]),
                      name="bounded", blas="none", dims={"N": 4})
    assert "sofie::rt::Batching::Fixed" in open(m.header).read()
    x = np.random.default_rng(5).standard_normal((3, 4)).astype(np.float32)
    np.testing.assert_array_equal(m(x)[0], np.maximum(x, 0))
    with pytest.raises(sofie.SofieError, match="bounded: sofie: dim N = 5 exceeds its maximum 4"):
        m(np.zeros((3, 5), np.float32))



def test_output_names_survive_dropped_identities() -> None:
    """Identity and Dropout feeding graph outputs are dropped, but the outputs keep the ONNX
    names the user asked for (they name the results in `outputs` and in the C++)."""
    m = sofie.compile(model(
        [("x", TensorProto.FLOAT, ["N", 3])],
        [("probs", TensorProto.FLOAT, ["N", 3]), ("kept", TensorProto.FLOAT, ["N", 3]),
         ("echo", TensorProto.FLOAT, ["N", 3])],
        [helper.make_node("Relu", ["x"], ["r"], name="relu"),
         helper.make_node("Identity", ["r"], ["probs"], name="id"),
         helper.make_node("Neg", ["x"], ["n"], name="neg"),
         helper.make_node("Dropout", ["n"], ["kept"], name="drop"),
         helper.make_node("Identity", ["x"], ["echo"], name="echo")]), name="outnames", blas="none")
    assert [o[0] for o in m.outputs] == ["probs", "kept", "echo"]  # echo: a copy of the input
    x = np.arange(-3, 3, dtype=np.float32).reshape(2, 3)
    probs, kept, echo = m(x)
    np.testing.assert_array_equal(probs, np.maximum(x, 0))
    np.testing.assert_array_equal(kept, -x)
    np.testing.assert_array_equal(echo, x)
