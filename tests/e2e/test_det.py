"""Det against onnxruntime: batches of square matrices (a symbolic batch, several batch axes,
1x1, singular, pivoting needed), float32 and float64 (onnxruntime has no double Det: the ONNX
reference evaluator, numpy's LU). sofie factors in double, onnxruntime in the element type:
float32 rtol 1e-4 (with atol 1e-5 for the singular ones), float64 rtol 1e-10."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

import sofie
from sofie.errors import SofieError

# name: (shape, "N" the batch)
CASES = {"batch_3x3": ("N", 3, 3), "two_batch_axes_4x4": ("N", 2, 4, 4), "one_by_one": ("N", 1, 1),
         "single_5x5": (5, 5), "singular_3x3": ("N", 3, 3), "pivot_2x2": ("N", 2, 2)}
TYPES = {"f32": (TensorProto.FLOAT, np.float32, 1e-4, 1e-5), "f64": (TensorProto.DOUBLE, np.float64, 1e-10, 1e-12)}


def _model(elem: int):
    nodes, ins, outs = [], [], []
    for name, shape in CASES.items():
        ins.append(helper.make_tensor_value_info(f"{name}.x", elem, list(shape)))
        nodes.append(helper.make_node("Det", [f"{name}.x"], [name], name=name))
        outs.append(helper.make_tensor_value_info(name, elem, None))
    return helper.make_model(helper.make_graph(nodes, "det", ins, outs), opset_imports=[helper.make_opsetid("", 19)])


def _feeds(batch: int, dt) -> dict:
    rng = np.random.default_rng(batch)
    feeds = {}
    for name, shape in CASES.items():
        x = rng.standard_normal(tuple(batch if d == "N" else d for d in shape))
        if name == "singular_3x3":
            x[..., 2, :] = x[..., 0, :] * 2 - x[..., 1, :]  # rows dependent: det 0 (to rounding)
        if name == "pivot_2x2":
            x[..., 0, 0] = 0.0  # the first pivot must come from row 1
        feeds[f"{name}.x"] = x.astype(dt)
    return feeds


@pytest.mark.parametrize("t", list(TYPES))
def test_det_matches_onnxruntime(t: str) -> None:
    import onnxruntime as ort
    elem, dt, rtol, atol = TYPES[t]
    proto = _model(elem)
    m = sofie.compile(proto, name=f"det_{t}")
    if t == "f32":
        sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    else:
        sess = ReferenceEvaluator(proto)
    for batch in (1, 4):
        feeds = _feeds(batch, dt)
        got = m(*[feeds[n] for n, _, _ in m.inputs])
        for o, g, r in zip(proto.graph.output, got, sess.run(None, feeds), strict=True):
            r = np.asarray(r, dt)
            assert g.dtype == r.dtype and g.shape == r.shape, o.name
            tol = atol if o.name == "singular_3x3" else 0.0
            np.testing.assert_allclose(g, r, rtol=rtol, atol=tol, err_msg=f"{o.name} batch {batch}")


def test_det_of_a_non_square_matrix_is_refused() -> None:
    node = helper.make_node("Det", ["x"], ["y"], name="dt")
    g = helper.make_graph([node], "bad", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    with pytest.raises(SofieError, match=r"dt.*must end in a static square matrix"):
        sofie.compile(helper.make_model(g, opset_imports=[helper.make_opsetid("", 19)]), blas="none")
