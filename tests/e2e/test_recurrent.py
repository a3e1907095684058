"""RNN, GRU and LSTM: the ONNX node tests, attribute and edge cases against onnxruntime, and
PyTorch exports with a dynamic batch and sequence length.

Each group is one model compiled once (tests/e2e/test_ops.py's pattern: independent cases side
by side, one pytest test per case). Tolerances: the node tests at the conformance target
(rtol 1e-3, atol 1e-5); float32 cases against onnxruntime at rtol 1e-4, atol 1e-5 (the gate
nonlinearities differ by ~2 ulp from MLAS's, the GEMMs sum in another order, and both
compound over the steps). float64 is compared with onnxruntime's float32 run of the same model
(it has no double LSTM) at rtol 1e-4, atol 1e-5: this checks the double kernel's semantics; its
precision is the one of the float64 GEMM and vmath.
"""

from __future__ import annotations

import warnings

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, compose, helper, numpy_helper
from torch import nn

import sofie

RTOL, ATOL = 1e-4, 1e-5
BATCHES = (1, 3)
GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}


# ---- the ONNX node tests of the three ops, merged into one model --------------------------

def _node_testcases() -> list:
    from onnx.backend.test.case.node import collect_testcases
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return [t for t in collect_testcases()
                if any(n.op_type in GATES for n in t.model.graph.node)]


NODE_TESTS = [t.name for t in _node_testcases()]


@pytest.fixture(scope="module")
def node_results() -> dict[str, list[tuple[np.ndarray, np.ndarray]]]:
    nodes, inputs, outputs, feeds, owner, refs = [], [], [], {}, [], []
    for t in _node_testcases():
        m = compose.add_prefix(t.model, t.name + ".")
        nodes += m.graph.node
        inputs += m.graph.input
        outputs += m.graph.output
        ins, outs = t.data_sets[0]
        feeds.update({vi.name: a for vi, a in zip(m.graph.input, ins, strict=True)})
        owner += [t.name] * len(outs)
        refs += outs
    graph = helper.make_graph(nodes, "node_tests", inputs, outputs)
    model = sofie.compile(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 22)]),
                          name="recurrent_node_tests", blas="none")
    got = model(*[feeds[name] for name, *_ in model.inputs])
    results: dict[str, list] = {}
    for name, g, r in zip(owner, got, refs, strict=True):
        results.setdefault(name, []).append((g, r))
    return results


def test_every_node_test_is_collected() -> None:
    assert len(NODE_TESTS) == 18, NODE_TESTS  # 6 per op; more in a newer onnx: look at them


@pytest.mark.parametrize("case", NODE_TESTS)
def test_onnx_node_test(case: str, node_results) -> None:
    for got, ref in node_results[case]:
        assert got.shape == ref.shape
        np.testing.assert_allclose(got, ref, rtol=1e-3, atol=1e-5, err_msg=case)


# ---- attribute and edge cases against onnxruntime -----------------------------------------

T, I, H = 4, 3, 5


