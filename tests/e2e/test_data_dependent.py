"""Ops whose output shape is data: NonZero (its length), TopK (k), Range (start, limit, delta),
Compress (its condition).

sofie's memory plan is fixed at compile time, so each of them works when the data that sets
the shape is known at compile time (a constant, or folded from constants and static shapes:
Shape -> Gather -> Range, Div of a static dim as TopK's k) and is refused otherwise, with a
SofieError naming the node and why, never a wrong answer or a crash. (A TopK's k given as a
graph input is a run-time dim bounded by the axis size: tests/e2e/test_run_time_dims.py.) Results against
onnxruntime: integer outputs exactly, TopK's float values exactly (they are copies).
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import sofie
from sofie.errors import SofieError
from tests.e2e.test_ops import BATCHES, Suite, f32, i64

I64 = TensorProto.INT64


def _out(s: Suite, name: str, value: str, elem: int) -> None:
    s.output(name, value, elem)
    s.cases.append(name)


def _shape_dim(s: Suite, x: str, axis: int) -> str:
    """Shape(x)[axis] as a 0-d int64 (folds when that dim is static)."""
    return s.node("Gather", [s.node("Shape", [x]), s.init(np.array(axis, np.int64))], axis=0)


def known_suite() -> Suite:
    """Cases whose shape-setting data is known at compile time; x is [N, 6] at run time."""
    s = Suite("data_dependent", 19)
    s._case = "x"
    x = s.inp(("N", 6))

    s._case = "nonzero_const"
    c = s.init(np.array([[0, 1.5, 0], [2, 0, -3]], np.float32))
    _out(s, s._case, s.node("NonZero", [c]), I64)
    s._case = "nonzero_folded"  # a chain of constants folds first
    g = s.node("Greater", [s.init(f32(0.5, -1, 2, 0, 3)), s.init(f32(0.0))])
    _out(s, s._case, s.node("NonZero", [g]), I64)
    s._case = "nonzero_gather"  # its result indexes run-time data: the columns where c != 0
    cols = s.node("NonZero", [s.init(np.array([0, 1, 0, 1, 1, 0], np.int32))])
    idx = s.node("Reshape", [cols, s.init(i64(-1))])
    _out(s, s._case, s.node("Gather", [x, idx], axis=1), TensorProto.FLOAT)

    s._case = "range_int"
    _out(s, s._case, s.node("Range", [s.init(np.array(2, np.int64)), s.init(np.array(11, np.int64)),
                                      s.init(np.array(3, np.int64))]), I64)
    s._case = "range_float_down"
    _out(s, s._case, s.node("Range", [s.init(np.array(1.0, np.float32)), s.init(np.array(-1.25, np.float32)),
                                      s.init(np.array(-0.5, np.float32))]), TensorProto.FLOAT)
    s._case = "range_empty"
    _out(s, s._case, s.node("Range", [s.init(np.array(5, np.int32)), s.init(np.array(5, np.int32)),
                                      s.init(np.array(1, np.int32))]), TensorProto.INT32)
    s._case = "range_from_shape"  # 0 .. x.shape[1]: a static dim of a run-time input
    r = s.node("Range", [s.init(np.array(0, np.int64)), _shape_dim(s, x, 1), s.init(np.array(1, np.int64))])
    _out(s, s._case, s.node("Add", [x, s.node("Cast", [r], to=TensorProto.FLOAT)]), TensorProto.FLOAT)

    for largest in (1, 0):
        s._case = f"topk_k_from_shape_largest{largest}"  # k = x.shape[1] / 2 = 3
        k = s.node("Reshape", [s.node("Div", [_shape_dim(s, x, 1), s.init(np.array(2, np.int64))]),
                               s.init(i64(1))])
        v, i = s.node("TopK", [x, k], 2, axis=1, largest=largest)
        _out(s, s._case + "_values", v, TensorProto.FLOAT)
        _out(s, s._case + "_indices", i, I64)
    bool_ = np.bool_
    for tag, cond, axis in [("axis1", [1, 0, 1, 1, 0, 0], 1), ("axis_m1_short", [0, 1, 1], -1),
                            ("axis1_none", [0, 0, 0, 0, 0, 0], 1)]:
        s._case = f"compress_{tag}"
        _out(s, s._case, s.node("Compress", [x, s.init(np.array(cond, bool_))], axis=axis), TensorProto.FLOAT)
    s._case = "compress_axis0"
    y = s.inp((4, 3, 2))
    _out(s, s._case, s.node("Compress", [y, s.init(np.array([1, 0, 0, 1], bool_))], axis=0), TensorProto.FLOAT)
    s._case = "compress_flat"  # no axis: over the flattened input
    cond = np.random.default_rng(1).random(24) > 0.5
    _out(s, s._case, s.node("Compress", [y, s.init(cond)]), TensorProto.FLOAT)
    s._case = "compress_folded_condition"  # condition from constants, int64 input
    c = s.node("Greater", [s.init(f32(3, -1, 2)), s.init(f32(0.0))])
    _out(s, s._case, s.node("Compress", [s.init(np.arange(6, dtype=np.int64).reshape(3, 2)), c], axis=0), I64)

    s._case = "topk_k0"  # k = 0: empty outputs
    v, i = s.node("TopK", [x, s.init(i64(0))], 2, axis=1)
    _out(s, s._case, i, I64)
    return s


SUITE = known_suite()
_RESULTS: dict = {}


def _results() -> dict:
    import onnxruntime as ort
    if not _RESULTS:
        proto = SUITE.model()
        m = sofie.compile(proto, name="data_dependent")
        sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
        for batch in BATCHES:
            feeds = SUITE.feeds(batch, seed=batch)
            got = m(*[feeds[n] for n, _, _ in m.inputs])
            for o, g, r in zip(proto.graph.output, got, sess.run(None, feeds), strict=True):
                _RESULTS.setdefault(o.name, {})[batch] = (g, r)
    return _RESULTS


@pytest.mark.parametrize("case", SUITE.cases)
def test_known_at_compile_time_matches_onnxruntime(case: str) -> None:
    for batch, (got, ref) in _results()[case].items():
        assert got.dtype == ref.dtype and got.shape == ref.shape, f"{case} batch {batch}: {got.shape} {ref.shape}"
        np.testing.assert_array_equal(got, ref, err_msg=f"{case} batch {batch}")


# ---- refused: the shape-setting data is known only at run time -------------------------------

def _model(nodes: list, inputs: list, opset: int = 19) -> onnx.ModelProto:
    outs = [helper.make_tensor_value_info(o, TensorProto.UNDEFINED, None) for o in nodes[-1].output]
    g = helper.make_graph(nodes, "refused", inputs, outs)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


def _x(shape: list, elem: int = TensorProto.FLOAT, name: str = "x") -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, elem, shape)


def _const(name: str, value: np.ndarray) -> onnx.NodeProto:
    return helper.make_node("Constant", [], [name], value=onnx.numpy_helper.from_array(value, name))


REFUSED = {
    "nonzero_run_time": (
        lambda: _model([helper.make_node("NonZero", ["x"], ["y"], name="nz")], [_x([3, 4])]),
        r"nz.*NonZero's output length.*run time"),
    "nonzero_of_compare": (  # data-dependent through a chain
        lambda: _model([_const("z", f32(0.0)), helper.make_node("Greater", ["x", "z"], ["g"]),
                        helper.make_node("NonZero", ["g"], ["y"], name="nz2")], [_x(["N", 4])]),
        r"nz2.*NonZero's output length.*run time"),
    "topk_k_from_batch": (  # k = the run-time batch
        lambda: _model([helper.make_node("Shape", ["x"], ["s"], start=0, end=1),
                        helper.make_node("TopK", ["x", "s"], ["v", "i"], name="tk2", axis=1)], [_x(["N", 70])]),
        r"tk2.*k operand.*compile time"),
    "range_limit_input": (
        lambda: _model([_const("a", np.array(0, np.int64)), _const("d", np.array(1, np.int64)),
                        helper.make_node("Range", ["a", "l", "d"], ["y"], name="rg")],
                       [_x([], TensorProto.INT64, "l")]),
        r"rg.*limit of a Range"),
    "range_delta_input": (
        lambda: _model([_const("a", np.array(0, np.float32)), _const("l", np.array(4, np.float32)),
                        helper.make_node("Range", ["a", "l", "d"], ["y"], name="rg2")],
                       [_x([], TensorProto.FLOAT, "d")]),
        r"rg2.*delta of a Range"),
    "range_to_batch": (  # 0 .. N, N the run-time batch
        lambda: _model([_const("a", np.array(0, np.int64)), _const("d", np.array(1, np.int64)),
                        _const("i0", np.array(0, np.int64)), helper.make_node("Shape", ["x"], ["s"]),
                        helper.make_node("Gather", ["s", "i0"], ["n"]),
                        helper.make_node("Range", ["a", "n", "d"], ["y"], name="rg3")], [_x(["N", 3])]),
        r"rg3.*limit of a Range"),
    "compress_run_time_condition": (
        lambda: _model([helper.make_node("Compress", ["x", "c"], ["y"], name="cp", axis=1)],
                       [_x(["N", 4]), _x([4], TensorProto.BOOL, "c")]),
        r"cp.*condition of a Compress.*run time"),
    "compress_past_the_axis": (
        lambda: _model([_const("c", np.array([0, 0, 0, 0, 1], np.bool_)),
                        helper.make_node("Compress", ["x", "c"], ["y"], name="cp2", axis=1)], [_x(["N", 4])]),
        r"cp2.*selects position 4, past the 4 elements"),
    "compress_flat_symbolic": (
        lambda: _model([_const("c", np.array([1, 0], np.bool_)),
                        helper.make_node("Compress", ["x", "c"], ["y"], name="cp3")], [_x(["N", 4])]),
        r"cp3.*flattens the input.*static"),
    "range_delta_zero": (
        lambda: _model([_const("a", np.array(0, np.int64)), _const("l", np.array(4, np.int64)),
                        _const("d", np.array(0, np.int64)),
                        helper.make_node("Range", ["a", "l", "d"], ["y"], name="rg4")], []),
        r"rg4.*delta 0"),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_run_time_shape_data_is_refused_naming_the_node(case: str) -> None:
    build, pattern = REFUSED[case]
    with pytest.raises(SofieError, match=pattern):
        sofie.compile(build(), blas="none")
