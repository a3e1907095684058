"""Per-op numeric tests against onnxruntime: attributes and edge cases of every supported op.

Building a model costs a C++ compile (~5-8 s), so cases are not compiled one by one: every case
is an independent subgraph (own inputs, own output named after the case) of ONE model per opset
group. Each model is compiled once per (passes, BLAS) configuration in a module-scoped fixture,
run once on random inputs, and compared output by output with onnxruntime on the same model;
there is one test per (configuration, case), so a failure names the case.

Tolerances: float32 throughout. RTOL 1e-4 / ATOL 1e-5 for everything (GEMM, conv and pooling
sum in another order than onnxruntime, a few ulps per accumulation); elementwise ops are
checked at the same tolerance, which is far above their ~1-ulp differences (std::exp vs MLAS).
"""

from __future__ import annotations

import fcntl
import os

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import sofie
from sofie.jit import cache_dir

RTOL, ATOL = 1e-4, 1e-5
BATCHES = (1, 3)  # the symbolic batch dim "N" is run at two sizes


class Suite:
    """Many independent single-output cases in one ONNX graph."""

    def __init__(self, name: str, opset: int) -> None:
        self.name, self.opset = name, opset
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[TensorProto] = []
        self.inputs: list[onnx.ValueInfoProto] = []
        self.outputs: list[onnx.ValueInfoProto] = []
        self.cases: list[str] = []
        self.feed_specs: dict[str, tuple[tuple, str]] = {}  # name -> (shape with "N", kind)
        self._case = ""
        self._k = 0

    # building blocks; names are prefixed with the current case so they never collide
    def _fresh(self, what: str) -> str:
        self._k += 1
        return f"{self._case}.{what}{self._k}"

    def inp(self, shape: tuple, kind: str = "normal") -> str:
        """A runtime float input; "N" in the shape is the dynamic batch. kind: normal|positive|away0."""
        name = self._fresh("x")
        dims = [d if isinstance(d, int) else "N" for d in shape]
        self.inputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, dims))
        self.feed_specs[name] = (tuple(shape), kind)
        return name

    def init(self, arr: np.ndarray) -> str:
        name = self._fresh("w")
        self.inits.append(onnx.numpy_helper.from_array(np.asarray(arr), name))
        return name

    def weight(self, *shape: int) -> str:
        rng = np.random.default_rng(self._k + 1000)
        return self.init(rng.standard_normal(shape).astype(np.float32))

    def node(self, op: str, inputs: list[str], n_out: int = 1, **attrs) -> str | list[str]:
        outs = [self._fresh(op.lower()) for _ in range(n_out)]
        self.nodes.append(helper.make_node(op, inputs, outs, name=self._fresh(op), **attrs))
        return outs[0] if n_out == 1 else outs

    def output(self, name: str, value: str, elem: int = TensorProto.FLOAT) -> None:
        self.nodes.append(helper.make_node("Identity", [value], [name], name=name + ".out"))
        self.outputs.append(helper.make_tensor_value_info(name, elem, None))

    def case(self, name: str, build) -> None:
        assert name not in self.cases, name
        self._case = name
        out = build(self)
        self.output(name, out)
        self.cases.append(name)

    def op(self, name: str, op: str, inputs: list, **attrs) -> None:
        """A one-node case: inputs are shapes (runtime inputs), arrays (initializers) or ''."""
        def build(s: Suite) -> str:
            names = []
            for i in inputs:
                if isinstance(i, tuple):
                    names.append(s.inp(i))
                elif isinstance(i, np.ndarray):
                    names.append(s.init(i))
                else:
                    names.append(i)
            return s.node(op, names, **attrs)
        self.case(name, build)

    def model(self) -> onnx.ModelProto:
        g = helper.make_graph(self.nodes, self.name, self.inputs, self.outputs, self.inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", self.opset)])
        m.ir_version = 8 if self.opset <= 17 else m.ir_version
        return m

    def feeds(self, batch: int, seed: int = 0) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(seed)
        out = {}
        for name, (shape, kind) in self.feed_specs.items():
            x = rng.standard_normal(tuple(batch if d == "N" else d for d in shape)).astype(np.float32)
            if kind == "positive":
                x = np.abs(x) + np.float32(0.1)
            elif kind == "away0":
                x = np.where(x >= 0, x + 0.5, x - 0.5).astype(np.float32)
            out[name] = x
        return out

    def run_both(self, passes: str, blas: str) -> dict[str, dict[int, tuple[np.ndarray, np.ndarray]]]:
        """{case: {batch: (sofie, onnxruntime)}}: the suite built once for this configuration
        ("O0" or default passes) and run at every batch next to onnxruntime, with every case at
        every batch (a missing output fails here, not silently in a zip)."""
        import onnxruntime as ort
        proto = self.model()
        # pytest-xdist workers may want the same build at once: one builds, the other then
        # finds it in sofie's cache
        os.makedirs(cache_dir(), exist_ok=True)
        with open(os.path.join(cache_dir(), f"test_ops.{self.name}.{passes}.{blas}.lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            m = sofie.compile(proto, name=self.name, blas=blas, passes=[] if passes == "O0" else None)
        sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
        order = [i[0] for i in m.inputs]
        out_names = [o.name for o in proto.graph.output]
        res: dict[str, dict[int, tuple]] = {c: {} for c in self.cases}
        for batch in BATCHES:
            feeds = self.feeds(batch, seed=batch)
            got = m(*[feeds[n] for n in order])
            ref = sess.run(None, feeds)
            assert len(got) == len(ref) == len(out_names), (
                f"{self.name} batch {batch}: sofie returned {len(got)} outputs, onnxruntime "
                f"{len(ref)}, the model has {len(out_names)}")
            for name, g, r in zip(out_names, got, ref, strict=True):
                res[name][batch] = (g, r)
        compared = {(c, b) for c, per_batch in res.items() for b in per_batch}
        missing = {(c, b) for c in self.cases for b in BATCHES} - compared
        assert not missing, f"{self.name}: never compared {sorted(missing)[:5]} ({len(missing)} in all)"
        return res


def f32(*xs) -> np.ndarray:
    return np.array(xs, np.float32)


def i64(*xs) -> np.ndarray:
    return np.array(xs, np.int64)


# ---- opset 17: the current forms -----------------------------------------------------------

def suite17() -> Suite:
    s = Suite("ops17", 17)
    rng = np.random.default_rng(7)

    def w(*shape):
        return rng.standard_normal(shape).astype(np.float32)

    # Gemm: trans flags, alpha/beta, every bias shape, no bias, dynamic batch
    for ta in (0, 1):
        for tb in (0, 1):
            a = (6, 4) if ta else (4, 6)
            b = (5, 6) if tb else (6, 5)
            s.op(f"gemm_tA{ta}_tB{tb}", "Gemm", [a, w(*b), w(5)], transA=ta, transB=tb)
    s.op("gemm_alpha_beta_biasN", "Gemm", [(4, 6), w(6, 5), w(5)], alpha=0.5, beta=2.0)
    s.op("gemm_bias_1xN", "Gemm", [(4, 6), w(6, 5), w(1, 5)])
    s.op("gemm_bias_1xN_beta", "Gemm", [(4, 6), w(6, 5), w(1, 5)], beta=-1.5)
    s.op("gemm_bias_MxN", "Gemm", [(4, 6), w(6, 5), w(4, 5)])
    s.op("gemm_bias_MxN_alpha_beta", "Gemm", [(4, 6), w(6, 5), w(4, 5)], alpha=-0.7, beta=0.3)
    s.op("gemm_no_bias", "Gemm", [(4, 6), w(6, 5)])
    s.op("gemm_no_bias_alpha", "Gemm", [(4, 6), w(5, 6)], alpha=3.0, transB=1)
    s.op("gemm_bias_scalar", "Gemm", [(4, 6), w(6, 5), w(1)])
    s.op("gemm_batch", "Gemm", [("N", 6), w(5, 6), w(5)], transB=1)
    s.op("gemm_batch_gemv", "Gemm", [("N", 64), w(64, 1), w(1)])
    s.op("gemm_two_inputs", "Gemm", [(3, 4), (4, 2)])
    s.op("gemm_two_inputs_tA_tB", "Gemm", [(4, 3), (2, 4), (3, 2)], transA=1, transB=1, alpha=2.0)

    # MatMul: 2-D, 3-D x 2-D, 1-D operands
    s.op("matmul_2d", "MatMul", [(4, 6), w(6, 5)])
    s.op("matmul_2d_inputs", "MatMul", [(4, 6), (6, 5)])
    s.op("matmul_3d_2d", "MatMul", [(2, 4, 6), w(6, 5)])
    s.op("matmul_batch_3d_2d", "MatMul", [("N", 4, 6), w(6, 5)])
    s.op("matmul_1d_2d", "MatMul", [(6,), w(6, 5)])
    s.op("matmul_2d_1d", "MatMul", [(4, 6), w(6)])
    s.op("matmul_1d_1d", "MatMul", [(6,), w(6)])

    # binary ops with numpy broadcasting
    shapes = {"same": ((2, 3, 4, 5), (2, 3, 4, 5)), "scalar": ((2, 3, 4, 5), ()),
              "scalar_left": ((), (2, 3, 4, 5)), "row": ((2, 3, 4, 5), (5,)),
              "column": ((3, 4, 5), (4, 1)), "chan": ((2, 3, 4, 5), (3, 1, 1)),
              "both": ((3, 1, 5), (4, 1)), "both4d": ((2, 1, 4, 1), (1, 3, 1, 5)),
              "batch_chan": (("N", 3, 4, 5), (3, 1, 1)), "batch_both": (("N", 3, 1), (1, 4))}
    for op in ("Add", "Sub", "Mul", "Div"):
        for tag, (sa, sb) in shapes.items():
            def build(s, op=op, sa=sa, sb=sb):
                a = s.inp(sa)
                b = s.inp(sb, "away0" if op == "Div" else "normal")
                return s.node(op, [a, b])
            s.case(f"{op.lower()}_{tag}", build)
    s.op("add_const_chan", "Add", [("N", 3, 4, 5), w(3, 1, 1)])
    s.op("mul_const_scalar", "Mul", [(3, 4), f32(2.5).reshape(())])
    s.op("div_const_left", "Div", [np.abs(w(4)) + 1, (3, 4)])
    s.op("pow_const", "Pow", [(3, 4), f32(2.0).reshape(())])
    s.op("max_binary", "Max", [(3, 4), (4,)])
    s.op("min_binary", "Min", [(3, 4), (3, 1)])

    # unary ops and activations, with their attributes
    x = ("N", 3, 7)
    for op, attrs in [("Relu", {}), ("Sigmoid", {}), ("Tanh", {}), ("LeakyRelu", {}),
                      ("LeakyRelu", {"alpha": 0.3}), ("Elu", {}), ("Elu", {"alpha": 0.5}),
                      ("Selu", {}), ("Selu", {"alpha": 1.5, "gamma": 2.0}), ("HardSigmoid", {}),
                      ("HardSigmoid", {"alpha": 0.3, "beta": 0.4}), ("HardSwish", {}),
                      ("Exp", {}), ("Abs", {}), ("Neg", {}), ("Floor", {}), ("Ceil", {}),
                      ("Erf", {}), ("Softplus", {}), ("Softsign", {})]:
        tag = "_".join(f"{k}{v}" for k, v in attrs.items())
        s.op(f"{op.lower()}{'_' + tag if tag else ''}", op, [x], **attrs)
    for op in ("Log", "Sqrt", "Reciprocal"):
        s.case(op.lower(), lambda s, op=op: s.node(op, [s.inp((3, 7), "positive")]))
    # Clip, opset 11+ form: min/max as (optional) inputs
    s.op("clip_min_max", "Clip", [(3, 7), f32(-0.5).reshape(()), f32(0.7).reshape(())])
    s.op("clip_min_only", "Clip", [(3, 7), f32(0.1).reshape(())])
    s.op("clip_max_only", "Clip", [(3, 7), "", f32(0.2).reshape(())])
    s.op("clip_none", "Clip", [(3, 7)])

    # Softmax (opset 13: a single axis)
    for axis in (0, 1, 2, -1, -2):
        s.op(f"softmax_axis{axis}", "Softmax", [(3, 4, 5)], axis=axis)
    s.op("softmax_default", "Softmax", [("N", 10)])
    s.op("softmax_4d_axis1", "Softmax", [(2, 3, 4, 5)], axis=1)

    # Conv
    x = ("N", 4, 9, 8)
    s.op("conv_plain", "Conv", [x, w(6, 4, 3, 3), w(6)])
    s.op("conv_pads", "Conv", [x, w(6, 4, 3, 3), w(6)], pads=[1, 1, 1, 1])
    s.op("conv_asym_pads", "Conv", [x, w(6, 4, 3, 3), w(6)], pads=[0, 1, 2, 1])
    s.op("conv_asym_pads2", "Conv", [x, w(6, 4, 3, 2), w(6)], pads=[2, 0, 1, 3])
    for ap in ("SAME_UPPER", "SAME_LOWER", "VALID"):
        s.op(f"conv_{ap.lower()}", "Conv", [x, w(6, 4, 3, 3), w(6)], auto_pad=ap)
        s.op(f"conv_{ap.lower()}_stride2_k4", "Conv", [x, w(6, 4, 4, 4), w(6)], auto_pad=ap,
             strides=[2, 2])
    s.op("conv_strides", "Conv", [x, w(6, 4, 3, 3), w(6)], strides=[2, 3], pads=[1, 1, 1, 1])
    s.op("conv_dilations", "Conv", [x, w(6, 4, 3, 3), w(6)], dilations=[2, 2], pads=[2, 2, 2, 2])
    s.op("conv_dilations_strides", "Conv", [x, w(6, 4, 3, 2), w(6)], dilations=[2, 3], strides=[2, 1])
    s.op("conv_group2", "Conv", [x, w(6, 2, 3, 3), w(6)], group=2, pads=[1, 1, 1, 1])
    s.op("conv_depthwise", "Conv", [x, w(4, 1, 3, 3), w(4)], group=4, pads=[1, 1, 1, 1])
    s.op("conv_depthwise_mult2", "Conv", [x, w(8, 1, 3, 3), w(8)], group=4, strides=[2, 2])
    s.op("conv_no_bias", "Conv", [x, w(6, 4, 3, 3)])
    s.op("conv_1x1", "Conv", [x, w(5, 4, 1, 1), w(5)])
    s.op("conv_1x1_stride2", "Conv", [x, w(5, 4, 1, 1), w(5)], strides=[2, 2])
    s.op("conv_1x1_pads", "Conv", [x, w(5, 4, 1, 1)], pads=[1, 0, 0, 1])
    s.op("conv_kernel_shape_attr", "Conv", [x, w(6, 4, 3, 3), w(6)], kernel_shape=[3, 3])
    s.op("conv_static_batch", "Conv", [(2, 3, 5, 5), w(2, 3, 2, 2)])
    s.op("conv_rect_kernel", "Conv", [x, w(3, 4, 1, 5), w(3)], pads=[0, 2, 0, 2])

    # MaxPool / AveragePool / GlobalAveragePool
    x = ("N", 3, 9, 8)
    s.op("maxpool_2x2", "MaxPool", [x], kernel_shape=[2, 2], strides=[2, 2])
    s.op("maxpool_3x3_pads", "MaxPool", [x], kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    s.op("maxpool_asym_pads", "MaxPool", [x], kernel_shape=[3, 2], pads=[0, 1, 2, 0], strides=[2, 1])
    s.op("maxpool_strides", "MaxPool", [x], kernel_shape=[3, 3], strides=[2, 3])
    s.op("maxpool_dilations", "MaxPool", [x], kernel_shape=[2, 2], dilations=[2, 2])
    s.op("maxpool_ceil", "MaxPool", [x], kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1)
    s.op("maxpool_ceil_pads", "MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1],
         ceil_mode=1)
    s.op("maxpool_same_upper", "MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2], auto_pad="SAME_UPPER")
    s.op("maxpool_same_lower", "MaxPool", [x], kernel_shape=[2, 2], strides=[2, 2], auto_pad="SAME_LOWER")
    for cip in (0, 1):
        s.op(f"avgpool_pads_cip{cip}", "AveragePool", [x], kernel_shape=[3, 3], pads=[1, 1, 1, 1],
             count_include_pad=cip)
        s.op(f"avgpool_asym_pads_cip{cip}", "AveragePool", [x], kernel_shape=[3, 2],
             pads=[2, 0, 0, 1], strides=[2, 1], count_include_pad=cip)
        s.op(f"avgpool_ceil_cip{cip}", "AveragePool", [x], kernel_shape=[3, 3], strides=[2, 2],
             ceil_mode=1, count_include_pad=cip)
        s.op(f"avgpool_ceil_pads_cip{cip}", "AveragePool", [x], kernel_shape=[3, 3], strides=[2, 2],
             pads=[1, 1, 1, 1], ceil_mode=1, count_include_pad=cip)
    s.op("avgpool_2x2", "AveragePool", [x], kernel_shape=[2, 2], strides=[2, 2])
    s.op("avgpool_same_upper", "AveragePool", [x], kernel_shape=[3, 3], strides=[2, 2],
         auto_pad="SAME_UPPER")
    s.op("global_avgpool", "GlobalAveragePool", [x])
    s.op("global_avgpool_static", "GlobalAveragePool", [(2, 5, 3, 4)])

    # BatchNormalization
    c = 3
    bn = [w(c), w(c), w(c), np.abs(w(c)) + 0.5]
    s.op("batchnorm", "BatchNormalization", [("N", c, 4, 5), *bn])
    s.op("batchnorm_eps", "BatchNormalization", [("N", c, 4, 5), *bn], epsilon=0.1)
    s.op("batchnorm_2d", "BatchNormalization", [("N", c), *bn])
    s.op("batchnorm_3d", "BatchNormalization", [(2, c, 6), *bn], epsilon=1e-3)

    # Flatten
    for axis in (0, 1, 2, 3, -1, -3):
        s.op(f"flatten_axis{axis}".replace("-", "m"), "Flatten", [(2, 3, 4, 5)], axis=axis)
    s.op("flatten_batch", "Flatten", [("N", 3, 4, 5)])

    # Reshape (feeding an Add so the view is read by a kernel, too)
    for tag, shape in [("zero", i64(0, -1)), ("minus1_first", i64(-1, 4, 5)), ("explicit", i64(6, 20)),
                       ("zero_zero", i64(0, 0, 20)), ("to_1d", i64(-1))]:
        s.op(f"reshape_{tag}", "Reshape", [(2, 3, 4, 5), shape])
    s.op("reshape_batch_zero", "Reshape", [("N", 3, 4), i64(0, 12)])
    s.op("reshape_batch_minus1", "Reshape", [("N", 3, 4), i64(-1, 2, 6)])
    s.op("reshape_allowzero_nonzero", "Reshape", [(2, 3, 4), i64(4, 6)], allowzero=1)
    s.case("reshape_then_relu", lambda s: s.node("Relu", [s.node("Reshape", [s.inp(("N", 6)),
                                                                          s.init(i64(0, 2, 3))])]))

    # Transpose
    s.op("transpose_default", "Transpose", [(2, 3, 4)])
    s.op("transpose_2d", "Transpose", [(5, 7)])
    s.op("transpose_perm", "Transpose", [(2, 3, 4, 5)], perm=[0, 2, 3, 1])
    s.op("transpose_perm2", "Transpose", [(2, 3, 4, 5)], perm=[3, 1, 0, 2])
    s.op("transpose_batch", "Transpose", [("N", 3, 4)], perm=[0, 2, 1])

    # Concat
    for axis in (0, 1, 2, -1, -2):
        s.case(f"concat_axis{axis}".replace("-", "m"), lambda s, axis=axis: s.node(
            "Concat", [s.inp((2, 3, 4)), s.inp((2, 3, 4)), s.inp((2, 3, 4))], axis=axis))
    s.case("concat_uneven", lambda s: s.node("Concat", [s.inp((2, 1, 4)), s.inp((2, 3, 4))], axis=1))
    s.case("concat_batch", lambda s: s.node("Concat", [s.inp(("N", 2)), s.inp(("N", 3))], axis=1))
    s.op("concat_with_weight", "Concat", [(2, 3), w(1, 3)], axis=0)
    s.op("concat_single", "Concat", [(2, 3)], axis=1)

    # Identity, Constant, Dropout (inference: identity)
    s.op("identity", "Identity", [("N", 3)])
    s.case("identity_of_weight", lambda s: s.node("Add", [s.inp((2, 3)), s.node("Identity", [s.weight(2, 3)])]))
    s.case("constant_value", lambda s: s.node("Add", [s.inp((2, 3)), s.node(
        "Constant", [], value=onnx.numpy_helper.from_array(w(2, 3)))]))
    s.case("constant_value_float", lambda s: s.node("Mul", [s.inp((2, 3)), s.node(
        "Constant", [], value_float=1.5)]))
    s.case("constant_value_floats", lambda s: s.node("Mul", [s.inp((2, 3)), s.node(
        "Constant", [], value_floats=[1.0, -2.0, 3.0])]))
    s.case("constant_value_ints_reshape", lambda s: s.node("Reshape", [s.inp((2, 3)), s.node(
        "Constant", [], value_ints=[3, 2])]))
    s.op("dropout", "Dropout", [("N", 3, 4)])
    s.op("dropout_ratio", "Dropout", [("N", 3, 4), f32(0.3).reshape(())])
    s.op("dropout_ratio_training_false", "Dropout", [("N", 3, 4), f32(0.3).reshape(()),
                                                     np.array(False)])
    s.case("dropout_mask_unused", lambda s: s.node("Dropout", [s.inp((2, 3))], n_out=2)[0])

    # Squeeze / Unsqueeze, opset 13 form (axes as an input)
    s.op("squeeze_axes", "Squeeze", [(2, 1, 3, 1), i64(1)])
    s.op("squeeze_neg_axes", "Squeeze", [(2, 1, 3, 1), i64(-1, 1)])
    s.op("squeeze_all", "Squeeze", [(1, 3, 1, 2)])
    s.op("squeeze_batch", "Squeeze", [("N", 1, 3), i64(1)])
    s.op("unsqueeze_axes", "Unsqueeze", [(2, 3), i64(0, 3)])
    s.op("unsqueeze_neg", "Unsqueeze", [(2, 3), i64(-1)])
    s.op("unsqueeze_batch", "Unsqueeze", [("N", 3), i64(1)])

    # compile-time shape computations feeding a Reshape, and values that are compile-time
    def shape_gather_reshape(s: Suite) -> str:
        x = s.inp(("N", 3, 4))
        shp = s.node("Shape", [x])
        n = s.node("Gather", [shp, s.init(np.array(0, np.int64))], axis=0)
        n1 = s.node("Unsqueeze", [n, s.init(i64(0))])
        target = s.node("Concat", [n1, s.init(i64(-1))], axis=0)
        return s.node("Reshape", [x, target])
    s.case("shape_gather_concat_reshape", shape_gather_reshape)

    def shape_slice_reshape(s: Suite) -> str:
        x = s.inp((2, 3, 4))
        y = s.inp((6, 4))
        shp = s.node("Shape", [x])
        return s.node("Reshape", [y, s.node("Cast", [s.node("Cast", [shp], to=TensorProto.FLOAT)],
                                               to=TensorProto.INT64)])
    s.case("shape_cast_reshape", shape_slice_reshape)

    def shape_start_end(s: Suite) -> str:
        x = s.inp(("N", 3, 4))
        tail = s.node("Shape", [x], start=1)
        target = s.node("Concat", [s.init(i64(-1)), s.node("Gather", [tail, s.init(i64(1, 0))])], axis=0)
        return s.node("Reshape", [x, target])
    s.case("shape_start_gather_reshape", shape_start_end)

    def constant_of_shape(s: Suite) -> str:
        x = s.inp((2, 3))
        c = s.node("ConstantOfShape", [s.node("Shape", [x])],
                   value=onnx.numpy_helper.from_array(f32(0.25)))
        return s.node("Add", [x, c])
    s.case("constant_of_shape_add", constant_of_shape)

    def constant_of_shape_default(s: Suite) -> str:
        x = s.inp((2, 3))
        return s.node("Add", [x, s.node("ConstantOfShape", [s.init(i64(2, 3))])])
    s.case("constant_of_shape_default", constant_of_shape_default)

    def cast_f32(s: Suite) -> str:
        return s.node("Cast", [s.inp((2, 3))], to=TensorProto.FLOAT)
    s.case("cast_float_to_float", cast_f32)

    def gather_weight(s: Suite) -> str:  # Gather on a weight with constant indices folds
        return s.node("Add", [s.inp((2, 3)), s.node("Gather", [s.weight(4, 3), s.init(i64(3, 0))])])
    s.case("gather_const", gather_weight)
    return s


# ---- opset 11: legacy Softmax, attribute-form Squeeze/Unsqueeze ------------------------------

def suite11() -> Suite:
    s = Suite("ops11", 11)
    for axis in (0, 1, 2, -1):
        s.op(f"softmax11_axis{axis}".replace("-", "m"), "Softmax", [(2, 3, 4)], axis=axis)
    s.op("softmax11_default_3d", "Softmax", [(2, 3, 4)])  # axis=1: over the flattened [3*4]
    s.op("softmax11_default_batch", "Softmax", [("N", 3, 4)])
    s.op("softmax11_4d_axis2", "Softmax", [(2, 3, 4, 5)], axis=2)
    s.op("softmax11_2d", "Softmax", [("N", 10)])
    s.op("squeeze11_axes", "Squeeze", [(2, 1, 3, 1)], axes=[1, 3])
    s.op("squeeze11_neg", "Squeeze", [(2, 1, 3, 1)], axes=[-1])
    s.op("squeeze11_all", "Squeeze", [(1, 3, 1, 2)])
    s.op("unsqueeze11", "Unsqueeze", [(2, 3)], axes=[0, 3])
    s.op("unsqueeze11_neg", "Unsqueeze", [("N", 3)], axes=[-1])
    s.op("clip11_min_max", "Clip", [(3, 7), f32(-0.5).reshape(()), f32(0.7).reshape(())])
    s.op("clip11_none", "Clip", [(3, 7)])
    s.op("flatten11_axis0", "Flatten", [(2, 3, 4)], axis=0)
    s.op("flatten11_neg", "Flatten", [(2, 3, 4)], axis=-1)
    s.op("gemm11_no_bias", "Gemm", [(4, 6), np.ones((6, 5), np.float32)])
    s.op("concat11_neg", "Concat", [(2, 3), (2, 3)], axis=-1)
    return s


# ---- opset 9: attribute-form Clip, old Dropout / BatchNorm / Gemm ----------------------------

def suite9() -> Suite:
    s = Suite("ops9", 9)
    rng = np.random.default_rng(9)
    s.op("clip9_min_max", "Clip", [(3, 7)], min=-0.5, max=0.7)
    s.op("clip9_min", "Clip", [(3, 7)], min=0.0)
    s.op("clip9_max", "Clip", [(3, 7)], max=0.3)
    s.op("clip9_none", "Clip", [(3, 7)])
    s.op("dropout9_ratio", "Dropout", [("N", 3)], ratio=0.2)
    bn = [rng.standard_normal(3).astype(np.float32) for _ in range(3)]
    bn.append(np.abs(bn[0]) + 0.5)
    s.op("batchnorm9", "BatchNormalization", [("N", 3, 4, 4), *bn], epsilon=1e-3)
    s.op("softmax9_default", "Softmax", [(2, 3, 4)])
    s.op("gemm9", "Gemm", [(4, 6), rng.standard_normal((6, 5)).astype(np.float32),
                           rng.standard_normal(5).astype(np.float32)], alpha=0.5, beta=0.25)
    s.op("flatten9", "Flatten", [("N", 2, 3)])
    # the batch on axis 1 of A (fine below max_batch; this suite is then never chunked)
    s.op("gemm9_transA_batch", "Gemm", [(6, "N"), rng.standard_normal((6, 5)).astype(np.float32),
                                        rng.standard_normal(5).astype(np.float32)], transA=1)
    s.op("unsqueeze9", "Unsqueeze", [(2, 3)], axes=[1])
    return s


SUITES = {"ops17": suite17, "ops11": suite11, "ops9": suite9}
# (passes, blas): each suite runs -O0 and the default pipeline, and each BLAS; the big suite in
# three of the four combinations, the small ones in two (every build costs ~10 s)
CONFIGS = {
    "ops17": [("O0", "none"), ("default", "none"), ("default", "openblas")],
    "ops11": [("O0", "openblas"), ("default", "none")],
    "ops9": [("O0", "openblas"), ("default", "none")],
}
_SUITE_CACHE: dict[str, Suite] = {}


def get_suite(name: str) -> Suite:
    if name not in _SUITE_CACHE:
        _SUITE_CACHE[name] = SUITES[name]()
    return _SUITE_CACHE[name]


_RESULTS: dict[tuple, dict | AssertionError] = {}


def _run(suite_name: str, passes: str, blas: str) -> dict[str, dict[int, tuple[np.ndarray, np.ndarray]]]:
    """Compiles the suite once per configuration; {case: {batch: (sofie, onnxruntime)}}, with
    every case at every batch (a missing output fails here, not silently in a zip)."""
    key = (suite_name, passes, blas)
    if key not in _RESULTS:
        try:
            _RESULTS[key] = _compare(suite_name, passes, blas)
        except AssertionError as e:  # every case of the configuration fails with it, run once
            _RESULTS[key] = e
    if isinstance(_RESULTS[key], AssertionError):
        raise AssertionError(str(_RESULTS[key]))
    return _RESULTS[key]


def _compare(suite_name: str, passes: str, blas: str) -> dict[str, dict[int, tuple[np.ndarray, np.ndarray]]]:
    return get_suite(suite_name).run_both(passes, blas)


def _params():
    for suite_name in SUITES:
        cases = get_suite(suite_name).cases
        for passes, blas in CONFIGS[suite_name]:
            for c in cases:
                yield pytest.param(suite_name, passes, blas, c, id=f"{suite_name}-{passes}-{blas}-{c}")


@pytest.mark.parametrize("suite_name,passes,blas,case", list(_params()))
def test_op_matches_onnxruntime(suite_name: str, passes: str, blas: str, case: str) -> None:
    per_batch = _run(suite_name, passes, blas)[case]
    assert sorted(per_batch) == sorted(BATCHES), f"{case}: compared at batches {sorted(per_batch)}"
    for batch, (got, ref) in per_batch.items():
        assert got.shape == ref.shape, f"{case}: shape {got.shape} != onnxruntime {ref.shape}"
        np.testing.assert_allclose(got, ref, rtol=RTOL, atol=ATOL, err_msg=f"{case} batch {batch}")


# ---- errors: what sofie rejects, with a message naming the problem ---------------------------

def _one_node(op: str, inputs: list, n_out: int = 1, opset: int = 17, outputs_used: int = 1,
              **attrs) -> onnx.ModelProto:
    """A model of one node; `inputs` are shapes (graph inputs) or arrays (initializers)."""
    ins, inits, names = [], [], []
    for k, i in enumerate(inputs):
        name = f"in{k}"
        if isinstance(i, tuple):
            ins.append(helper.make_tensor_value_info(name, TensorProto.FLOAT,
                                                     [d if isinstance(d, int) else "N" for d in i]))
        else:
            inits.append(onnx.numpy_helper.from_array(np.asarray(i), name))
        names.append(name)
    outs = [f"out{k}" for k in range(n_out)]
    node = helper.make_node(op, names, outs, name="the_node", **attrs)
    g = helper.make_graph([node], "err", ins,
                          [helper.make_tensor_value_info(o, TensorProto.UNDEFINED, None)
                           for o in outs[:outputs_used]], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    return m


_W = np.ones((4, 3, 3, 3), np.float32)
_BN = [np.ones(3, np.float32)] * 4
ERRORS = {
    "conv_kernel_shape_mismatch": (_one_node("Conv", [(1, 3, 8, 8), _W], kernel_shape=[5, 5]),
                                   r"kernel_shape \[5, 5\] differs from W \[4, 3, 3, 3\]"),
    "conv_group_mismatch": (_one_node("Conv", [(1, 3, 8, 8), _W], group=3),
                            r"group=3 do not agree"),
    "conv_4d": (_one_node("Conv", [(1, 3, 4, 4, 4, 4), np.ones((4, 3, 3, 3, 3, 3), np.float32)]),
                r"Conv takes 1 to 3 spatial dims, X is \[1, 3, 4, 4, 4, 4\]"),
    "conv_transpose_channels": (_one_node("ConvTranspose", [(1, 3, 8), np.ones((4, 2, 3), np.float32)]),
                                r"X has 3 channels, W \[4, 2, 3\] and group=1 do not agree"),
    "conv_bad_pads_length": (_one_node("Conv", [(1, 3, 8, 8), _W], pads=[1, 1]),
                             r"pads/kernel_shape do not match 2 spatial dims"),
    "conv_kernel_too_big": (_one_node("Conv", [(1, 3, 2, 2), _W]), r"larger than padded input"),
    "lppool_p0": (_one_node("LpPool", [(1, 3, 8, 8)], kernel_shape=[2, 2], p=0, opset=18), r"p must be >= 1, got 0"),
    "batchnorm_training_mode": (_one_node("BatchNormalization", [(2, 3, 4, 4), *_BN], training_mode=1),
                                r"BatchNormalization.*training_mode=1 is not supported"),
    "batchnorm_bad_scale": (_one_node("BatchNormalization", [(2, 3, 4, 4), np.ones(4, np.float32),
                                                             *_BN[1:]]),
                            r"scale has shape \[4\], expected \[3\]"),
    "gemm_inner_mismatch": (_one_node("Gemm", [(4, 6), np.ones((5, 5), np.float32)]),
                            r"inner dimensions differ"),
    "softmax_axis_out_of_range": (_one_node("Softmax", [(2, 3)], axis=2), r"axis 2 out of range"),
    "reshape_two_minus_one": (_one_node("Reshape", [(2, 6), np.array([-1, -1], np.int64)]),
                              r"more than one -1"),
    "reshape_wrong_count": (_one_node("Reshape", [(2, 6), np.array([5, 2], np.int64)]),
                            r"cannot reshape \[2, 6\]"),
    "reshape_runtime_shape": (_one_node("Reshape", [(2, 6), (2,)]), r"computed at run time"),
    "squeeze_non_one": (_one_node("Squeeze", [(2, 3), np.array([1], np.int64)]),
                        r"cannot squeeze axis 1 of size 3"),
    "transpose_bad_perm": (_one_node("Transpose", [(2, 3)], perm=[0, 0]), r"not a permutation"),
    "unknown_attribute": (_one_node("Relu", [(2, 3)], foo=1), r"attribute 'foo' is not supported"),
}


@pytest.mark.parametrize("case", list(ERRORS))
def test_rejected_with_clear_error(case: str) -> None:
    model, pattern = ERRORS[case]
    for passes in ([], None):
        with pytest.raises(sofie.SofieError, match=pattern) as e:
            sofie.compile(model, name="err", blas="none", passes=passes)
        if case != "reshape_runtime_shape":  # names the node (or the op for lowering errors)
            assert "the_node" in str(e.value), str(e.value)
