"""What a model must at least do per call, read from its ONNX graph at a given batch: the
multiply-adds of its Conv, ConvTranspose, Gemm, MatMul and RNN/GRU/LSTM nodes (FLOPs = 2 x
MACs; elementwise ops are not counted), and the bytes it must stream: its weights (initializers
and Constant nodes) plus its inputs and outputs. Intermediate activations are not counted, so
both are lower bounds: the limit they give is one no implementation can beat.

The shapes every node sees come from running the model once in ONNX Runtime with every node
output exposed (exact, whatever the exporter left symbolic)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import numpy_helper


@dataclass
class Cost:
    flops: int         # 2 x the multiply-adds of the counted ops
    bytes: int         # weights + inputs + outputs
    weight_bytes: int

    def to_json(self) -> dict:
        return {"flops": self.flops, "bytes": self.bytes, "weight_bytes": self.weight_bytes}


def node_shapes(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> dict[str, tuple[int, ...]]:
    """The shape of every value (inputs, initializers, node outputs) when the model runs on `feeds`."""
    import onnxruntime as ort
    m = onnx.ModelProto()
    m.CopyFrom(model)
    inferred = {vi.name: vi.type for vi in onnx.shape_inference.infer_shapes(model).graph.value_info}
    known = {o.name for o in m.graph.output}
    for node in m.graph.node:
        for out in node.output:
            if out and out not in known and out in inferred:
                vi = m.graph.output.add()
                vi.name = out
                vi.type.tensor_type.elem_type = inferred[out].tensor_type.elem_type
                known.add(out)
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    s = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
    values = s.run(None, feeds)
    shapes = {o.name: tuple(v.shape) for o, v in zip(s.get_outputs(), values)}
    shapes.update({k: tuple(v.shape) for k, v in feeds.items()})
    shapes.update({t.name: tuple(t.dims) for t in model.graph.initializer})
    return shapes


def _attr(node: onnx.NodeProto, name: str, default: int) -> int:
    return next((onnx.helper.get_attribute_value(a) for a in node.attribute if a.name == name), default)


def node_macs(node: onnx.NodeProto, shapes: dict[str, tuple[int, ...]]) -> int:
    """Multiply-adds of one node (0 for the ops not counted)."""
    op = node.op_type
    if op == "Conv":  # each output element: Cin/group x kernel
        w = shapes[node.input[1]]
        return math.prod(shapes[node.output[0]]) * math.prod(w[1:])
    if op == "ConvTranspose":  # each input element scatters into Cout/group x kernel outputs
        w = shapes[node.input[1]]
        return math.prod(shapes[node.input[0]]) * math.prod(w[1:])
    if op == "Gemm":
        a = shapes[node.input[0]]
        k = a[0] if _attr(node, "transA", 0) else a[1]
        return math.prod(shapes[node.output[0]]) * k
    if op == "MatMul":
        return math.prod(shapes[node.output[0]]) * shapes[node.input[0]][-1]
    if op in ("RNN", "GRU", "LSTM"):  # every step: the gates' input and recurrent products
        x = shapes[node.input[0]]
        steps_times_batch = x[0] * x[1]  # [seq, batch, in] or [batch, seq, in]: the product is the same
        return steps_times_batch * (math.prod(shapes[node.input[1]]) + math.prod(shapes[node.input[2]]))
    return 0


def weight_bytes(model: onnx.ModelProto) -> int:
    total = sum(numpy_helper.to_array(t).nbytes for t in model.graph.initializer)
    for node in model.graph.node:
        if node.op_type == "Constant":
            for a in node.attribute:
                if a.name == "value":
                    total += numpy_helper.to_array(a.t).nbytes
    return total


def model_cost(path: str, feeds: dict[str, np.ndarray]) -> Cost:
    """FLOPs and streamed bytes of the model at `path` for one call on `feeds`."""
    model = onnx.load(path)
    shapes = node_shapes(model, feeds)
    macs = sum(node_macs(n, shapes) for n in model.graph.node)
    wb = weight_bytes(model)
    out_bytes = sum(math.prod(shapes[o.name]) * _itemsize(o) for o in model.graph.output)
    return Cost(2 * macs, wb + sum(v.nbytes for v in feeds.values()) + out_bytes, wb)


def _itemsize(vi: onnx.ValueInfoProto) -> int:
    return np.dtype(onnx.helper.tensor_dtype_to_np_dtype(vi.type.tensor_type.elem_type)).itemsize
