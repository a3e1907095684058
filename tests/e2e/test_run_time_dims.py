"""Shapes computed from data at run time (issue 11): a Reduce*'s axes, a Reshape's target shape,
Squeeze / Unsqueeze axes and TopK's k given as graph inputs. Each compiled model is run with
several values of that input (the same compiled code: the shape is a run-time value), against
onnxruntime; invalid values are refused at run time with an error naming the node.

Tolerances: reductions rtol 1e-5, atol 1e-6 (float32 sums in another order); data movement and
TopK exactly (copies).
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import sofie
from sofie.backend_cpp.symbols import arena_at
from sofie.errors import SofieError
from sofie.frontends import load_model
from sofie.ir.liveness import ALIGN
from sofie.ir.parser import parse
from sofie.ir.plan_check import check_plan
from sofie.ir.printer import print_module
from sofie.ir.run_time_dims import table
from sofie.pipeline import run_pipeline

F32, I64 = TensorProto.FLOAT, TensorProto.INT64


def _model(nodes: list, inputs: list, outputs: list[str], opset: int = 18, elem: int = F32) -> onnx.ModelProto:
    """Outputs of element type `elem` (TopK's second: int64)."""
    g = helper.make_graph(nodes, "run_time_dims", inputs,
                          [helper.make_tensor_value_info(o, I64 if o == "i" else elem, None) for o in outputs])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


def _x(shape: list, elem: int = F32, name: str = "x") -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, elem, shape)


def _check(proto: onnx.ModelProto, feeds_list: list[dict], exact: bool = False, name: str = "rtd") -> None:
    """Compiles once, runs every feed through sofie and onnxruntime, compares shapes and values."""
    import onnxruntime as ort
    m = sofie.compile(proto, name=name)
    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    for feeds in feeds_list:
        got = m(*[feeds[n] for n, _, _ in m.inputs])
        for g, r in zip(got, sess.run(None, feeds), strict=True):
            what = {k: v.tolist() for k, v in feeds.items() if v.dtype == np.int64}
            assert g.shape == r.shape and g.dtype == r.dtype, f"{what}: {g.shape} {g.dtype} vs {r.shape} {r.dtype}"
            if exact:
                np.testing.assert_array_equal(g, r, err_msg=str(what))
            else:
                np.testing.assert_allclose(g, r, rtol=1e-5, atol=1e-6, err_msg=str(what))


def _reduce(op: str, keepdims: int, shape: list, n_axes: int | str, elem: int = F32, noop: int = 0) -> onnx.ModelProto:
    node = helper.make_node(op, ["x", "axes"], ["y"], name="red", keepdims=keepdims, noop_with_empty_axes=noop)
    return _model([node], [_x(shape, elem), _x([n_axes], I64, "axes")], ["y"], elem=elem)


AXES_2 = [[0, 2], [2, 0], [-1, -3], [1, 2], [0, 1]]  # on a rank-3 input
AXES_1 = [[0], [1], [-1], [2]]


@pytest.mark.parametrize("op", ["ReduceSum", "ReduceMean", "ReduceMax", "ReduceL2", "ReduceLogSumExp"])
@pytest.mark.parametrize("keepdims", [1, 0])
def test_reduce_axes_given_at_run_time(op: str, keepdims: int) -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 4, 5)).astype(np.float32)
    if op == "ReduceL2" or op == "ReduceLogSumExp":
        x = np.abs(x)
    _check(_reduce(op, keepdims, [3, 4, 5], 2),
           [{"x": x, "axes": np.array(a, np.int64)} for a in AXES_2], name=f"{op}_{keepdims}")
    _check(_reduce(op, keepdims, [3, 4, 5], 1),
           [{"x": x, "axes": np.array(a, np.int64)} for a in AXES_1], name=f"{op}_{keepdims}_one")


@pytest.mark.parametrize("keepdims", [1, 0])
def test_reduce_run_time_axes_on_a_batch_then_more_ops(keepdims: int) -> None:
    """x [N, 3, 4] over several batches; the result feeds an elementwise op, whose loops run
    over the run-time dims."""
    nodes = [helper.make_node("ReduceMean", ["x", "axes"], ["r"], name="red", keepdims=keepdims),
             helper.make_node("Mul", ["r", "r"], ["y"], name="square")]
    proto = _model(nodes, [_x(["N", 3, 4]), _x([1], I64, "axes")], ["y"])
    rng = np.random.default_rng(1)
    feeds = [{"x": rng.standard_normal((n, 3, 4)).astype(np.float32), "axes": np.array([a], np.int64)}
             for n in (1, 5) for a in (0, 1, -1)]
    _check(proto, feeds, name=f"batch_{keepdims}")


