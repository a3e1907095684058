"""Reductions, the softmax family and normalizations against onnxruntime: every attribute and
form (axes as attribute or input, keepdims, noop_with_empty_axes, select_last_index,
exclusive / reverse, largest, opset < 13 softmax flattening) as independent cases of one
model per opset group, compiled once (the house pattern of test_ops.py).

Tolerances: float32, RTOL 1e-4 / ATOL 1e-5 as in test_ops (sums in another order than
onnxruntime, vmath exp within 2 ulp); integer outputs (ArgMax, TopK indices) exactly.
Ties for ArgMax / Hardmax / TopK come from Floor of the random input.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import sofie
from sofie.errors import SofieError
from tests.e2e.test_ops import BATCHES, Suite, f32, i64

RTOL, ATOL = 1e-4, 1e-5
REDUCE = ["ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
          "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare"]
_LOG = {"ReduceLogSum"}  # log of a sum: positive inputs


def _case(s: Suite, name: str, build, elem: int = TensorProto.FLOAT) -> None:
    """A case whose output may be an integer tensor."""
    s._case = name
    s.output(name, build(s), elem)
    s.cases.append(name)


def _ties(s: Suite, shape: tuple) -> str:
    return s.node("Floor", [s.inp(shape)])


def suite21() -> Suite:
    s = Suite("reduce21", 21)
    x = ("N", 3, 4)
    for op in REDUCE:
        kind = "positive" if op in _LOG else "normal"
        tag = op[len("Reduce"):].lower()
        for axes, keep in (([1], 1), ([0, 2], 0), ([-1], 0), ([2, 1], 1)):
            if op == "ReduceMean" and 0 in axes:
                continue  # the count would be the run-time batch (refused; see the error test)
            label = "_".join(str(a).replace("-", "m") for a in axes)
            s.case(f"{tag}_axes{label}_keep{keep}",
                   lambda s, op=op, axes=axes, keep=keep, kind=kind:
                   s.node(op, [s.inp(x, kind), s.init(i64(*axes))], keepdims=keep))
        s.case(f"{tag}_all", lambda s, op=op, kind=kind: s.node(op, [s.inp((2, 3, 4), kind)], keepdims=0))
        s.case(f"{tag}_noop", lambda s, op=op, kind=kind:
               s.node(op, [s.inp(x, kind), s.init(np.zeros(0, np.int64))], noop_with_empty_axes=1))
    s.case("sum_big_rows", lambda s: s.node("ReduceSum", [s.inp(("N", 300)), s.init(i64(1))]))
    s.case("max_big_cols", lambda s: s.node("ReduceMax", [s.inp((300, "N")), s.init(i64(0))]))

    for op in ("ArgMax", "ArgMin"):
        for axis, keep, last in ((1, 1, 0), (2, 0, 0), (-1, 1, 1), (0, 0, 1)):
            _case(s, f"{op.lower()}_axis{axis}_keep{keep}_last{last}".replace("-", "m"),
                  lambda s, op=op, axis=axis, keep=keep, last=last:
                  s.node(op, [_ties(s, (2, 5, 6))], axis=axis, keepdims=keep, select_last_index=last),
                  TensorProto.INT64)
    for axis in (0, 1, -1):
        for exclusive, reverse in ((0, 0), (1, 0), (0, 1), (1, 1)):
            s.op(f"cumsum_axis{axis}_ex{exclusive}_rev{reverse}".replace("-", "m"), "CumSum",
                 [x, i64(axis).reshape(())], exclusive=exclusive, reverse=reverse)
    for axis, largest in ((-1, 1), (1, 0), (0, 1)):
        def top(s, axis=axis, largest=largest, what=0):
            return s.node("TopK", [_ties(s, (4, 6, 5)), s.init(i64(3))], 2, axis=axis, largest=largest)[what]
        tag = f"topk_axis{axis}_largest{largest}".replace("-", "m")
        s.case(f"{tag}_values", top)
        _case(s, f"{tag}_indices", lambda s, top=top: top(s, what=1), TensorProto.INT64)

    for op in ("Softmax", "LogSoftmax", "Hardmax"):
        for axis in (0, 1, -1):
            make = (lambda s, op=op, axis=axis: s.node(op, [_ties(s, (2, 3, 40))], axis=axis)) if op == "Hardmax" \
                else (lambda s, op=op, axis=axis: s.node(op, [s.inp(("N", 3, 40))], axis=axis))
            s.case(f"{op.lower()}_axis{axis}".replace("-", "m"), make)
    s.op("softmax_wide_rows", "Softmax", [("N", 1000)])

    w = np.random.default_rng(3).standard_normal(16).astype(np.float32)
    for axis in (-1, 1):
        norm = (3, 4) if axis == 1 else (4,)
        scale, bias = w[:int(np.prod(norm))].reshape(norm), w[-int(np.prod(norm)):].reshape(norm)
        s.op(f"layernorm_axis{axis}".replace("-", "m"), "LayerNormalization", [x, scale, bias], axis=axis)
        s.op(f"layernorm_nobias_axis{axis}".replace("-", "m"), "LayerNormalization", [x, scale],
             axis=axis, epsilon=1e-3)
    for k, what in ((1, "mean"), (2, "invstd")):
        s.case(f"layernorm_{what}", lambda s, k=k: s.node("LayerNormalization",
                                                           [s.inp(x), s.init(w[:4]), s.init(w[4:8])], 3)[k])
    s.op("groupnorm", "GroupNormalization", [("N", 4, 3, 5), w[:4], w[4:8]], num_groups=2)
    s.op("groupnorm_eps", "GroupNormalization", [("N", 4, 6), w[:4], w[4:8]], num_groups=4, epsilon=1e-2)
    s.op("instancenorm", "InstanceNormalization", [("N", 3, 4, 5), w[:3], w[3:6]])
    s.op("lrn_size3", "LRN", [("N", 5, 3, 4)], size=3)
    s.op("lrn_size5", "LRN", [("N", 6, 3, 4)], size=5, alpha=1e-2, beta=0.5, bias=2.0)
    for axis in (1, -1):
        for p in (1, 2):
            s.op(f"lpnorm_axis{axis}_p{p}".replace("-", "m"), "LpNormalization", [x], axis=axis, p=p)
    s.op("mvn_axes12", "MeanVarianceNormalization", [("N", 3, 4, 5)], axes=[2, 3])
    s.op("mvn_default_static", "MeanVarianceNormalization", [(2, 3, 4, 5)])
    return s


def suite11() -> Suite:
    s = Suite("reduce11", 11)
    x = ("N", 3, 4)
    for op in REDUCE:
        kind = "positive" if op in _LOG else "normal"
        s.case(f"{op[6:].lower()}11_axes1", lambda s, op=op, kind=kind: s.node(op, [s.inp(x, kind)], axes=[1]))
        s.case(f"{op[6:].lower()}11_default", lambda s, op=op, kind=kind:
               s.node(op, [s.inp((2, 3), kind)], keepdims=0))
    for op in ("Softmax", "LogSoftmax", "Hardmax"):
        for axis in (None, 0, 2):
            attrs = {} if axis is None else {"axis": axis}
            src = (lambda s: _ties(s, (2, 3, 4))) if op == "Hardmax" else (lambda s: s.inp((2, 3, 4)))
            s.case(f"{op.lower()}11_{'default' if axis is None else f'axis{axis}'}",
                   lambda s, op=op, attrs=attrs, src=src: s.node(op, [src(s)], **attrs))
    _case(s, "topk11_indices", lambda s: s.node("TopK", [_ties(s, (3, 7)), s.init(i64(2))], 2)[1],
          TensorProto.INT64)
    return s


SUITES = {"reduce21": suite21, "reduce11": suite11}
_BUILT: dict[str, tuple[Suite, dict]] = {}


def _results(name: str) -> tuple[Suite, dict]:
    """{case: {batch: (sofie, onnxruntime)}} of one suite, built and run once."""
    if name not in _BUILT:
        import onnxruntime as ort
        s = SUITES[name]()
        proto = s.model()
        m = sofie.compile(proto, name=name, blas="none")
        sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
        order = [i[0] for i in m.inputs]
        res: dict[str, dict] = {c: {} for c in s.cases}
        for batch in BATCHES:
            feeds = s.feeds(batch, seed=batch)
            got = m(*[feeds[n] for n in order])
            for o, g, r in zip(s.outputs, got, sess.run(None, feeds), strict=True):
                res[o.name][batch] = (g, r)
        _BUILT[name] = (s, res)
    return _BUILT[name]


def _params():
    for name, make in SUITES.items():
        for c in make().cases:
            yield pytest.param(name, c, id=f"{name}-{c}")


@pytest.mark.parametrize("suite,case", list(_params()))
def test_matches_onnxruntime(suite: str, case: str) -> None:
    _, res = _results(suite)
    assert sorted(res[case]) == sorted(BATCHES), f"{case}: compared at batches {sorted(res[case])}"
    for batch, (got, ref) in res[case].items():
        assert got.shape == ref.shape, f"{case}: shape {got.shape} != onnxruntime {ref.shape}"
        if got.dtype.kind in "iu":
            np.testing.assert_array_equal(got, ref, err_msg=f"{case} batch {batch}")
        else:
            np.testing.assert_allclose(got, ref, rtol=RTOL, atol=ATOL, err_msg=f"{case} batch {batch}")


# ---- the LayerNorm decomposition exporters emit: fused loops, same numbers -------------------

def _layernorm_decomposition(d: int = 64) -> onnx.ModelProto:
    rng = np.random.default_rng(5)
    inits = [onnx.numpy_helper.from_array(a, n) for a, n in (
        (f32(2.0).reshape(()), "two"), (f32(1e-5).reshape(()), "eps"),
        (rng.standard_normal(d).astype(np.float32), "gamma"), (rng.standard_normal(d).astype(np.float32), "beta"),
        (i64(-1), "axes"))]
    nodes = [helper.make_node("ReduceMean", ["x", "axes"], ["mean"]),
             helper.make_node("Sub", ["x", "mean"], ["d"]),
             helper.make_node("Pow", ["d", "two"], ["sq"]),
             helper.make_node("ReduceMean", ["sq", "axes"], ["var"]),
             helper.make_node("Add", ["var", "eps"], ["ve"]),
             helper.make_node("Sqrt", ["ve"], ["std"]),
             helper.make_node("Div", ["d", "std"], ["n"]),
             helper.make_node("Mul", ["n", "gamma"], ["s"]),
             helper.make_node("Add", ["s", "beta"], ["y"])]
    g = helper.make_graph(nodes, "ln", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 5, d])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])
    m.ir_version = 8
    return m


def test_layernorm_decomposition_fuses_and_matches_onnxruntime() -> None:
    import onnxruntime as ort
    proto = _layernorm_decomposition()
    model = sofie.compile(proto, blas="none")
    # nine ops, four loops: mean; x - mean; the variance with its square, + eps and sqrt;
    # divide, scale, shift. Two [N, 5, 1] statistics and x - mean are the only buffers.
    assert model.stats["low_ops"]["low.generic"] == 4, model.stats["low_ops"]
    assert model.stats["low_ops"]["low.buffer"] == 3, model.stats["low_ops"]
    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    for batch in BATCHES:
        x = np.random.default_rng(batch).standard_normal((batch, 5, 64)).astype(np.float32) * 3 + 1
        (got,), (want,) = model(x), sess.run(None, {"x": x})
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


# ---- what is refused, and how ----------------------------------------------------------------

def _model(node: onnx.NodeProto, inputs: list, inits: list, opset: int = 21) -> onnx.ModelProto:
    g = helper.make_graph([node], "err", inputs, [helper.make_tensor_value_info(o, TensorProto.UNDEFINED, None)
                                                  for o in node.output], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    return m


def test_run_time_k_over_a_symbolic_axis_is_refused_naming_the_node() -> None:
    """A k given at run time works over a static axis (tests/e2e/test_run_time_dims.py); over
    the batch axis its scratch would have no static size."""
    node = helper.make_node("TopK", ["x", "k"], ["v", "i"], name="topk_node", axis=0)
    m = _model(node, [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 7]),
                      helper.make_tensor_value_info("k", TensorProto.INT64, [1])], [])
    with pytest.raises(SofieError, match=r"topk_node.*the axis 0 of X \[N, 7\] must be static"):
        sofie.compile(m, blas="none")


def test_mean_over_the_run_time_batch_couples_events() -> None:
    """x - mean over events: the mean divides by the batch read at run time, and although the
    output holds one row per event the model is Bounded, since run in chunks each chunk would
    be centred on its own mean (float32, 5 terms: rtol 1e-6)."""
    nodes = [helper.make_node("ReduceMean", ["x", "axes"], ["m"], name="mean_node"),
             helper.make_node("Sub", ["x", "m"], ["y"])]
    g = helper.make_graph(nodes, "centre", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 7])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 7])],
                          [onnx.numpy_helper.from_array(i64(0), "axes")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 21)])
    model = sofie.compile(m, blas="none", max_batch=5)
    assert "Bounded" in open(model.header).read()
    x = np.random.default_rng(0).standard_normal((5, 7)).astype(np.float32)
    np.testing.assert_allclose(model(x)[0], x - x.mean(axis=0, keepdims=True), rtol=1e-6, atol=1e-6)
    with pytest.raises(SofieError, match="max_batch|exceeds"):
        model(np.zeros((6, 7), np.float32))


@pytest.mark.parametrize("op", ["CumSum", "CumProd"])
def test_run_time_axis_of_a_scan(op: str) -> None:
    """CumSum / CumProd with the axis a graph input: the result's shape does not depend on it,
    so one compiled model takes every axis at run time (checked against the onnx reference,
    since onnxruntime has no CumProd; float32 RTOL 1e-4 / ATOL 1e-5), and an axis outside
    [-rank, rank) raises naming the node."""
    from onnx.reference import ReferenceEvaluator
    node = helper.make_node(op, ["x", "axis"], ["y"], name="scan_node", exclusive=1, reverse=1)
    g = helper.make_graph([node], "scan", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 4, 5]),
                                           helper.make_tensor_value_info("axis", TensorProto.INT32, [])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3, 4, 5])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 26)])
    model = sofie.compile(m, name=f"{op.lower()}_axis_at_run_time", blas="none")
    sess = ReferenceEvaluator(m)
    x = np.random.default_rng(0).uniform(0.5, 1.5, (3, 4, 5)).astype(np.float32)
    for axis in (0, 1, 2, -1, -3):
        a = np.array(axis, np.int32)
        np.testing.assert_allclose(model(x, a)[0], sess.run(None, {"x": x, "axis": a})[0], rtol=RTOL, atol=ATOL)
    with pytest.raises(IndexError, match=r"node 'scan_node'.*axis 3 is outside \[-3, 3\)"):
        model(x, np.array(3, np.int32))