class Cases:
    """Independent single-node cases in one graph; every result of a node is an output.
    The batch N is a symbol: X is [T, N, I] (layout 0) or [N, T, I] (layout 1).

    onnxruntime has no layout 1: its model of a layout-1 case is the layout-0 node between
    Transposes (`ref_nodes`)."""

    def __init__(self, dtype: int) -> None:
        self.dtype = dtype
        self.np = helper.tensor_dtype_to_np_dtype(dtype)
        self.nodes, self.ref_nodes, self.inputs, self.outputs, self.inits = [], [], [], [], []
        self.feed_specs: dict[str, tuple[tuple, str]] = {}
        self.cases: list[str] = []
        self.rng = np.random.default_rng(11)

    def _input(self, name: str, shape: tuple, elem: int, kind: str) -> str:
        self.inputs.append(helper.make_tensor_value_info(name, elem, list(shape)))
        self.feed_specs[name] = (shape, kind)
        return name

    def _init(self, name: str, arr: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(arr.astype(self.np), name))
        return name

    def add(self, name: str, op: str, layout: int = 0, bias: bool = False, lens: bool = False,
            initial: bool = False, peepholes: bool = False, outputs: int | None = None, **attrs) -> None:
        d = 2 if attrs.get("direction") == "bidirectional" else 1
        gh = GATES[op] * H
        x_shape = ("N", T, I) if layout else (T, "N", I)
        state = ("N", d, H) if layout else (d, "N", H)
        ins = [self._input(f"{name}.X", x_shape, self.dtype, "x"),
               self._init(f"{name}.W", self.rng.standard_normal((d, gh, I)) * 0.5),
               self._init(f"{name}.R", self.rng.standard_normal((d, gh, H)) * 0.5),
               self._init(f"{name}.B", self.rng.standard_normal((d, 2 * gh)) * 0.5) if bias else "",
               self._input(f"{name}.lens", ("N",), TensorProto.INT32, "lens") if lens else "",
               self._input(f"{name}.h0", state, self.dtype, "x") if initial else ""]
        if op == "LSTM":
            ins += [self._input(f"{name}.c0", state, self.dtype, "x") if initial else "",
                    self._init(f"{name}.P", self.rng.standard_normal((d, 3 * H))) if peepholes else ""]
        while not ins[-1]:
            ins.pop()
        n_out = outputs or (3 if op == "LSTM" else 2)
        outs = [f"{name}.{k}" for k in range(n_out)]
        self.nodes.append(helper.make_node(op, ins, outs, name=name, hidden_size=H, layout=layout, **attrs))
        if not layout:
            self.ref_nodes.append(self.nodes[-1])
        else:
            self.ref_nodes += self._layout0(op, ins, outs, name, attrs)
        for o in outs:
            self.outputs.append(helper.make_tensor_value_info(o, self.dtype, None))
            self.cases.append(o)

    def _layout0(self, op: str, ins: list[str], outs: list[str], name: str, attrs: dict) -> list:
        """The layout-1 node as Transposes around its layout-0 form."""
        nodes = []

        def transpose(src: str, dst: str, perm: list[int]) -> str:
            nodes.append(helper.make_node("Transpose", [src], [dst], perm=perm))
            return dst
        batch_first = {0, 5, 6}  # X, initial_h, initial_c
        ins0 = [transpose(v, f"{v}.t", [1, 0, 2]) if k in batch_first and v else v for k, v in enumerate(ins)]
        outs0 = [f"{o}.t" for o in outs]
        nodes.append(helper.make_node(op, ins0, outs0, name=name, hidden_size=H, **attrs))
        for k, (o0, o) in enumerate(zip(outs0, outs)):
            transpose(o0, o, [2, 0, 1, 3] if k == 0 else [1, 0, 2])
        return nodes

    def model(self, reference: bool = False) -> onnx.ModelProto:
        nodes = self.ref_nodes if reference else self.nodes
        g = helper.make_graph(nodes, "recurrent", self.inputs, self.outputs, self.inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 14)])
        m.ir_version = 8
        return m

    def feeds(self, batch: int) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(batch)
        out = {}
        for name, (shape, kind) in self.feed_specs.items():
            shape = tuple(batch if d == "N" else d for d in shape)
            # lengths 1..T, the longest first so that every batch size sees a full and a short one
            out[name] = (np.array([T] + list(rng.integers(1, T + 1, batch - 1)), np.int32) if kind == "lens"
                         else rng.standard_normal(shape).astype(self.np))
        return out


def float_cases() -> Cases:
    c = Cases(TensorProto.FLOAT)
    for op in ("RNN", "GRU", "LSTM"):
        o = op.lower()
        c.add(f"{o}_forward_bias", op, bias=True)
        c.add(f"{o}_reverse_initial", op, direction="reverse", initial=True)
        c.add(f"{o}_bidirectional_all_inputs", op, direction="bidirectional", bias=True, lens=True,
              initial=True, peepholes=True)
        c.add(f"{o}_layout1_bidirectional", op, layout=1, direction="bidirectional", bias=True, lens=True,
              initial=True, peepholes=True)
        c.add(f"{o}_reverse_lens", op, direction="reverse", lens=True, bias=True)
        c.add(f"{o}_clip", op, clip=0.3, bias=True)
        c.add(f"{o}_only_y", op, outputs=1)
    c.add("rnn_relu", "RNN", activations=["Relu"], bias=True)
    c.add("rnn_leaky_scaledtanh", "RNN", direction="bidirectional", activations=["LeakyRelu", "ScaledTanh"],
          activation_alpha=[0.2, 0.7], activation_beta=[1.5])
    c.add("rnn_affine", "RNN", activations=["Affine"], activation_alpha=[0.5], activation_beta=[0.1])
    c.add("rnn_thresholded", "RNN", activations=["ThresholdedRelu"], activation_alpha=[0.1])
    c.add("gru_linear_before_reset", "GRU", linear_before_reset=1, bias=True, initial=True)
    c.add("gru_linear_before_reset_bidirectional_lens", "GRU", linear_before_reset=1, bias=True, lens=True,
          direction="bidirectional")
    c.add("gru_hardsigmoid_softsign", "GRU", activations=["HardSigmoid", "Softsign"],
          activation_alpha=[0.3], activation_beta=[0.4])
    c.add("gru_elu_default_alpha", "GRU", activations=["Sigmoid", "Elu"])
    c.add("lstm_input_forget", "LSTM", input_forget=1, bias=True, peepholes=True)
    c.add("lstm_softplus_relu", "LSTM", activations=["HardSigmoid", "Softplus", "Relu"], bias=True)
    return c