def test_axes_of_unknown_length_refused_without_keepdims() -> None:
    """Without keepdims the result's rank depends on how many axes there are: an axes input of
    symbolic length (ONNX [0] or unknown dims are read as a symbol) is refused at compile time."""
    with pytest.raises(SofieError, match=r"node 'red'.*axes operand tensor<Nxi64> is computed at run time "
                                         r"and its length is not static; without keepdims"):
        sofie.compile(_reduce("ReduceSum", 0, [2, 3], 0), name="unknown_length")


@pytest.mark.parametrize("noop", [0, 1])
def test_axes_of_unknown_length_with_keepdims(noop: int) -> None:
    """With keepdims the rank is the input's whatever the axes: an axes input of symbolic length
    N runs with any number of axes, an empty list reducing every axis (none with
    noop_with_empty_axes). onnxruntime's results (rtol 1e-5)."""
    x = np.random.default_rng(2).standard_normal((2, 3, 4)).astype(np.float32)
    _check(_reduce("ReduceSumSquare", 1, [2, 3, 4], "N", noop=noop),
           [{"x": x, "axes": np.array(a, np.int64)} for a in ([1], [0, 2], [2, 1, 0])], name=f"any_length_{noop}")


def test_reduce_integer_input() -> None:
    x = np.arange(-12, 12, dtype=np.int32).reshape(2, 3, 4)
    _check(_reduce("ReduceMax", 0, [2, 3, 4], 1, TensorProto.INT32),
           [{"x": x, "axes": np.array([a], np.int64)} for a in (0, 1, 2)], exact=True, name="int_max")
    _check(_reduce("ReduceSum", 1, [2, 3, 4], 2, TensorProto.INT32),
           [{"x": x, "axes": np.array(a, np.int64)} for a in ([0, 1], [1, 2])], exact=True, name="int_sum")


@pytest.mark.parametrize("axes, message", [([0, 3], r"node 'red'.*axis 3 is out of range for rank 3"),
                                           ([1, -2], r"node 'red'.*axis 1 is named twice")])
def test_reduce_invalid_axes_refused_at_run_time(axes: list, message: str) -> None:
    m = sofie.compile(_reduce("ReduceSum", 1, [3, 4, 5], 2), name="red_bad")
    x = np.zeros((3, 4, 5), np.float32)
    with pytest.raises(SofieError, match=message):
        m(x, np.array(axes, np.int64))
    y, = m(x + 1, np.array([0, 1], np.int64))  # the Session still runs afterwards
    np.testing.assert_array_equal(y, np.full((1, 1, 5), 12, np.float32))


def test_reshape_target_given_at_run_time() -> None:
    proto = _model([helper.make_node("Reshape", ["x", "shape"], ["y"], name="rs")],
                   [_x([2, 3, 4]), _x([3], I64, "shape")], ["y"])
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    _check(proto, [{"x": x, "shape": np.array(s, np.int64)} for s in ([4, 0, -1], [0, 0, -1], [24, 1, 1],
                                                                      [-1, 2, 2])], exact=True, name="reshape")
    m = sofie.compile(proto, name="reshape")
    with pytest.raises(SofieError, match=r"node 'rs'.*holds 25 elements, the input 24"):
        m(x, np.array([5, 5, 1], np.int64))
    with pytest.raises(SofieError, match=r"node 'rs'.*more than one -1"):
        m(x, np.array([-1, -1, 4], np.int64))


def test_reshape_of_a_computed_tensor_then_more_ops() -> None:
    """The reshaped tensor is an intermediate (a view of a buffer) read by a later op."""
    nodes = [helper.make_node("Relu", ["x"], ["r"], name="relu"),
             helper.make_node("Reshape", ["r", "shape"], ["v"], name="rs"),
             helper.make_node("Add", ["v", "v"], ["y"], name="twice")]
    proto = _model(nodes, [_x(["N", 6]), _x([2], I64, "shape")], ["y"])
    rng = np.random.default_rng(3)
    feeds = [{"x": rng.standard_normal((n, 6)).astype(np.float32), "shape": np.array(s, np.int64)}
             for n in (1, 4) for s in ([-1, 3], [2, -1])]
    _check(proto, feeds, exact=True, name="reshape_mid")


def test_squeeze_and_unsqueeze_axes_given_at_run_time() -> None:
    x = np.arange(8, dtype=np.float32).reshape(2, 1, 4, 1)
    sq = _model([helper.make_node("Squeeze", ["x", "axes"], ["y"], name="sq")],
                [_x([2, 1, 4, 1]), _x([1], I64, "axes")], ["y"])
    _check(sq, [{"x": x, "axes": np.array([a], np.int64)} for a in (1, 3, -1, -3)], exact=True, name="squeeze")
    with pytest.raises(SofieError, match=r"node 'sq'.*cannot squeeze axis 0 of size 2"):
        sofie.compile(sq, name="squeeze")(x, np.array([0], np.int64))
    un = _model([helper.make_node("Unsqueeze", ["x", "axes"], ["y"], name="un")],
                [_x([2, 3]), _x([2], I64, "axes")], ["y"])
    x2 = np.arange(6, dtype=np.float32).reshape(2, 3)
    _check(un, [{"x": x2, "axes": np.array(a, np.int64)} for a in ([0, 1], [0, 3], [-1, 1], [2, 3])],
           exact=True, name="unsqueeze")
    with pytest.raises(SofieError, match=r"node 'un'.*axis 4 is out of range for rank 4"):
        sofie.compile(un, name="unsqueeze")(x2, np.array([0, 4], np.int64))


