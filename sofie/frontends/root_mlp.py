"""ROOT's TMultiLayerPerceptron (as uproot reads it) -> an ONNX graph in float64.

The model computes what `TMultiLayerPerceptron::Evaluate(index, params)` returns for every
output neuron, one event per row of x[N, inputs] (ROOT's TNeuron::GetValue):
  input neuron   (x - fNorm[1]) / fNorm[0]                 (mean, RMS of the "@" inputs)
  other neurons  f(fWeight + sum of pre-neuron value * synapse fweight), f by neuron type:
                 linear, sigmoid, tanh, gauss exp(-a*a), softmax over the layer, or an
                 external TFormula in x.
Evaluate returns the output layer as computed, without undoing the output normalisation
(only TMultiLayerPerceptron::Export's generated code multiplies it back); so does sofie.

Why the layout is rebuilt rather than followed pointer by pointer: a TSynapse points to its
neurons and each TNeuron to its synapses, a cycle, and uproot returns None for a pointer to
an object whose reading has not finished (about half of them). The network's order is fixed
instead: BuildNetwork appends the neurons layer by layer to fNetwork and, for each neuron of a
layer, one synapse per neuron of the layer before to fSynapses; DumpWeights / LoadWeights use
this order as the network's format. The layer sizes come from fStructure ("@a,b:8:4:y"), and
every pointer uproot did resolve is checked against the order, so a network built another way
is refused rather than misread.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from sofie.errors import SofieError
from sofie.frontends.root_formula import formula_nodes

K_OFF, K_LINEAR, K_SIGMOID, K_TANH, K_GAUSS, K_SOFTMAX, K_EXTERNAL = range(7)
TYPE_NAMES = {K_OFF: "off", K_LINEAR: "linear", K_SIGMOID: "sigmoid", K_TANH: "tanh", K_GAUSS: "gauss",
              K_SOFTMAX: "softmax", K_EXTERNAL: "external"}
OPSET = 18


def mlp_to_onnx(mlp: Any, what: str) -> onnx.ModelProto:
    """`mlp`: the uproot object; `what`: 'file.root:name', for errors."""
    net = list(mlp.member("fNetwork"))
    synapses = list(mlp.member("fSynapses"))
    sizes = _layer_sizes(str(mlp.member("fStructure")), len(mlp.member("fFirstLayer")),
                         len(mlp.member("fLastLayer")), len(net), what)
    layers, start = [], 0
    for n in sizes:
        layers.append(net[start:start + n])
        start += n
    weights = _synapse_weights(layers, synapses, net, what)
    g = _Graph()
    inputs = layers[0]
    norm = np.array([list(n.member("fNorm")) for n in inputs], dtype=np.float64)  # [RMS, mean] per input
    h = g.node("Div", [g.node("Sub", ["x", g.tensor("input_mean", norm[:, 1])]), g.tensor("input_rms", norm[:, 0])])
    for k, (layer, w) in enumerate(zip(layers[1:], weights), start=1):
        bias = np.array([n.member("fWeight") for n in layer], dtype=np.float64)
        h = g.node("Gemm", [h, g.tensor(f"layer{k}.weight", w), g.tensor(f"layer{k}.bias", bias)])
        h = _activation(g, h, layer, f"{what}: layer {k}")
    g.rename(h, "y")
    graph = helper.make_graph(
        g.nodes, "tmlp", [helper.make_tensor_value_info("x", TensorProto.DOUBLE, ["N", sizes[0]])],
        [helper.make_tensor_value_info("y", TensorProto.DOUBLE, ["N", sizes[-1]])], g.initializers,
        doc_string=f"TMultiLayerPerceptron {mlp.member('fStructure')}; inputs "
                   + ", ".join(str(n.member("fName")) for n in inputs))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="sofie root")


def _layer_sizes(structure: str, n_first: int, n_last: int, n_neurons: int, what: str) -> list[int]:
    parts = structure.split(":")
    hidden = parts[1:-1]
    if len(parts) < 2 or not all(re.fullmatch(r"\s*\d+\s*", p) for p in hidden):
        raise SofieError(f"{what}: cannot read the layer structure '{structure}' (expected 'in1,in2:8:4:out')")
    sizes = [n_first, *(int(p) for p in hidden), n_last]
    if sum(sizes) != n_neurons or 0 in sizes:
        raise SofieError(f"{what}: layers {sizes} from '{structure}' add up to {sum(sizes)} neurons, "
                         f"the network holds {n_neurons}")
    return sizes


def _synapse_weights(layers: list[list[Any]], synapses: list[Any], net: list[Any], what: str) -> list[np.ndarray]:
    """One [previous layer, layer] matrix per layer after the first, from fSynapses in
    BuildNetwork's order, checked against every pointer uproot resolved."""
    want = sum(len(a) * len(b) for a, b in zip(layers, layers[1:]))
    if len(synapses) != want:
        raise SofieError(f"{what}: {len(synapses)} synapses, a fully connected network of layers "
                         f"{[len(x) for x in layers]} has {want}")
    neuron_at = {id(n): i for i, n in enumerate(net)}
    synapse_at = {id(s): i for i, s in enumerate(synapses)}
    out, k, first = [], 0, 0
    for prev, layer in zip(layers, layers[1:]):
        w = np.empty((len(prev), len(layer)), dtype=np.float64)
        for j, neuron in enumerate(layer):
            _check_links(neuron, "fpre", range(k, k + len(prev)), synapse_at, what)
            for i in range(len(prev)):
                s = synapses[k]
                _check_end(s, "fpre", first + i, neuron_at, what, k)
                _check_end(s, "fpost", first + len(prev) + j, neuron_at, what, k)
                w[i, j] = float(s.member("fweight"))
                k += 1
        first += len(prev)
        out.append(w)
    return out


