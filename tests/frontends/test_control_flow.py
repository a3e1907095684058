"""Control flow at import (sofie/frontends/onnx_control_flow.py): what the unrolled IR holds,
and the clear refusals for what cannot be unrolled (a run-time trip count or loop condition,
If branches that differ under a run-time cond, a symbolic sequence length, the unrolling budget).
The numbers are checked against onnxruntime in tests/e2e/test_control_flow.py."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from sofie.errors import SofieError
from sofie.frontends import onnx_control_flow
from sofie.frontends.onnx import load_onnx

F, I64, B = TensorProto.FLOAT, TensorProto.INT64, TensorProto.BOOL


def vi(name, elem=F, shape=None):
    return helper.make_tensor_value_info(name, elem, shape)


def model(nodes, inputs, outputs, inits=(), opset=18):
    g = helper.make_graph(nodes, "cf", inputs, outputs, [numpy_helper.from_array(v, k) for k, v in inits])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


def ops(m) -> list[str]:
    return [op.name for op in m.main.ops if op.name != "graph.weight"]


def branch(op, x, out, elem=F):
    return helper.make_graph([helper.make_node(op, [x], [out])], out, [], [vi(out, elem)])


def loop_body(extra_nodes=(), cond_from=None, inits=()):
    """(i, cond, y) -> (cond_out, y * 2, y): cond_out from `cond_from` (default: cond)."""
    nodes = [*extra_nodes, helper.make_node("Identity", [cond_from or "cond"], ["cond_out"]),
             helper.make_node("Add", ["y", "y"], ["y_out"]), helper.make_node("Identity", ["y"], ["scan_out"])]
    return helper.make_graph(nodes, "body", [vi("i", I64, []), vi("cond", B, []), vi("y", F, [2])],
                             [vi("cond_out", B), vi("y_out"), vi("scan_out")],
                             [numpy_helper.from_array(v, k) for k, v in inits])


def loop_model(m_input=None, cond_input=None, body=None, inits=(), inputs=()):
    node = helper.make_node("Loop", [m_input or "", cond_input or "", "y0"], ["y", "ys"], name="the_loop",
                            body=body or loop_body())
    return model([node], [vi("y0", F, [2]), *inputs], [vi("y"), vi("ys")], inits)


# ---- If ---------------------------------------------------------------------------------------

def test_a_constant_condition_imports_only_the_branch_taken():
    m = load_onnx(model([helper.make_node("If", ["c"], ["y"], then_branch=branch("Relu", "x", "a"),
                                          else_branch=branch("Neg", "x", "b"))],
                        [vi("x", F, [3])], [vi("y")], [("c", np.array(False))]))
    assert ops(m) == ["graph.neg"]


def test_a_run_time_condition_computes_both_branches_and_selects():
    m = load_onnx(model([helper.make_node("If", ["c"], ["y"], then_branch=branch("Relu", "x", "a"),
                                          else_branch=branch("Neg", "x", "b"))],
                        [vi("x", F, [3]), vi("c", B, [1])], [vi("y")]))
    assert ops(m) == ["graph.relu", "graph.neg", "graph.reshape", "graph.where"]


def test_branches_of_different_shapes_under_a_run_time_condition_are_refused():
    then_g = helper.make_graph([helper.make_node("ReduceSum", ["x"], ["a"], keepdims=0)], "t", [], [vi("a")])
    with pytest.raises(SofieError, match=r"node 'the_if' \(If.*cond is computed at run time and output 0 "
                                         r"differs between the branches \(then: tensor<f32>, else: tensor<3xf32>\)"):
        load_onnx(model([helper.make_node("If", ["c"], ["y"], name="the_if", then_branch=then_g,
                                          else_branch=branch("Neg", "x", "b"))],
                        [vi("x", F, [3]), vi("c", B, [])], [vi("y")]))


def test_a_condition_of_several_elements_is_refused():
    with pytest.raises(SofieError, match=r"node 'the_if' \(If.*cond must be a bool tensor of one element, "
                                         r"got tensor<Nxi1>"):
        load_onnx(model([helper.make_node("If", ["c"], ["y"], name="the_if", then_branch=branch("Relu", "x", "a"),
                                          else_branch=branch("Neg", "x", "b"))],
                        [vi("c", B, ["N"]), vi("x", F, [3])], [vi("y")]))


def test_an_error_in_a_branch_names_the_if_and_the_branch():
    with pytest.raises(SofieError, match=r"node 'the_if' \(If.*in its else_branch: .*unsupported op 'Foo'"):
        load_onnx(model([helper.make_node("If", ["c"], ["y"], name="the_if", then_branch=branch("Relu", "x", "a"),
                                          else_branch=branch("Foo", "x", "b"))],
                        [vi("x", F, [3])], [vi("y")], [("c", np.array(False))]))


# ---- Loop -------------------------------------------------------------------------------------

def test_a_loop_unrolls_once_per_iteration_and_shares_its_constants():
    body = loop_body([helper.make_node("Constant", [], ["k"], value=numpy_helper.from_array(np.ones(64, np.float32))),
                      helper.make_node("Identity", ["k"], ["unused"])])
    m = load_onnx(loop_model("m", body=body, inits=[("m", np.array(3, np.int64))]))
    assert ops(m).count("graph.add") == 3 and ops(m).count("graph.concat") == 1
    assert sum(1 for w in m.weights.values() if w.type.shape == (64,)) == 1  # one weight, not three
    assert [tuple(v.type.shape) for v in m.main.outputs] == [(2,), (3, 2)]


def test_a_condition_folded_from_the_counter_ends_the_loop():
    body = loop_body([helper.make_node("Constant", [], ["two"], value=numpy_helper.from_array(np.array(2, np.int64))),
                      helper.make_node("Less", ["i", "two"], ["more"])], cond_from="more")
    m = load_onnx(loop_model(cond_input="go", body=body, inits=[("go", np.array(True))]))
    assert [tuple(v.type.shape) for v in m.main.outputs] == [(2,), (3, 2)]  # iterations 0, 1, 2


def test_a_run_time_trip_count_is_refused():
    with pytest.raises(SofieError, match=r"node 'the_loop' \(Loop.*the trip count M is computed at run time; "
                                         r"sofie unrolls Loop at compile time"):
        load_onnx(loop_model("m", inputs=[vi("m", I64, [])]))


def test_a_run_time_loop_condition_is_refused():
    zero = numpy_helper.from_array(np.array(0, np.float32))
    body = loop_body([helper.make_node("ReduceSum", ["y"], ["s"], keepdims=0),
                      helper.make_node("Constant", [], ["zero"], value=zero),
                      helper.make_node("Greater", ["s", "zero"], ["positive"])], cond_from="positive")
    with pytest.raises(SofieError, match=r"the_loop.*the condition computed by iteration 0 is computed at run time"):
        load_onnx(loop_model("m", "go", body=body, inits=[("m", np.array(5, np.int64)), ("go", np.array(True))]))


def test_a_loop_without_trip_count_or_condition_is_refused():
    with pytest.raises(SofieError, match=r"the_loop.*neither a trip count nor a condition"):
        load_onnx(loop_model())


def test_an_empty_scan_output_is_refused():
    with pytest.raises(SofieError, match=r"the_loop.*runs zero times, so its scan outputs are empty"):
        load_onnx(loop_model("m", inits=[("m", np.array(0, np.int64))]))


def test_unrolling_beyond_the_budget_is_refused(monkeypatch):
    monkeypatch.setattr(onnx_control_flow, "MAX_UNROLLED_NODES", 20)
    load_onnx(loop_model("m", inits=[("m", np.array(6, np.int64))]))  # 18 nodes fit
    with pytest.raises(SofieError, match=r"the_loop.*unrolling needs 7 iterations of a 3-node body, beyond "
                                         r"sofie's budget of 20 unrolled body nodes"):
        load_onnx(loop_model("m", inits=[("m", np.array(7, np.int64))]))


def test_an_error_in_the_body_names_the_loop_and_the_iteration():
    body = loop_body([helper.make_node("Reshape", ["y", "i"], ["bad"])])
    with pytest.raises(SofieError, match=r"node 'the_loop' \(Loop.*in its body, iteration 0: .*the_loop/iter0/"):
        load_onnx(loop_model("m", body=body, inits=[("m", np.array(2, np.int64))]))


# ---- Scan -------------------------------------------------------------------------------------

def scan_model(x_shape, opset=18, **attrs):
    body = helper.make_graph([helper.make_node("Add", ["s", "x_t"], ["s_out"]),
                              helper.make_node("Identity", ["s_out"], ["y_t"])], "body",
                             [vi("s", F, None), vi("x_t", F, None)], [vi("s_out"), vi("y_t")])
    node = helper.make_node("Scan", ["s0", "x"], ["s", "ys"], name="the_scan", body=body, num_scan_inputs=1, **attrs)
    return model([node], [vi("s0", F, [3]), vi("x", F, x_shape)], [vi("s"), vi("ys")], opset=opset)


def test_scan_unrolls_over_the_sequence():
    m = load_onnx(scan_model([4, 3]))
    assert ops(m).count("graph.add") == 4 and ops(m).count("graph.split") == 1
    assert [tuple(v.type.shape) for v in m.main.outputs] == [(3,), (4, 3)]


def test_a_symbolic_sequence_length_is_refused():
    with pytest.raises(SofieError, match=r"node 'the_scan' \(Scan.*the sequence length is the symbol 'S'"):
        load_onnx(scan_model(["S", 3]))


def test_bad_scan_attributes_are_refused():
    with pytest.raises(SofieError, match=r"the_scan.*scan_input_axes has 2 entries; expected 1"):
        load_onnx(scan_model([4, 3], scan_input_axes=[0, 1]))
    with pytest.raises(SofieError, match=r"the_scan.*scan_input_directions must be 0 \(forward\) or 1"):
        load_onnx(scan_model([4, 3], scan_input_directions=[2]))
    with pytest.raises(SofieError, match=r"the_scan.*scan_output_axes entry 2 is out of range for rank 2"):
        load_onnx(scan_model([4, 3], scan_output_axes=[2]))