@pytest.mark.parametrize("largest", [1, 0])
def test_top_k_k_given_at_run_time(largest: int) -> None:
    proto = _model([helper.make_node("TopK", ["x", "k"], ["v", "i"], name="tk", axis=1, largest=largest)],
                   [_x([3, 7]), _x([1], I64, "k")], ["v", "i"], opset=11)
    x = np.random.default_rng(4).permutation(21).astype(np.float32).reshape(3, 7)
    _check(proto, [{"x": x, "k": np.array([k], np.int64)} for k in (0, 1, 4, 7)], exact=True, name=f"tk{largest}")
    with pytest.raises(SofieError, match=r"node 'tk'.*k = 8 is outside \[0, 7\]"):
        sofie.compile(proto, name=f"tk{largest}")(x, np.array([8], np.int64))


def test_run_time_dims_round_trip_through_ir_text() -> None:
    """The run-time dims and their bounds are function attributes: graph, lowered and planned
    IR print and parse back identically."""
    graph = load_model(_reduce("ReduceSum", 0, ["N", 4, 5], 2), name="rt")
    assert table(graph.main) == {"R0": "20*N"}
    text = print_module(graph)
    assert "run_time_dims = [[\"R0\", \"20*N\"]]" in text and print_module(parse(text)) == text
    low, _ = run_pipeline(graph, ["lower", "plan-memory"])
    text = print_module(low)
    assert "low.bind_dims" in text and print_module(parse(text)) == text


def test_memory_is_planned_at_the_bounds() -> None:
    """An intermediate with run-time dims [R0, R1, R2] (keepdims, bounds N, 4, 5) takes the
    bytes of N x 4 x 5 floats in the arena, and the plan checks."""
    nodes = [helper.make_node("ReduceSum", ["x", "axes"], ["r"], name="red"),
             helper.make_node("Relu", ["r"], ["y"], name="relu")]
    graph = load_model(_model(nodes, [_x(["N", 4, 5]), _x([1], I64, "axes")], ["y"]), name="plan")
    low, _ = run_pipeline(graph, ["lower", "plan-memory"])
    f = low.main
    check_plan(f)
    assert f.attrs["arena_terms"] == ["1", "N"]
    per_event = -(-4 * 20 // ALIGN) * ALIGN  # 20 floats, rounded up to the buffer alignment
    assert arena_at(f, {"N": 1}) == per_event and arena_at(f, {"N": 10}) == 10 * per_event


def test_a_run_time_dim_above_its_bound_is_refused(tmp_path) -> None:
    """The guard behind every bound: planned low IR whose bound of R0 was lowered to 4 (by
    hand) runs values up to 4 and refuses a larger one before anything is written past it."""
    proto = _model([helper.make_node("Reshape", ["x", "shape"], ["y"], name="rs")],
                   [_x([2, 3, 4]), _x([3], I64, "shape")], ["y"])
    low, _ = run_pipeline(load_model(proto, name="tampered"), ["lower", "plan-memory"])
    text = print_module(low)
    assert '["R0", 24]' in text
    path = tmp_path / "tampered.ir"
    path.write_text(text.replace('["R0", 24]', '["R0", 4]'))
    m = sofie.compile(str(path), name="tampered")
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    y, = m(x, np.array([4, -1, 1], np.int64))
    np.testing.assert_array_equal(y, x.reshape(4, 6, 1))
    with pytest.raises(SofieError, match=r"node 'rs'.*the run-time dim R0 = 6 exceeds its bound 4"):
        m(x, np.array([6, 4, 1], np.int64))


def test_a_shape_operand_of_floats_is_refused() -> None:
    """A target shape or axes known only at run time must hold integers (ONNX: int64)."""
    for node, second in [(helper.make_node("Reshape", ["x", "s"], ["y"], name="rs"), _x([2], F32, "s")),
                         (helper.make_node("ReduceSum", ["x", "s"], ["y"], name="red"), _x([1], F32, "s"))]:
        with pytest.raises(SofieError, match=rf"node '{node.name}'.*computed at run time and holds f32; it must "
                                             r"hold integers"):
            sofie.compile(_model([node], [_x([2, 6]), second], ["y"]), name="float_shape")