def _check_links(neuron: Any, member: str, expected: range, synapse_at: dict[int, int], what: str) -> None:
    links = list(neuron.member(member))
    if len(links) != len(expected):
        raise SofieError(f"{what}: neuron {neuron.member('fName')} has {len(links)} input synapses, "
                         f"expected {len(expected)} (a fully connected layer)")
    for pos, s in enumerate(links):
        if s is not None and synapse_at.get(id(s)) != expected[pos]:
            raise SofieError(f"{what}: neuron {neuron.member('fName')}'s synapses are not in "
                             f"TMultiLayerPerceptron's order; sofie cannot tell its layout")


def _check_end(synapse: Any, member: str, expected: int, neuron_at: dict[int, int], what: str, k: int) -> None:
    n = synapse.member(member)
    if n is not None and neuron_at.get(id(n)) != expected:
        raise SofieError(f"{what}: synapse {k} does not link the neurons of TMultiLayerPerceptron's order; "
                         f"sofie cannot tell its layout")


def _activation(g: _Graph, h: str, layer: list[Any], what: str) -> str:
    types = {int(n.member("fType")) for n in layer}
    if len(types) > 1:
        raise SofieError(f"{what} mixes neuron types {sorted(TYPE_NAMES.get(t, str(t)) for t in types)}; "
                         f"sofie reads one type per layer")
    kind = types.pop()
    if kind == K_LINEAR:
        return h
    if kind == K_SIGMOID:
        return g.node("Sigmoid", [h])
    if kind == K_TANH:
        return g.node("Tanh", [h])
    if kind == K_GAUSS:
        return g.node("Exp", [g.node("Neg", [g.node("Mul", [h, h])])])
    if kind == K_SOFTMAX:
        return g.node("Softmax", [h], axis=-1)
    if kind == K_EXTERNAL:
        # one TFormula for the layer; uproot gives the neurons after the first a reference to it
        formulas = [n.member("fExtF") for n in layer if n.member("fExtF") is not None]
        if not formulas or len({str(f.member("fTitle")) for f in formulas}) > 1:
            raise SofieError(f"{what}: external neurons without one shared TFormula (fExtF)")
        formula = formulas[0]
        expression = str(formula.member("fTitle"))
        return formula_nodes(expression, formula.member("fClingParameters"), h, g,
                             f"{what}: external function {formula.member('fName')}")
    raise SofieError(f"{what}: neuron type {TYPE_NAMES.get(kind, kind)} ({kind}) is not supported "
                     f"(sofie reads linear, sigmoid, tanh, gauss, softmax and external)")


class _Graph:
    """ONNX nodes and float64 initializers under fresh names."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._count = 0

    def _fresh(self, stem: str) -> str:
        self._count += 1
        return f"{stem}_{self._count}"

    def node(self, op: str, inputs: Sequence[str], **attrs: Any) -> str:
        out = self._fresh(op.lower())
        self.nodes.append(helper.make_node(op, list(inputs), [out], name=out, **attrs))
        return out

    def tensor(self, name: str, value: np.ndarray) -> str:
        self.initializers.append(numpy_helper.from_array(np.asarray(value, dtype=np.float64), name))
        return name

    def constant(self, value: float) -> str:
        return self.tensor(self._fresh("c"), np.array(value, dtype=np.float64))

    def rename(self, old: str, new: str) -> None:
        for n in self.nodes:
            n.output[:] = [new if o == old else o for o in n.output]
            n.input[:] = [new if i == old else i for i in n.input]
