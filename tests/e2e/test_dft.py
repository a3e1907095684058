"""DFT against onnxruntime, opset 17 (axis attribute) and 20 (axis input): real and complex
([..., 2]) signals, inverse, onesided, dft_length padding and cutting, the inverse one-sided
form (a real signal from half a spectrum), any signal axis, a symbolic batch; float32 and
float64. sofie sums in double over exact twiddles, onnxruntime in the element type (an FFT):
float32 rtol 1e-4 / atol 1e-4 (outputs of sums of up to 16 terms of size ~1). float64 against
the ONNX reference evaluator (numpy's FFT) at 1e-9: onnxruntime's double inverse DFT is off by
float32's rounding (3e-8 relative), likely a float 1/n."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

import sofie
from sofie.errors import SofieError

# name: (x shape, "N" the batch, axis, dft_length or None, inverse, onesided)
CASES = {
    "real_axis1": (("N", 8, 3, 1), 1, None, 0, 0),
    "complex_axis2": (("N", 3, 7, 2), 2, None, 0, 0),
    "complex_inverse": (("N", 6, 2), 1, None, 1, 0),
    "real_onesided": (("N", 9, 1), 1, None, 0, 1),
    "real_padded": (("N", 5, 1), 1, 8, 0, 0),
    "complex_cut": (("N", 10, 2), 1, 6, 0, 0),
    "irfft_default_length": (("N", 5, 2, 2), 1, None, 1, 1),
    "irfft_odd_length": (("N", 4, 2), 1, 7, 1, 1),
    "negative_axis": (("N", 4, 6, 1), -2, None, 0, 0),
}
TYPES = {"f32": (TensorProto.FLOAT, np.float32, 1e-4, 1e-4), "f64": (TensorProto.DOUBLE, np.float64, 1e-9, 1e-9)}


def _model(opset: int, elem: int) -> onnx.ModelProto:
    nodes, ins, outs, inits = [], [], [], []
    for name, (shape, axis, length, inverse, onesided) in CASES.items():
        ins.append(helper.make_tensor_value_info(f"{name}.x", elem, list(shape)))
        inputs = [f"{name}.x", ""]
        if length is not None:
            inits.append(onnx.numpy_helper.from_array(np.array(length, np.int64), f"{name}.n"))
            inputs[1] = f"{name}.n"
        attrs = dict(inverse=inverse, onesided=onesided)
        if opset >= 20:
            inits.append(onnx.numpy_helper.from_array(np.array(axis, np.int64), f"{name}.axis"))
            inputs.append(f"{name}.axis")
        else:
            attrs["axis"] = axis
        nodes.append(helper.make_node("DFT", inputs, [name], name=name, **attrs))
        outs.append(helper.make_tensor_value_info(name, elem, None))
    g = helper.make_graph(nodes, f"dft{opset}", ins, outs, inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


@pytest.mark.parametrize("opset,t", [(17, "f32"), (20, "f32"), (20, "f64")])
def test_dft_matches_onnxruntime(opset: int, t: str) -> None:
    import onnxruntime as ort
    elem, dt, rtol, atol = TYPES[t]
    proto = _model(opset, elem)
    m = sofie.compile(proto, name=f"dft{opset}_{t}")
    if t == "f32":
        sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    else:
        sess = ReferenceEvaluator(proto)
    for batch in (1, 3):
        rng = np.random.default_rng(batch)
        feeds = {f"{k}.x": rng.standard_normal(tuple(batch if d == "N" else d for d in v[0])).astype(dt)
                 for k, v in CASES.items()}
        got = m(*[feeds[n] for n, _, _ in m.inputs])
        for o, g, r in zip(proto.graph.output, got, sess.run(None, feeds), strict=True):
            assert g.dtype == r.dtype and g.shape == r.shape, f"{o.name}: {g.shape} vs {r.shape}"
            np.testing.assert_allclose(g, r, rtol=rtol, atol=atol, err_msg=f"{o.name} batch {batch}")


def _one(node: onnx.NodeProto, shape: list, inits: list = ()) -> onnx.ModelProto:
    g = helper.make_graph([node], "bad", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], list(inits))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 20)])


def test_run_time_axis_or_length_is_refused() -> None:
    node = helper.make_node("DFT", ["x", "n"], ["y"], name="dft_n")
    g = helper.make_graph([node], "bad", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 8, 1]),
                                          helper.make_tensor_value_info("n", TensorProto.INT64, [])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    with pytest.raises(SofieError, match=r"dft_n.*dft_length operand.*run time"):
        sofie.compile(helper.make_model(g, opset_imports=[helper.make_opsetid("", 20)]), blas="none")


def test_bad_signal_shape_or_axis_is_refused() -> None:
    with pytest.raises(SofieError, match=r"dft3.*must end in 1 \(real\) or 2 \(complex\)"):
        sofie.compile(_one(helper.make_node("DFT", ["x"], ["y"], name="dft3"), [2, 8, 3]), blas="none")
    axis = onnx.numpy_helper.from_array(np.array(-1, np.int64), "a")
    with pytest.raises(SofieError, match=r"dft4.*axis -1 is not a signal axis"):
        sofie.compile(_one(helper.make_node("DFT", ["x", "", "a"], ["y"], name="dft4"), [2, 8, 1], [axis]),
                      blas="none")
