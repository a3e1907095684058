"""Ops ONNX defines as functions of other ops, imported as their inlined bodies
(sofie/frontends/onnx_functions.py): plain function bodies, context-dependent ones (built by
onnx for the node's inputs), attribute references with and without the node's value.
One model, compiled once, compared with onnxruntime at rtol 1e-5 / atol 1e-6 (float32; the
losses sum a few terms in another order)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import sofie
from sofie.errors import SofieError
from sofie.frontends.onnx import load_onnx
from tests.conftest import ort_run

RTOL, ATOL = 1e-5, 1e-6
F, I64 = TensorProto.FLOAT, TensorProto.INT64

# (output, node): each node reads the scores x [3, 5, 2] (or the log-probabilities) and labels t [3, 2]
CASES = [
    ("sce_mean", helper.make_node("SoftmaxCrossEntropyLoss", ["x", "t"], ["sce_mean"])),  # default reduction
    ("sce_none", helper.make_node("SoftmaxCrossEntropyLoss", ["x", "t"], ["sce_none"], reduction="none")),
    ("sce_ignore", helper.make_node("SoftmaxCrossEntropyLoss", ["x", "t", "w"], ["sce_ignore"],
                                    reduction="sum", ignore_index=1)),
    ("nll_mean_w", helper.make_node("NegativeLogLikelihoodLoss", ["x", "t", "w"], ["nll_mean_w"])),
    ("nll_none", helper.make_node("NegativeLogLikelihoodLoss", ["x", "t"], ["nll_none"], reduction="none")),
]


def model() -> onnx.ModelProto:
    inits = [helper.make_tensor("t", I64, [3, 2], [0, 4, 1, 1, 3, 2]),
             helper.make_tensor("w", F, [5], [0.5, 1.0, 2.0, 1.5, 0.25])]
    g = helper.make_graph([node for _, node in CASES], "functions",
                          [helper.make_tensor_value_info("x", F, [3, 5, 2])],
                          [helper.make_tensor_value_info(name, F, None) for name, _ in CASES], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("functions") / "functions.onnx")
    onnx.save(model(), path)
    return path, sofie.compile(path)


@pytest.mark.parametrize("k", range(len(CASES)), ids=[name for name, _ in CASES])
def test_function_body_matches_onnxruntime(compiled, k):
    path, m = compiled
    x = np.random.default_rng(0).standard_normal((3, 5, 2)).astype(np.float32)
    want, got = ort_run(path, x), m(x)
    assert len(got) == len(CASES)
    np.testing.assert_allclose(got[k], want[k], rtol=RTOL, atol=ATOL)


def test_the_body_is_made_of_ordinary_ops():
    ops = {op.name for op in load_onnx(model()).main.ops}
    assert "graph.log_softmax" in ops, ops


def test_a_body_op_sofie_lacks_names_the_function():
    """Bernoulli's body draws random numbers (RandomUniformLike): the refusal says where it came from."""
    g = helper.make_graph([helper.make_node("Bernoulli", ["x"], ["y"])], "b",
                          [helper.make_tensor_value_info("x", F, [2, 3])],
                          [helper.make_tensor_value_info("y", F, None)])
    with pytest.raises(SofieError, match=r"Bernoulli.*in its ONNX function body.*'RandomUniformLike'"):
        load_onnx(helper.make_model(g, opset_imports=[helper.make_opsetid("", 20)]))