def double_cases() -> Cases:
    c = Cases(TensorProto.DOUBLE)
    c.add("gru_f64", "GRU", direction="bidirectional", bias=True, lens=True, initial=True)
    c.add("gru_f64_lbr", "GRU", linear_before_reset=1, bias=True)
    c.add("lstm_f64", "LSTM", direction="bidirectional", bias=True, lens=True, initial=True, peepholes=True)
    return c


def as_float32(proto: onnx.ModelProto) -> onnx.ModelProto:
    """The model in float32: onnxruntime has no double LSTM."""
    m = onnx.ModelProto()
    m.CopyFrom(proto)
    for vi in [*m.graph.input, *m.graph.output]:
        if vi.type.tensor_type.elem_type == TensorProto.DOUBLE:
            vi.type.tensor_type.elem_type = TensorProto.FLOAT
    for k, t in enumerate(m.graph.initializer):
        m.graph.initializer[k].CopyFrom(numpy_helper.from_array(numpy_helper.to_array(t).astype(np.float32), t.name))
    return m


GROUPS = {"f32": float_cases, "f64": double_cases}
_GROUP_CACHE: dict[str, Cases] = {}
_RESULTS: dict[str, dict] = {}


def group(name: str) -> Cases:
    if name not in _GROUP_CACHE:
        _GROUP_CACHE[name] = GROUPS[name]()
    return _GROUP_CACHE[name]


def results(name: str) -> dict[str, dict[int, tuple[np.ndarray, np.ndarray]]]:
    """{output: {batch: (sofie, onnxruntime)}} from one build."""
    if name not in _RESULTS:
        import onnxruntime as ort
        c = group(name)
        proto = c.model()
        model = sofie.compile(proto, name=f"recurrent_{name}", blas="none")
        ref = c.model(reference=True)
        ref = as_float32(ref) if c.dtype == TensorProto.DOUBLE else ref
        sess = ort.InferenceSession(ref.SerializeToString(), providers=["CPUExecutionProvider"])
        out: dict[str, dict] = {o: {} for o in c.cases}
        for batch in BATCHES:
            feeds = c.feeds(batch)
            got = model(*[feeds[n] for n, *_ in model.inputs])
            ref_feeds = {k: v.astype(np.float32) if v.dtype == np.float64 else v for k, v in feeds.items()}
            for o, g, r in zip(c.cases, got, sess.run(c.cases, ref_feeds), strict=True):
                out[o][batch] = (g, r)
        _RESULTS[name] = out
    return _RESULTS[name]


@pytest.mark.parametrize("name,case", [(g, o) for g in GROUPS for o in group(g).cases])
def test_matches_onnxruntime(name: str, case: str) -> None:
    for batch, (got, ref) in results(name)[case].items():
        assert got.shape == ref.shape, f"{case}: shape {got.shape} != onnxruntime {ref.shape}"
        np.testing.assert_allclose(got, ref, rtol=RTOL, atol=ATOL, err_msg=f"{case} batch {batch}")


# ---- PyTorch exports: bidirectional, batch_first, dynamic batch and sequence length --------

class TwoLayers(nn.Module):
    """nn.LSTM / GRU / RNN with 2 bidirectional batch-first layers; returns the top layer's
    sequence and the final hidden state of every layer and direction. The export slices each
    layer's zero initial state out of one ConstantOfShape of the runtime batch."""

    def __init__(self, cls: type[nn.Module]) -> None:
        super().__init__()
        self.rnn = cls(4, 8, num_layers=2, bidirectional=True, batch_first=True)

    def forward(self, x):
        y, state = self.rnn(x)
        return y, state[0] if isinstance(state, tuple) else state


@pytest.fixture(scope="module", params=["LSTM", "GRU", "RNN"])
def exported(request, tmp_path_factory) -> str:
    torch.manual_seed(0)
    path = str(tmp_path_factory.mktemp("rnn") / f"{request.param}.onnx")
    module = TwoLayers(getattr(nn, request.param)).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (torch.randn(2, 5, 4),), path, input_names=["x"], output_names=["y", "h"],
                          dynamic_axes={"x": {0: "N", 1: "T"}, "y": {0: "N", 1: "T"}, "h": {1: "N"}},
                          dynamo=False, opset_version=17)
    return path


def test_torch_export_at_two_batches_and_two_lengths(exported: str) -> None:
    from tests.conftest import ort_run
    model = sofie.compile(exported, blas="none", dims={"T": 16})
    assert sum(model.stats["ops"].get(op, 0) for op in ("graph.lstm", "graph.gru", "graph.rnn")) == 2
    rng = np.random.default_rng(0)
    for n, t in [(1, 3), (5, 3), (1, 16), (5, 11)]:
        x = rng.standard_normal((n, t, 4)).astype(np.float32)
        got, ref = model(x), ort_run(exported, x)
        for g, r in zip(got, ref, strict=True):
            assert g.shape == r.shape
            np.testing.assert_allclose(g, r, rtol=RTOL, atol=ATOL, err_msg=f"N={n}, T={t}")


