"""Times every op family on a typical shape, sofie against ONNX Runtime, one thread each, in
the same run; prints the table and the ratio sofie / ORT (issue 11: no family above 2x).

usage: python bench/ops.py [--families a,b] [--min-seconds 0.3] [--out FILE.json]

Each family is a one-node (or few-node) ONNX model at a shape that family meets in the models
users bring. Both sides are timed on preallocated outputs (ORT through I/O binding, sofie
through its Session), so neither pays for allocating the result; the median of repeated calls
is reported. A family sofie refuses is listed as refused, with the reason.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

F = TensorProto.FLOAT
RNG = np.random.default_rng(0)


def graph(op: str, shapes: list[tuple], attrs: dict | None = None, inits: dict | None = None,
          n_out: int = 1, out_type: int | list[int] = F, inputs: list[str] | None = None, opset: int = 18,
          in_type: int = F) -> onnx.ModelProto:
    """One `op` node over runtime inputs of `shapes` (of `in_type`) and constant `inits`; the
    runtime inputs come first, unless `inputs` orders them with the initializers. `out_type` is
    the element type of every output, or a list of one per output."""
    out_types = out_type if isinstance(out_type, list) else [out_type] * n_out
    names = [f"x{i}" for i in range(len(shapes))]
    init_names = list(inits or {})
    node = helper.make_node(op, inputs or names + init_names, [f"y{i}" for i in range(n_out)], name=op, **(attrs or {}))
    g = helper.make_graph([node], op, [helper.make_tensor_value_info(n, in_type, s) for n, s in zip(names, shapes)],
                          [helper.make_tensor_value_info(f"y{i}", t, None) for i, t in enumerate(out_types)],
                          [numpy_helper.from_array(v, k) for k, v in (inits or {}).items()])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


def w(*shape: int) -> np.ndarray:
    return (RNG.standard_normal(shape) * 0.1).astype(np.float32)


def i64(*v: int) -> np.ndarray:
    return np.array(v, np.int64)


ACT = (1, 64, 56, 56)      # a CNN feature map
SEQ = (8, 128, 256)        # transformer tokens [batch, sequence, model dim]

# family: (model, input shapes)
FAMILIES: dict[str, Callable[[], tuple[onnx.ModelProto, list[tuple]]]] = {
    "relu": lambda: (graph("Relu", [ACT]), [ACT]),
    "sigmoid": lambda: (graph("Sigmoid", [ACT]), [ACT]),
    "tanh": lambda: (graph("Tanh", [ACT]), [ACT]),
    "exp": lambda: (graph("Exp", [ACT]), [ACT]),
    "erf": lambda: (graph("Erf", [ACT]), [ACT]),
    "gelu": lambda: (graph("Gelu", [SEQ], opset=20), [SEQ]),
    "add_bias": lambda: (graph("Add", [ACT], inits={"b": w(64, 1, 1)}), [ACT]),
    "mul": lambda: (graph("Mul", [ACT, ACT]), [ACT, ACT]),
    "where": lambda: (_where(), [SEQ, SEQ]),
    "reduce_mean_last": lambda: (graph("ReduceMean", [SEQ], inits={"axes": i64(-1)}), [SEQ]),
    "reduce_sum_mid": lambda: (graph("ReduceSum", [SEQ], inits={"axes": i64(1)}), [SEQ]),
    "argmax": lambda: (graph("ArgMax", [SEQ], {"axis": -1}, out_type=TensorProto.INT64), [SEQ]),
    "softmax_last": lambda: (graph("Softmax", [SEQ], {"axis": -1}), [SEQ]),
    "layer_norm": lambda: (graph("LayerNormalization", [SEQ], {"axis": -1}, inits={"s": w(256), "b": w(256)}), [SEQ]),
    "batch_norm": lambda: (graph("BatchNormalization", [ACT], inits={
        "s": w(64), "b": w(64), "m": w(64), "v": np.abs(w(64)) + 1}), [ACT]),
    "instance_norm": lambda: (graph("InstanceNormalization", [ACT], inits={"s": w(64), "b": w(64)}), [ACT]),
    "gemm": lambda: (graph("Gemm", [(64, 512)], {"transB": 1}, inits={"W": w(512, 512), "B": w(512)}), [(64, 512)]),
    "matmul_batched": lambda: (graph("MatMul", [(8, 4, 128, 64), (8, 4, 64, 128)]),
                               [(8, 4, 128, 64), (8, 4, 64, 128)]),
    "conv2d_3x3": lambda: (graph("Conv", [ACT], {"pads": [1, 1, 1, 1]}, inits={"W": w(64, 64, 3, 3), "B": w(64)}),
                           [ACT]),
    "conv2d_depthwise": lambda: (graph("Conv", [ACT], {"pads": [1, 1, 1, 1], "group": 64},
                                       inits={"W": w(64, 1, 3, 3), "B": w(64)}), [ACT]),
    "conv1d": lambda: (graph("Conv", [(8, 64, 512)], {"pads": [2, 2]}, inits={"W": w(64, 64, 5), "B": w(64)}),
                       [(8, 64, 512)]),
    "conv3d": lambda: (graph("Conv", [(1, 16, 16, 32, 32)], {"pads": [1] * 6}, inits={"W": w(16, 16, 3, 3, 3)}),
                       [(1, 16, 16, 32, 32)]),
    "conv_transpose2d": lambda: (graph("ConvTranspose", [(1, 64, 28, 28)], {"strides": [2, 2]},
                                       inits={"W": w(64, 32, 2, 2)}), [(1, 64, 28, 28)]),
    "maxpool2d": lambda: (graph("MaxPool", [ACT], {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1] * 4}),
                          [ACT]),
    "avgpool2d": lambda: (graph("AveragePool", [ACT], {"kernel_shape": [2, 2], "strides": [2, 2]}), [ACT]),
    "global_avgpool": lambda: (graph("GlobalAveragePool", [ACT]), [ACT]),
    "transpose": lambda: (graph("Transpose", [SEQ], {"perm": [0, 2, 1]}), [SEQ]),
    "concat": lambda: (graph("Concat", [SEQ, SEQ], {"axis": 1}), [SEQ, SEQ]),
    "slice": lambda: (graph("Slice", [SEQ], inits={"st": i64(1), "en": i64(127), "ax": i64(1)}), [SEQ]),
    "split": lambda: (graph("Split", [SEQ], {"axis": 2, "num_outputs": 2}, n_out=2), [SEQ]),
    "gather": lambda: (graph("Gather", [(1000, 256)], {"axis": 0},
                             inits={"idx": RNG.integers(0, 1000, (8, 128)).astype(np.int64)}), [(1000, 256)]),
    "pad": lambda: (graph("Pad", [ACT], inits={"p": i64(0, 0, 1, 1, 0, 0, 1, 1)}), [ACT]),
    "resize_nearest_2x": lambda: (graph("Resize", [ACT], {"mode": "nearest"}, inputs=["x0", "", "sc"],
                                        inits={"sc": np.array([1, 1, 2, 2], np.float32)}), [ACT]),
    "resize_bilinear_2x": lambda: (graph("Resize", [ACT], {"mode": "linear"}, inputs=["x0", "", "sc"],
                                         inits={"sc": np.array([1, 1, 2, 2], np.float32)}), [ACT]),
    "expand": lambda: (graph("Expand", [(8, 1, 256)], inits={"s": i64(8, 128, 256)}), [(8, 1, 256)]),
    "cumsum": lambda: (graph("CumSum", [SEQ], inits={"ax": i64(1).reshape(())}), [SEQ]),
    "topk": lambda: (graph("TopK", [SEQ], inits={"k": i64(8)}, n_out=2, out_type=[F, TensorProto.INT64]), [SEQ]),
    "grid_sample_bilinear": lambda: (graph("GridSample", [ACT, (1, 56, 56, 2)], opset=20), [ACT, (1, 56, 56, 2)]),
    "grid_sample_bicubic": lambda: (graph("GridSample", [ACT, (1, 56, 56, 2)], {"mode": "cubic"}, opset=20),
                                    [ACT, (1, 56, 56, 2)]),
    "maxpool2d_indices": lambda: (_maxpool_indices(), [ACT]),
    "col2im": lambda: (graph("Col2Im", [(1, 64 * 9, 56 * 56)], {"pads": [1] * 4},
                             inits={"img": i64(56, 56), "blk": i64(3, 3)}), [(1, 64 * 9, 56 * 56)]),
    "roi_align": lambda: (graph("RoiAlign", [ACT], {"output_height": 7, "output_width": 7, "spatial_scale": 0.25},
                                inits={"rois": _boxes(100), "bi": np.zeros(100, np.int64)}), [ACT]),
    "deform_conv": lambda: (graph("DeformConv", [(1, 32, 28, 28), (1, 18, 28, 28)], {"pads": [1] * 4},
                                  inits={"W": w(32, 32, 3, 3)}, inputs=["x0", "W", "x1"], opset=19),
                            [(1, 32, 28, 28), (1, 18, 28, 28)]),
    "lstm": lambda: (_rnn("LSTM", 4), [(64, 8, 128)]),
    "gru": lambda: (_rnn("GRU", 3), [(64, 8, 128)]),
    "scan_rnn": lambda: (_scan_rnn(), [(8, 128), (64, 8, 128)]),
    "quantize_per_channel": lambda: (graph("QuantizeLinear", [ACT], {"axis": 1}, out_type=U8, inits={
        "s": np.abs(w(64)) + 0.01, "z": u8(64)}), [ACT]),
    "dequantize": lambda: (graph("DequantizeLinear", [ACT], in_type=U8, inits={
        "s": np.array(0.02, np.float32), "z": np.array(128, np.uint8)}), [ACT]),
    "matmul_integer": lambda: (graph("MatMulInteger", [(64, 512)], in_type=U8, out_type=TensorProto.INT32,
                                     inits={"B": u8(512, 512), "az": np.array(128, np.uint8)},
                                     inputs=["x0", "B", "az"]), [(64, 512)]),
    "qlinear_matmul": lambda: (graph("QLinearMatMul", [(64, 512)], in_type=U8, out_type=U8,
                                     inits=_qlinear(u8(512, 512)), inputs=QLINEAR_INPUTS), [(64, 512)]),
    "qlinear_conv_3x3": lambda: (graph("QLinearConv", [ACT], {"pads": [1, 1, 1, 1]}, in_type=U8, out_type=U8,
                                       inits=_qlinear(u8(64, 64, 3, 3)), inputs=QLINEAR_INPUTS), [ACT]),
}

U8 = TensorProto.UINT8
QLINEAR_INPUTS = ["x0", "xs", "xz", "W", "ws", "wz", "ys", "yz"]


def u8(*shape: int) -> np.ndarray:
    return RNG.integers(0, 256, shape).astype(np.uint8)


def _qlinear(wq: np.ndarray) -> dict:
    """Scales and zero points of a QLinearMatMul / QLinearConv, and its weight."""
    return {"xs": np.array(0.02, np.float32), "xz": np.array(128, np.uint8), "W": wq,
            "ws": np.array(0.003, np.float32), "wz": np.array(120, np.uint8),
            "ys": np.array(2.0, np.float32), "yz": np.array(100, np.uint8)}


def random_input(shape: tuple, elem: int) -> np.ndarray:
    """A float input from the normal distribution, an 8-bit one over its whole range."""
    if elem == U8:
        return RNG.integers(0, 256, shape).astype(np.uint8)
    return RNG.standard_normal(shape).astype(np.float32)


def _where() -> onnx.ModelProto:
    nodes = [helper.make_node("Greater", ["x0", "x1"], ["c"]), helper.make_node("Where", ["c", "x0", "x1"], ["y0"])]
    g = helper.make_graph(nodes, "where", [helper.make_tensor_value_info(n, F, SEQ) for n in ("x0", "x1")],
                          [helper.make_tensor_value_info("y0", F, None)])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])


def _boxes(n: int) -> np.ndarray:
    """n boxes (x1, y1, x2, y2) of 20 to 80 pixels inside a 224 x 224 image."""
    corner = RNG.uniform(0, 140, (n, 2))
    return np.concatenate([corner, corner + RNG.uniform(20, 80, (n, 2))], axis=1).astype(np.float32)


def _maxpool_indices() -> onnx.ModelProto:
    node = helper.make_node("MaxPool", ["x0"], ["y0", "y1"], kernel_shape=[3, 3], strides=[2, 2], pads=[1] * 4)
    g = helper.make_graph([node], "maxpool_indices", [helper.make_tensor_value_info("x0", F, ACT)],
                          [helper.make_tensor_value_info("y0", F, None),
                           helper.make_tensor_value_info("y1", TensorProto.INT64, None)])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])


def _rnn(op: str, gates: int, hidden: int = 128) -> onnx.ModelProto:
    """[T=64, N=8, 128] through one layer of `hidden` units."""
    inits = {"W": w(1, gates * hidden, 128), "R": w(1, gates * hidden, hidden), "B": w(1, 2 * gates * hidden)}
    return graph(op, [(64, 8, 128)], {"hidden_size": hidden}, inits=inits, n_out=1)


def _scan_rnn(hidden: int = 128) -> onnx.ModelProto:
    """The RNN above written as a Scan (h = tanh(x_t W + h R + b), T=64), which sofie unrolls."""
    body = helper.make_graph(
        [helper.make_node("MatMul", ["x_t", "W"], ["xw"]), helper.make_node("MatMul", ["h", "R"], ["hr"]),
         helper.make_node("Add", ["xw", "hr"], ["s"]), helper.make_node("Add", ["s", "B"], ["sb"]),
         helper.make_node("Tanh", ["sb"], ["h_out"]), helper.make_node("Identity", ["h_out"], ["y_t"])], "step",
        [helper.make_tensor_value_info(n, F, None) for n in ("h", "x_t")],
        [helper.make_tensor_value_info(n, F, None) for n in ("h_out", "y_t")])
    node = helper.make_node("Scan", ["x0", "x1"], ["y1", "y0"], body=body, num_scan_inputs=1)
    g = helper.make_graph([node], "scan_rnn", [helper.make_tensor_value_info("x0", F, (8, hidden)),
                                               helper.make_tensor_value_info("x1", F, (64, 8, 128))],
                          [helper.make_tensor_value_info(n, F, None) for n in ("y0", "y1")],
                          [numpy_helper.from_array(v, k) for k, v in
                           {"W": w(128, hidden), "R": w(hidden, hidden), "B": w(hidden)}.items()])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])


def median_us(fn: Callable[[], object], min_seconds: float) -> float:
    fn()
    times, start = [], time.perf_counter()
    while time.perf_counter() - start < min_seconds or len(times) < 5:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)) * 1e6


def time_ort(path: str, xs: list[np.ndarray], min_seconds: float) -> float:
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = so.inter_op_num_threads = 1
    s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    outs = s.run(None, {i.name: x for i, x in zip(s.get_inputs(), xs)})
    io = s.io_binding()
    for i, x in zip(s.get_inputs(), xs):
        io.bind_cpu_input(i.name, x)
    for o, y in zip(s.get_outputs(), outs):
        io.bind_output(o.name, "cpu", element_type=y.dtype, shape=y.shape, buffer_ptr=y.ctypes.data)
    return median_us(lambda: s.run_with_iobinding(io), min_seconds)


def time_sofie(path: str, xs: list[np.ndarray], min_seconds: float) -> float:
    import sofie
    m = sofie.compile(path)
    outs = m(*xs)  # also checks the call works; then the Session alone, on these outputs
    session, batch = m.session(), 1
    dims = [m._check(tuple(xs))[s] for s in m._dims]
    return median_us(lambda: session.run(batch, dims, xs, outs), min_seconds)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--families", default=",".join(FAMILIES))
    p.add_argument("--min-seconds", type=float, default=0.3)
    p.add_argument("--out", default=os.path.join(os.path.dirname(HERE), "build", "bench", "ops.json"))
    args = p.parse_args()
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    from sofie.errors import SofieError
    rows = []
    print(f"{'family':<20}{'ORT us':>10}{'sofie us':>10}{'ratio':>8}   (one thread each)")
    folder = tempfile.mkdtemp(prefix="sofie-bench-ops-")
    for name in args.families.split(","):
        model, shapes = FAMILIES[name]()
        path = os.path.join(folder, name + ".onnx")
        onnx.save(model, path)
        xs = [random_input(s, i.type.tensor_type.elem_type) for s, i in zip(shapes, model.graph.input)]
        try:
            ort_us = time_ort(path, xs, args.min_seconds)
        except Exception as e:  # noqa: BLE001 - a family ORT cannot run is reported, not fatal
            print(f"{name:<20}ORT cannot run it: {str(e).splitlines()[0][:100]}", flush=True)
            continue
        try:
            ours = time_sofie(path, xs, args.min_seconds)
            rows.append({"family": name, "sofie_us": ours, "ort_us": ort_us, "ratio": ours / ort_us})
        except SofieError as e:
            rows.append({"family": name, "sofie_us": None, "ort_us": ort_us, "refused": str(e).splitlines()[0]})
        r = rows[-1]
        if r["sofie_us"]:
            mine = f"{r['sofie_us']:>10.1f}{r['ratio']:>8.2f}"
        else:
            mine = f"{'refused':>10}{'':>8}  {r['refused'][:90]}"
        print(f"{name:<20}{ort_us:>10.1f}{mine}", flush=True)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(rows, f, indent=1)
    timed = [r for r in rows if r["sofie_us"]]
    slow = [r["family"] for r in timed if r["ratio"] > 2.0]
    print(f"\n{len(timed)} of {len(rows)} families timed; above 2x ORT: {', '.join(slow) or 'none'}")


if __name__ == "__main__":
    main()
