"""ReverseSequence against onnxruntime: time-major and batch-major, rank 2 to 4, lengths 0 to
the full sequence, a symbolic batch, an integer element type; copies, so compared exactly.
A length outside [0, steps] is an error at run time naming the node (onnxruntime also fails)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import sofie
from sofie.errors import SofieError

# name: (x shape with "N" the batch, batch_axis, time_axis, element type)
CASES = {
    "time_major_3d": ((5, "N", 3), 1, 0, TensorProto.FLOAT),
    "batch_major_2d": (("N", 6), 0, 1, TensorProto.FLOAT),
    "batch_major_4d": (("N", 4, 2, 3), 0, 1, TensorProto.FLOAT),
    "time_major_int32": ((4, "N"), 1, 0, TensorProto.INT32),
}
NP = {TensorProto.FLOAT: np.float32, TensorProto.INT32: np.int32}


def _model() -> onnx.ModelProto:
    nodes, ins, outs = [], [], []
    for name, (shape, b, t, elem) in CASES.items():
        ins += [helper.make_tensor_value_info(f"{name}.x", elem, list(shape)),
                helper.make_tensor_value_info(f"{name}.lens", TensorProto.INT64, ["N"])]
        nodes.append(helper.make_node("ReverseSequence", [f"{name}.x", f"{name}.lens"], [name], name=name,
                                      batch_axis=b, time_axis=t))
        outs.append(helper.make_tensor_value_info(name, elem, None))
    return helper.make_model(helper.make_graph(nodes, "reverse_sequence", ins, outs),
                             opset_imports=[helper.make_opsetid("", 19)])


def _feeds(batch: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    feeds = {}
    for name, (shape, _, t, elem) in CASES.items():
        dims = tuple(batch if d == "N" else d for d in shape)
        feeds[f"{name}.x"] = (rng.standard_normal(dims) * 10).astype(NP[elem])
        steps = dims[t]
        lens = rng.integers(0, steps + 1, batch)
        lens[0], lens[-1] = 0 if batch > 1 else lens[0], steps  # the empty and the full sequence
        feeds[f"{name}.lens"] = lens.astype(np.int64)
    return feeds


@pytest.fixture(scope="module")
def compiled():
    proto = _model()
    return proto, sofie.compile(proto, name="reverse_sequence")


@pytest.mark.parametrize("batch", [1, 3, 7])
def test_matches_onnxruntime(compiled, batch: int) -> None:
    import onnxruntime as ort
    proto, m = compiled
    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    feeds = _feeds(batch, seed=batch)
    got = m(*[feeds[n] for n, _, _ in m.inputs])
    for o, g, r in zip(proto.graph.output, got, sess.run(None, feeds), strict=True):
        assert g.dtype == r.dtype and g.shape == r.shape, o.name
        np.testing.assert_array_equal(g, r, err_msg=f"{o.name} batch {batch}")


def test_length_past_the_sequence_is_a_run_time_error(compiled) -> None:
    _, m = compiled
    feeds = _feeds(2, seed=0)
    feeds["time_major_3d.lens"] = np.array([1, 6], np.int64)  # 5 steps
    with pytest.raises(Exception, match=r"time_major_3d.*sequence length 6 outside \[0, 5\]"):
        m(*[feeds[n] for n, _, _ in m.inputs])


def test_axes_other_than_0_and_1_are_refused() -> None:
    node = helper.make_node("ReverseSequence", ["x", "l"], ["y"], name="rs", batch_axis=0, time_axis=2)
    g = helper.make_graph([node], "bad", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 4]),
                                          helper.make_tensor_value_info("l", TensorProto.INT64, [2])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    with pytest.raises(SofieError, match=r"rs.*batch_axis and time_axis must be 0 and 1"):
        sofie.compile(helper.make_model(g, opset_imports=[helper.make_opsetid("", 19)]), blas="none")
