"""Shape inputs bound as constants (sofie/conformance/binding.py): which inputs, when, and the
data sets without them."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper

from sofie.conformance.binding import bind, shape_inputs, unbound


def _reshape_model():
    g = helper.make_graph([helper.make_node("Reshape", ["data", "shape"], ["y"])], "r",
                          [helper.make_tensor_value_info("data", TensorProto.FLOAT, [2, 3]),
                           helper.make_tensor_value_info("shape", TensorProto.INT64, [2])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])


def test_only_inputs_read_as_compile_time_operands_are_bound():
    assert shape_inputs(_reshape_model()) == [1]  # Reshape's shape, not its data


def test_bound_input_becomes_an_initializer_with_the_test_value():
    x, shape = np.zeros((2, 3), np.float32), np.array([3, 2], np.int64)
    bound = bind(_reshape_model(), [([x, shape], [])], [1])
    assert [i.name for i in bound.graph.input] == ["data"]
    (init,) = bound.graph.initializer
    assert init.name == "shape" and list(init.int64_data or np.frombuffer(init.raw_data, np.int64)) == [3, 2]
    assert [a.shape for a in unbound([x, shape], [1])] == [(2, 3)]


def test_a_shape_that_varies_across_data_sets_is_not_bound():
    x = np.zeros((2, 3), np.float32)
    sets = [([x, np.array([3, 2], np.int64)], []), ([x, np.array([6, 1], np.int64)], [])]
    assert bind(_reshape_model(), sets, [1]) is None


def test_a_loops_trip_count_and_condition_are_bound():
    """Loop unrolls at compile time: its M and initial cond are shape inputs, its carried value not."""
    body = helper.make_graph([helper.make_node("Identity", ["c"], ["c_out"]),
                              helper.make_node("Identity", ["v"], ["v_out"])], "body",
                             [helper.make_tensor_value_info("i", TensorProto.INT64, []),
                              helper.make_tensor_value_info("c", TensorProto.BOOL, []),
                              helper.make_tensor_value_info("v", TensorProto.FLOAT, [2])],
                             [helper.make_tensor_value_info("c_out", TensorProto.BOOL, []),
                              helper.make_tensor_value_info("v_out", TensorProto.FLOAT, [2])])
    g = helper.make_graph([helper.make_node("Loop", ["m", "cond", "v0"], ["v"], body=body)], "l",
                          [helper.make_tensor_value_info("m", TensorProto.INT64, []),
                           helper.make_tensor_value_info("cond", TensorProto.BOOL, []),
                           helper.make_tensor_value_info("v0", TensorProto.FLOAT, [2])],
                          [helper.make_tensor_value_info("v", TensorProto.FLOAT, [2])])
    assert shape_inputs(helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])) == [0, 1]


def test_the_inputs_a_trip_count_is_computed_from_are_bound():
    """Range's ONNX function body computes its Loop's M from start, limit and delta."""
    body = helper.make_graph([helper.make_node("Identity", ["c"], ["c_out"])], "body",
                             [helper.make_tensor_value_info("i", TensorProto.INT64, []),
                              helper.make_tensor_value_info("c", TensorProto.BOOL, [])],
                             [helper.make_tensor_value_info("c_out", TensorProto.BOOL, [])])
    g = helper.make_graph([helper.make_node("Sub", ["limit", "start"], ["m"]),
                           helper.make_node("Loop", ["m", ""], [], body=body),
                           helper.make_node("Relu", ["x"], ["y"])], "l",
                          [helper.make_tensor_value_info(n, TensorProto.INT64, []) for n in ("x", "start", "limit")],
                          [helper.make_tensor_value_info("y", TensorProto.INT64, [])])
    assert shape_inputs(helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])) == [1, 2]
