"""Shape inputs bound as constants: many node tests feed an operand that decides the result's
shape (ReduceSum's axes, Reshape's shape, Pad's pads, Resize's scales, TopK's k) as a graph
input, with its value in the test data. sofie compiles a fixed shape plan, so it refuses them
as given. Exported models carry these operands as constants; a test whose every data set holds
the same value of such an input is rerun with that input turned into an initializer (as
onnx-mlir's backend tests do with their constant-input mode). Those passes are counted apart
from the tests that pass as given, and the report says which inputs were bound.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper

RUN_TIME_SHAPE = "computed at run time"  # the words of sofie's refusal that this addresses


def shape_inputs(model: onnx.ModelProto) -> list[int]:
    """Positions of the graph inputs that some node reads as a compile-time operand (for a
    Loop's trip count and condition: the inputs they are computed from, as in Range's body)."""
    from sofie.frontends.onnx_control_flow import COMPILE_TIME_INPUTS
    from sofie.ir.registry import lookup_onnx
    graph_inputs = [i.name for i in model.graph.input]
    wanted: set[str] = set()
    for node in model.graph.node:
        opdef = lookup_onnx(node.op_type)
        fixed = COMPILE_TIME_INPUTS.get(node.op_type, ())
        for k, name in enumerate(node.input):
            if k in fixed:
                wanted |= _sources(model, name)
            elif name in graph_inputs and opdef is not None and opdef.is_compile_time(k):
                wanted.add(name)
    return [k for k, name in enumerate(graph_inputs) if name in wanted]


def _sources(model: onnx.ModelProto, name: str) -> set[str]:
    """The graph inputs value `name` is computed from."""
    producers = {o: n for n in model.graph.node for o in n.output}
    inputs = {i.name for i in model.graph.input}
    seen, todo = set(), [name]
    while todo:
        v = todo.pop()
        if v and v not in seen:
            seen.add(v)
            todo.extend(producers[v].input if v in producers else [])
    return seen & inputs


def bind(model: onnx.ModelProto, data_sets: list, positions: list[int]) -> onnx.ModelProto | None:
    """`model` with the graph inputs at `positions` made initializers holding their value in
    the test data; None when the data sets disagree on one of them (a shape that varies)."""
    values = {}
    for k in positions:
        first = np.asarray(data_sets[0][0][k])
        if any(not np.array_equal(np.asarray(ins[k]), first) for ins, _ in data_sets[1:]):
            return None
        values[model.graph.input[k].name] = first
    out = onnx.ModelProto()
    out.CopyFrom(model)
    kept = [i for k, i in enumerate(model.graph.input) if k not in positions]
    del out.graph.input[:]
    out.graph.input.extend(kept)
    out.graph.initializer.extend(numpy_helper.from_array(v, name) for name, v in values.items())
    return out


def unbound(inputs: list, positions: list[int]) -> list:
    """A data set's inputs without the bound ones."""
    return [a for k, a in enumerate(inputs) if k not in positions]
