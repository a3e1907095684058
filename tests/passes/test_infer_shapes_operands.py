"""infer-shapes turns a compile-time operand computed by ops into a weight of the operand's own
element type: a Pad value of -inf stays a float (it was cast to int64, garbage and a warning)."""

from __future__ import annotations

import math
import warnings

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from sofie.frontends.onnx import load_onnx
from sofie.pipeline import run_pipeline


def pad_with_computed_value():
    inf = numpy_helper.from_array(np.array([np.inf], np.float32), "inf")
    pads = numpy_helper.from_array(np.array([0, 1, 0, 1], np.int64), "pads")
    nodes = [helper.make_node("Neg", ["inf"], ["neg_inf"], name="neg"),  # computed: not a weight yet
             helper.make_node("Pad", ["x", "pads", "neg_inf"], ["y"], name="pad")]
    g = helper.make_graph(nodes, "padinf", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 5])], [inf, pads])
    return load_onnx(helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)]))


def test_a_float_operand_stays_float() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the int64 cast of -inf warned "invalid value encountered in cast"
        module, _ = run_pipeline(pad_with_computed_value(), ["infer-shapes"])
    pad = next(op for op in module.main.ops if op.name == "graph.pad")
    value = pad.operands[2]
    assert value.owner.name == "graph.weight" and value.type.dtype == "f32"
    data = module.weights[value.owner.ref].data
    assert data.dtype == np.float32 and math.isinf(data[0]) and data[0] < 0
