"""TFormula expressions (external TNeuron activations) as ONNX nodes, checked with onnx's
reference evaluator against numpy; and the TMultiLayerPerceptron layouts sofie refuses."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from sofie.errors import SofieError
from sofie.frontends.root_formula import formula_nodes
from sofie.frontends.root_mlp import mlp_to_onnx

X = np.linspace(-3.0, 3.0, 13)


class _Emit:
    def __init__(self) -> None:
        self.nodes, self.inits, self.k = [], [], 0

    def node(self, op, inputs):
        self.k += 1
        self.nodes.append(helper.make_node(op, list(inputs), [f"t{self.k}"]))
        return f"t{self.k}"

    def constant(self, value):
        self.k += 1
        self.inits.append(numpy_helper.from_array(np.array(value, dtype=np.float64), f"c{self.k}"))
        return f"c{self.k}"


def _run(expression: str, params=()) -> np.ndarray:
    e = _Emit()
    out = formula_nodes(expression, params, "x", e, "test")
    if out == "x":
        e.nodes.append(helper.make_node("Identity", ["x"], ["y"]))
    else:
        e.nodes[-1].output[0] = "y"
    g = helper.make_graph(e.nodes, "f", [helper.make_tensor_value_info("x", TensorProto.DOUBLE, [None])],
                          [helper.make_tensor_value_info("y", TensorProto.DOUBLE, [None])], e.inits)
    return ReferenceEvaluator(helper.make_model(g)).run(None, {"x": X})[0]


@pytest.mark.parametrize("expression, params, want", [
    ("x/(1+abs(x))", (), X / (1 + np.abs(X))),
    ("[0]*x/(1+abs(x))+[1]*TMath::TanH(x)", (0.7, 0.4), 0.7 * X / (1 + np.abs(X)) + 0.4 * np.tanh(X)),
    ("x^2 - 2*x", (), X**2 - 2 * X),
    ("-sq(x)+pow(x,3)", (), -X**2 + X**3),
    ("TMath::Exp(-x*x/2)*TMath::Pi()", (), np.exp(-X * X / 2) * np.pi),
    ("std::max(x, 0.5*x)", (), np.maximum(X, 0.5 * X)),
    ("log10(1+x*x)+sqrt(abs(x))", (), np.log10(1 + X * X) + np.sqrt(np.abs(X))),
    ("x", (), X),
])
def test_formula_matches_numpy(expression: str, params, want: np.ndarray) -> None:
    np.testing.assert_allclose(_run(expression, params), want, rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("expression, params, message", [
    ("[a]*x", (), r"named parameter \[a\]"),
    ("[2]*x", (1.0,), r"uses \[2\], but the file holds 1 parameter values"),
    ("gaus(x)", (), r"the function gaus\(\) with 1 argument"),
    ("x*y", (), "the name 'y'"),
    ("x ? 1 : 0", (), "cannot read the formula"),
])
def test_formula_refusals(expression: str, params, message: str) -> None:
    with pytest.raises(SofieError, match=message):
        _run(expression, params)


class _Obj:
    """Stands for an uproot object: `member(name)`."""

    def __init__(self, **members) -> None:
        self.members = members

    def member(self, name: str):
        return self.members[name]


def _network(types: list[int], structure: str = "a,b:2:y") -> _Obj:
    inputs = [_Obj(fName=n, fNorm=[1.0, 0.0], fType=0, fpre=[], fWeight=0.0) for n in ("a", "b")]
    hidden = [_Obj(fName=f"h{i}", fNorm=[1.0, 0.0], fType=t, fpre=[None, None], fWeight=0.1) for i, t in
              enumerate(types)]
    out = [_Obj(fName="y", fNorm=[1.0, 0.0], fType=1, fpre=[None, None], fWeight=0.0)]
    syn = [_Obj(fpre=None, fpost=None, fweight=0.5) for _ in range(6)]
    return _Obj(fNetwork=inputs + hidden + out, fFirstLayer=inputs, fLastLayer=out, fSynapses=syn,
                fStructure=structure)


def test_tmlp_layouts_refused() -> None:
    assert mlp_to_onnx(_network([2, 2]), "ok").graph.node  # sigmoid hidden layer: fine
    with pytest.raises(SofieError, match=r"mixes neuron types \['sigmoid', 'tanh'\]"):
        mlp_to_onnx(_network([2, 3]), "m")
    with pytest.raises(SofieError, match=r"neuron type off \(0\) is not supported"):
        mlp_to_onnx(_network([0, 0]), "m")
    with pytest.raises(SofieError, match=r"layers \[2, 3, 1\] .* add up to 6 neurons, the network holds 5"):
        mlp_to_onnx(_network([2, 2], "a,b:3:y"), "m")
    with pytest.raises(SofieError, match="cannot read the layer structure 'a,b:x:y'"):
        mlp_to_onnx(_network([2, 2], "a,b:x:y"), "m")
    bad = _network([2, 2])
    bad.members["fSynapses"][0].members["fpost"] = bad.members["fNetwork"][0]  # resolved, and wrong
    with pytest.raises(SofieError, match="synapse 0 does not link the neurons of TMultiLayerPerceptron's order"):
        mlp_to_onnx(bad, "m")
