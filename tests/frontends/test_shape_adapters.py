"""Older ONNX forms of the shape ops (attributes that later opsets made inputs, a Split whose part
count is the node's output count, EyeLike's numeric dtype) import to the same graph ops: the
imported graph, run by the numpy interpreter, matches onnxruntime on the original model."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from sofie.frontends.onnx import load_onnx
from sofie.ir.interpret import run_function


def _model(op: str, opset: int, n_out: int = 1, elem: int = TensorProto.FLOAT, **attrs) -> onnx.ModelProto:
    outs = [f"y{k}" for k in range(n_out)]
    g = helper.make_graph([helper.make_node(op, ["x"], outs, name="n", **attrs)], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 6])],
                          [helper.make_tensor_value_info(o, elem, None) for o in outs])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 7
    return m


CASES = {
    "slice_opset9_attributes": _model("Slice", 9, starts=[1, -4], ends=[100, -1], axes=[0, 1]),
    "slice_opset9_default_axes": _model("Slice", 9, starts=[1], ends=[3]),
    "pad_opset10_attributes": _model("Pad", 10, pads=[1, 0, 0, 2], value=3.5),
    "pad_opset10_reflect": _model("Pad", 10, pads=[0, 2, 0, 1], mode="reflect"),
    "split_opset11_attribute": _model("Split", 11, n_out=2, axis=1, split=[2, 4]),
    "split_opset13_equal_by_outputs": _model("Split", 13, n_out=3, axis=1),
    "eye_like_dtype": _model("EyeLike", 13, elem=TensorProto.INT64, dtype=TensorProto.INT64, k=-1),
}


@pytest.mark.parametrize("case", list(CASES))
def test_old_form_matches_onnxruntime(case: str) -> None:
    import onnxruntime as ort
    model = CASES[case]
    x = np.random.default_rng(0).standard_normal((4, 6)).astype(np.float32)
    got = run_function(load_onnx(model), [x])
    ref = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})
    assert len(got) == len(ref)
    for g, r in zip(got, ref, strict=True):
        assert g.dtype == r.dtype and g.shape == r.shape, f"{g.dtype}{g.shape} vs {r.dtype}{r.shape}"
        np.testing.assert_array_equal(g, r)