def test_a_sequence_on_axis_0_is_never_run_in_chunks(tmp_path) -> None:
    """X [T, N, I] with T the batch symbol (axis 0 of the first input) and Y the only output:
    every interface value holds T on axis 0, yet the steps are not independent events. The
    model is bounded by max_batch instead of chunked (which would restart the recurrence)."""
    from tests.conftest import ort_run
    w = np.random.default_rng(3).standard_normal((1, 4 * H, I)).astype(np.float32)
    r = np.random.default_rng(4).standard_normal((1, 4 * H, H)).astype(np.float32)
    node = helper.make_node("LSTM", ["x", "W", "R"], ["y"], hidden_size=H)
    g = helper.make_graph([node], "seq_first", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["T", 2, I])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                          [numpy_helper.from_array(w, "W"), numpy_helper.from_array(r, "R")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 14)])
    m.ir_version = 8
    path = str(tmp_path / "seq_first.onnx")
    onnx.save(m, path)
    model = sofie.compile(path, blas="none", max_batch=4)
    x = np.random.default_rng(5).standard_normal((4, 2, I)).astype(np.float32)
    np.testing.assert_allclose(model(x)[0], ort_run(path, x)[0], rtol=RTOL, atol=ATOL)
    with pytest.raises((ValueError, sofie.SofieError), match="max_batch"):
        model(np.zeros((5, 2, I), np.float32))


# ---- bad input: a clear SofieError naming the node, at import ------------------------------

def _one(op: str, x_shape: tuple, w_shape: tuple, r_shape: tuple, x_type: int = TensorProto.FLOAT,
         lens_type: int | None = None, **attrs) -> onnx.ModelProto:
    inputs = [helper.make_tensor_value_info("x", x_type, list(x_shape))]
    names = ["x", "W", "R"]
    inits = [numpy_helper.from_array(np.zeros(w_shape, np.float32), "W"),
             numpy_helper.from_array(np.zeros(r_shape, np.float32), "R")]
    if lens_type is not None:
        inputs.append(helper.make_tensor_value_info("lens", lens_type, [x_shape[1]]))
        names += ["", "lens"]
    node = helper.make_node(op, names, ["y"], name="the_node", **attrs)
    g = helper.make_graph([node], "bad", inputs, [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                          inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 14)])
    m.ir_version = 8
    return m


BAD = {
    "w_shape": (_one("LSTM", (2, 1, 3), (1, 12, 2), (1, 12, 3), hidden_size=3),
                r"W has shape \[1, 12, 2\], expected \[1, 12, 3\]"),
    "hidden_size_mismatch": (_one("GRU", (2, 1, 3), (1, 12, 3), (1, 12, 4), hidden_size=3),
                             r"W has shape \[1, 12, 3\], expected \[1, 9, 3\]"),
    "bidirectional_needs_two": (_one("RNN", (2, 1, 3), (1, 4, 3), (1, 4, 4), hidden_size=4,
                                     direction="bidirectional"), r"expected \[2, 4, 3\]"),
    "direction": (_one("RNN", (2, 1, 3), (1, 4, 3), (1, 4, 4), hidden_size=4, direction="sideways"),
                  r"direction must be forward, reverse or bidirectional"),
    "unknown_activation": (_one("RNN", (2, 1, 3), (1, 4, 3), (1, 4, 4), hidden_size=4, activations=["Swish"]),
                           r"unknown activation 'Swish'"),
    "activation_count": (_one("GRU", (2, 1, 3), (1, 12, 3), (1, 12, 4), hidden_size=4, activations=["Tanh"]),
                         r"1 activations, expected 2 per direction"),
    "integer_input": (_one("RNN", (2, 1, 3), (1, 4, 3), (1, 4, 4), x_type=TensorProto.INT32, hidden_size=4),
                      r"X is i32; a recurrent layer runs on f32, f64"),
    "lens_type": (_one("RNN", (2, 1, 3), (1, 4, 3), (1, 4, 4), lens_type=TensorProto.INT64, hidden_size=4),
                  r"sequence_lens is i64, expected i32"),
    "layout": (_one("RNN", (2, 1, 3), (1, 4, 3), (1, 4, 4), hidden_size=4, layout=2), r"layout must be 0 or 1"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_refused_naming_the_node(case: str) -> None:
    from sofie.frontends.onnx import load_onnx
    model, pattern = BAD[case]
    with pytest.raises(sofie.SofieError, match=pattern) as e:
        load_onnx(model)
    assert "the_node" in str(e.value) and model.graph.node[0].op_type in str(e.value), str(e.value)
