"""ONNX control flow against onnxruntime: If (compile-time and run-time conditions), Loop (trip
count, while-condition folded from the counter, both, zero iterations, nested, carried values
that grow) and Scan (opset 9+ axes and directions, opset 8's batch axis), unrolled at import
(sofie/frontends/onnx_control_flow.py); plus AffineGrid, whose ONNX function body has Ifs that
read the function's own values; and a TorchScript model (a Python loop and a data-dependent
`if`) against torch.

As in test_shape_ops.py: every case is an independent subgraph of one model per opset (20 and
8), compiled once and run at batches 1 and 3 next to onnxruntime, one pytest test per output.
Run-time conditions are graph inputs with fixed values. The unrolled bodies do the arithmetic
onnxruntime does, in the same order but for MatMul's sums: rtol 1e-5 / atol 1e-5 (float32).
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import sofie
from tests.e2e.test_ops import f32, i64
from tests.e2e.test_shape_ops import Cases

RTOL, ATOL = 1e-5, 1e-5
BATCHES = (1, 3)
F, I64, B = TensorProto.FLOAT, TensorProto.INT64, TensorProto.BOOL


def vi(name: str, elem: int = F, shape=None):
    return helper.make_tensor_value_info(name, elem, shape)


class Flow(Cases):
    """Cases with several outputs each, and bodies whose names stay unique in the model."""

    def multi(self, name: str, build, elems: tuple[int, ...] = ()) -> None:
        self._case = name
        for k, v in enumerate(build(self)):
            out = f"{name}.{k}"
            self.output(out, v, elems[k] if k < len(elems) else F)
            self.cases.append(out)

    def n(self, op: str, inputs: list[str], outputs: list[str] | None = None, **attrs):
        """A node for a body: outputs named after the case (fresh ones when not given)."""
        outputs = outputs or [self._fresh(op.lower())]
        return helper.make_node(op, inputs, outputs, name=self._fresh(op), **attrs)

    def const(self, value: np.ndarray):
        """(a Constant node, its output name) for a body."""
        node = self.n("Constant", [], value=helper.make_tensor(
            self._fresh("c"), helper.np_dtype_to_tensor_dtype(value.dtype), value.shape, value.reshape(-1).tolist()))
        return node, node.output[0]

    def body(self, nodes, inputs, outputs, inits=()):
        return helper.make_graph(nodes, self._fresh("body"), inputs, outputs, list(inits))

    def if_(self, cond: str, then_g, else_g, n_out: int = 1) -> list[str]:
        outs = [self._fresh("if") for _ in range(n_out)]
        self.nodes.append(helper.make_node("If", [cond], outs, name=self._fresh("If"),
                                           then_branch=then_g, else_branch=else_g))
        return outs

    def loop(self, inputs: list[str], body, n_out: int) -> list[str]:
        outs = [self._fresh("loop") for _ in range(n_out)]
        self.nodes.append(helper.make_node("Loop", inputs, outs, name=self._fresh("Loop"), body=body))
        return outs

    def scan(self, inputs: list[str], body, n_out: int, **attrs) -> list[str]:
        outs = [self._fresh("scan") for _ in range(n_out)]
        self.nodes.append(helper.make_node("Scan", inputs, outs, name=self._fresh("Scan"), body=body, **attrs))
        return outs

    def unary_branch(self, op: str, x: str, elem: int = F):
        node = self.n(op, [x])
        return self.body([node], [], [vi(node.output[0], elem)])


# ---- If -----------------------------------------------------------------------------------------

def _if_cases(s: Flow) -> None:
    def init_true(s):  # cond an initializer: only the then branch is imported
        x = s.inp(("N", 4))
        return s.if_(s.init(np.array(True)), s.unary_branch("Relu", x), s.unary_branch("Neg", x))
    s.multi("if_initializer_true", init_true)

    def constant_false(s):  # cond a Constant node of shape [1]; the branch has an initializer
        x = s.inp(("N", 3))
        node, cond = s.const(np.array([False]))
        s.nodes.append(node)
        w = s._fresh("w")
        add = s.n("Add", [x, w])
        else_g = s.body([add], [], [vi(add.output[0])], [helper.make_tensor(w, F, [3], [1.0, -2.0, 0.5])])
        return s.if_(cond, s.unary_branch("Relu", x), else_g)
    s.multi("if_constant_false", constant_false)

    def folded(s):  # cond computed from a static shape: Size(x) > 4 folds to true
        x = s.inp((3, 2))
        cond = s.node("Greater", [s.node("Size", [x]), s.init(np.array(4, np.int64))])
        two_node, two = s.const(f32(2.0))
        mul = s.n("Mul", [x, two])
        return s.if_(cond, s.body([two_node, mul], [], [vi(mul.output[0])]), s.unary_branch("Sigmoid", x))
    s.multi("if_folded_condition", folded)

    for taken in (True, False):  # a run-time cond: both branches, then Where
        def runtime(s, taken=taken):
            x = s.inp(("N", 3))
            w = s.init(f32(0.5, -1.0, 2.0))
            add = s.n("Add", [x, w])
            c_node, c = s.const(f32(3.0, 0.25, -1.0))
            mul = s.n("Mul", [x, c])
            return s.if_(s.given(np.array(taken)), s.body([add], [], [vi(add.output[0])]),
                         s.body([c_node, mul], [], [vi(mul.output[0])]))
        s.multi(f"if_runtime_{str(taken).lower()}", runtime)

    def scalar_out(s):  # cond of shape [1], outputs of rank 0
        x = s.inp((2, 3))
        total, top = s.n("ReduceSum", [x], keepdims=0), s.n("ReduceMax", [x], keepdims=0)
        return s.if_(s.given(np.array([True])), s.body([total], [], [vi(total.output[0])]),
                     s.body([top], [], [vi(top.output[0])]))
    s.multi("if_runtime_scalar_outputs", scalar_out)

    def int_out(s):  # int64 outputs selected at run time
        x = s.inp(("N", 3))
        a = s.n("Cast", [x], to=I64)
        neg = s.n("Neg", [x])
        b = s.n("Cast", [neg.output[0]], to=I64)
        return s.if_(s.given(np.array(False)), s.body([a], [], [vi(a.output[0], I64)]),
                     s.body([neg, b], [], [vi(b.output[0], I64)]))
    s.multi("if_runtime_int64", int_out, (I64,))

    def shared(s):  # two outputs; the second is the same constant in both branches (one weight)
        x = s.inp(("N", 2))
        relu, absx = s.n("Relu", [x]), s.n("Abs", [x])
        (c1, k1), (c2, k2) = s.const(f32(1.5, -2.0)), s.const(f32(1.5, -2.0))
        return s.if_(s.given(np.array(True)), s.body([relu, c1], [], [vi(relu.output[0]), vi(k1)]),
                     s.body([absx, c2], [], [vi(absx.output[0]), vi(k2)]), n_out=2)
    s.multi("if_runtime_two_outputs", shared)

    def nested(s):  # run-time If; its then branch holds a constant If, its else branch a Loop
        x = s.inp(("N", 3))
        inner_out = s._fresh("inner")
        f_node, f = s.const(np.array(False))
        inner = helper.make_node("If", [f], [inner_out], name=s._fresh("If"),
                                 then_branch=s.unary_branch("Neg", x), else_branch=s.unary_branch("Tanh", x))
        then_g = s.body([f_node, inner], [], [vi(inner_out)])
        i, c, y = s._fresh("i"), s._fresh("c"), s._fresh("y")
        c_out, dbl = s.n("Identity", [c]), s.n("Add", [y, y])
        body = s.body([c_out, dbl], [vi(i, I64, []), vi(c, B, []), vi(y)], [vi(c_out.output[0], B), vi(dbl.output[0])])
        m_node, m = s.const(np.array(2, np.int64))
        loop_out = s._fresh("loop")
        loop = helper.make_node("Loop", [m, "", x], [loop_out], name=s._fresh("Loop"), body=body)
        else_g = s.body([m_node, loop], [], [vi(loop_out)])
        return s.if_(s.given(np.array(True)), then_g, else_g) + s.if_(s.given(np.array(False)), then_g, else_g)
    s.multi("if_nested", nested)


# ---- Loop ---------------------------------------------------------------------------------------

def _loop_body(s: Flow, carried: int, make, scans: int = 0, scan_elems: tuple[int, ...] = (), inits=()):
    """A Loop body: (iteration, cond, carried...) -> make(i, cond, carried) = (nodes, cond_out,
    carried outs, scan outs)."""
    i, c = s._fresh("i"), s._fresh("cond")
    ys = [s._fresh("y") for _ in range(carried)]
    nodes, c_out, outs, scan_outs = make(i, c, ys)
    outputs = ([vi(c_out, B)] + [vi(o) for o in outs]
               + [vi(o, scan_elems[k] if k < len(scan_elems) else F) for k, o in enumerate(scan_outs)])
    return s.body(nodes, [vi(i, I64, []), vi(c, B, [])] + [vi(y) for y in ys], outputs, inits)


def _loop_cases(s: Flow) -> None:
    def trip_count(s):  # M = 3, no cond: carried y, a scan output that reads the counter
        x = s.inp(("N", 3))

        def make(i, c, ys):
            half_node, half = s.const(np.array(0.5, np.float32))
            keep, mul = s.n("Identity", [c]), s.n("Mul", [ys[0], half])
            add = s.n("Add", [mul.output[0], x])
            fi = s.n("Cast", [i], to=F)
            scan = s.n("Mul", [add.output[0], fi.output[0]])
            return [half_node, keep, mul, add, fi, scan], keep.output[0], [add.output[0]], [scan.output[0]]
        return s.loop([s.init(np.array(3, np.int64)), "", x], _loop_body(s, 1, make), 2)
    s.multi("loop_trip_count", trip_count)

    def while_counter(s):  # no M; cond_out = i < 2 folds per iteration: 3 iterations
        x = s.inp(("N", 2))

        def make(i, c, ys):
            two_node, two = s.const(np.array(2, np.int64))
            less, add = s.n("Less", [i, two]), s.n("Add", [ys[0], x])
            return [two_node, less, add], less.output[0], [add.output[0]], [add.output[0]]
        return s.loop(["", s.init(np.array(True)), x], _loop_body(s, 1, make), 2)
    s.multi("loop_while_counter", while_counter)

    def trip_and_cond(s):  # M = 10 and cond_out = i < 4: 5 iterations; an int64 scan output
        x = s.inp((2,))

        def make(i, c, ys):
            four_node, four = s.const(np.array(4, np.int64))
            less, sq = s.n("Less", [i, four]), s.n("Mul", [ys[0], ys[0]])
            ident = s.n("Identity", [i])
            return [four_node, less, sq, ident], less.output[0], [sq.output[0]], [ident.output[0]]
        node, cond = s.const(np.array(True))
        s.nodes.append(node)
        return s.loop([s.init(np.array(10, np.int64)), cond, x], _loop_body(s, 1, make, 1, (I64,)), 2)
    s.multi("loop_trip_and_condition", trip_and_cond, (F, I64))

    def counter_slice(s):  # as ONNX's test_loop11: Slice a body Constant at the counter
        y0 = s.inp((1,))

        def make(i, c, ys):
            xs_node, xs = s.const(f32(1, 2, 3, 4, 5))
            one_node, one = s.const(np.array(1, np.int64))
            end = s.n("Add", [i, one])
            start_u, end_u = s.n("Unsqueeze", [i, s.init(i64(0))]), s.n("Unsqueeze", [end.output[0], s.init(i64(0))])
            sl = s.n("Slice", [xs, start_u.output[0], end_u.output[0]])
            add, keep = s.n("Add", [ys[0], sl.output[0]]), s.n("Identity", [c])
            return ([xs_node, one_node, end, start_u, end_u, sl, add, keep], keep.output[0], [add.output[0]],
                    [add.output[0]])
        return s.loop([s.init(np.array(4, np.int64)), "", y0], _loop_body(s, 1, make), 2)
    s.multi("loop_counter_slice", counter_slice)

    def growing(s):  # the carried value doubles in length each iteration
        v0 = s.inp((2,))

        def make(i, c, ys):
            cat, keep = s.n("Concat", [ys[0], ys[0]], axis=0), s.n("Identity", [c])
            return [cat, keep], keep.output[0], [cat.output[0]], []
        return s.loop([s.init(np.array(3, np.int64)), "", v0], _loop_body(s, 1, make), 1)
    s.multi("loop_growing_carried", growing)

    for label, m, cond in (("zero_trip_count", 0, None), ("initially_false", 5, False)):
        def never(s, m=m, cond=cond):  # the outputs are the initial values
            x = s.inp(("N", 3))

            def make(i, c, ys):
                neg, keep = s.n("Neg", [ys[0]]), s.n("Identity", [c])
                return [neg, keep], keep.output[0], [neg.output[0]], []
            c_in = "" if cond is None else s.init(np.array(cond))
            return s.loop([s.init(np.array(m, np.int64)), c_in, x], _loop_body(s, 1, make), 1)
        s.multi(f"loop_{label}", never)

    def nested(s):  # an inner Loop reads the outer body's counter and carried value
        x = s.inp(("N", 3))

        def outer(i, c, ys):
            def inner(j, d, zs):
                fi, fj = s.n("Cast", [i], to=F), s.n("Cast", [j], to=F)
                add = s.n("Add", [zs[0], fi.output[0]])
                mul = s.n("Mul", [add.output[0], ys[0]])
                both = s.n("Add", [mul.output[0], fj.output[0]])
                keep = s.n("Identity", [d])
                return [fi, fj, add, mul, both, keep], keep.output[0], [both.output[0]], []
            z0 = s.n("Sigmoid", [ys[0]])
            out = s._fresh("inner")
            loop = helper.make_node("Loop", [s.init(np.array(2, np.int64)), "", z0.output[0]], [out],
                                    name=s._fresh("Loop"), body=_loop_body(s, 1, inner))
            keep = s.n("Identity", [c])
            return [z0, loop, keep], keep.output[0], [out], []
        return s.loop([s.init(np.array(3, np.int64)), "", x], _loop_body(s, 1, outer), 1)
    s.multi("loop_nested", nested)

    def body_initializer(s):  # the body has an initializer of its own
        x = s.inp(("N", 3))

        def make(i, c, ys):
            mul, keep = s.n("Mul", [ys[0], "w_in_body"]), s.n("Identity", [c])
            return [mul, keep], keep.output[0], [mul.output[0]], [mul.output[0]]
        body = _loop_body(s, 1, make, inits=[helper.make_tensor("w_in_body", F, [3], [0.5, -1.5, 2.0])])
        return s.loop([s.init(np.array(2, np.int64)), "", x], body, 2)
    s.multi("loop_body_initializer", body_initializer)


# ---- Scan (opset 9+) ----------------------------------------------------------------------------

def _scan_body(s: Flow, n_in: int, make):
    ins = [s._fresh("in") for _ in range(n_in)]
    nodes, outs = make(ins)
    return s.body(nodes, [vi(i) for i in ins], [vi(o) for o in outs])


def _scan_cases(s: Flow) -> None:
    def batch_axis1(s):  # a state with the batch; the sequence on axis 1
        s0, x = s.inp(("N", 3)), s.inp(("N", 4, 3))

        def make(ins):
            add = s.n("Add", ins)
            mul = s.n("Mul", [add.output[0], ins[1]])
            return [add, mul], [add.output[0], mul.output[0]]
        return s.scan([s0, x], _scan_body(s, 2, make), 2, num_scan_inputs=1, scan_input_axes=[1])
    s.multi("scan_sequence_axis1", batch_axis1)

    def directions(s):  # reversed input; outputs on axis 1, one forward and one reversed
        x = s.inp((5, 2))

        def make(ins):
            a, b = s.n("Relu", ins), s.n("Neg", ins)
            return [a, b], [a.output[0], b.output[0]]
        return s.scan([x], _scan_body(s, 1, make), 2, num_scan_inputs=1, scan_input_directions=[1],
                      scan_output_axes=[1, 1], scan_output_directions=[0, 1])
    s.multi("scan_directions", directions)

    def negative_axes(s):  # two scan inputs on different axes (one negative), no state
        x1, x2 = s.inp((3, 4)), s.inp((4, 2))

        def make(ins):
            cat = s.n("Concat", ins, axis=0)
            return [cat], [cat.output[0]]
        return s.scan([x1, x2], _scan_body(s, 2, make), 1, num_scan_inputs=2, scan_input_axes=[-1, 0],
                      scan_output_axes=[-1])
    s.multi("scan_negative_axes", negative_axes)

    def rnn_cell(s):  # h = tanh(x_t W + h U + b): outer weights, a body Constant
        h0, xs = s.inp(("N", 4)), s.inp((6, "N", 3))
        w, u = s.weight(3, 4), s.weight(4, 4)

        def make(ins):
            b_node, b = s.const(f32(0.1, -0.2, 0.3, 0.0))
            xw, hu = s.n("MatMul", [ins[1], w]), s.n("MatMul", [ins[0], u])
            add = s.n("Add", [xw.output[0], hu.output[0]])
            addb = s.n("Add", [add.output[0], b])
            h = s.n("Tanh", [addb.output[0]])
            keep = s.n("Identity", [h.output[0]])
            return [b_node, xw, hu, add, addb, h, keep], [h.output[0], keep.output[0]]
        return s.scan([h0, xs], _scan_body(s, 2, make), 2, num_scan_inputs=1)
    s.multi("scan_rnn_cell", rnn_cell)

    def length_one(s):
        s0, x = s.inp((3,)), s.inp((1, 3))

        def make(ins):
            mx = s.n("Max", ins)
            return [mx], [mx.output[0]]
        return s.scan([s0, x], _scan_body(s, 2, make), 1, num_scan_inputs=1)
    s.multi("scan_length_one", length_one)


def _affine_grid_cases(s: Flow) -> None:
    for align in (0, 1):  # a function body whose Ifs read the function's values (size, one_1d...)
        s.multi(f"affine_grid_align{align}", lambda s, align=align: [s.node(
            "AffineGrid", [s.inp((2, 2, 3)), s.init(i64(2, 1, 4, 5))], align_corners=align)])


def _flow20() -> Flow:
    s = Flow("flow20", 20)
    _if_cases(s)
    _loop_cases(s)
    _scan_cases(s)
    _affine_grid_cases(s)
    return s


# ---- Scan-8: a batch axis the body does not see --------------------------------------------------

def _flow8() -> Flow:
    s = Flow("flow8", 8)

    def batched(s, directions=(0,), lens=False):
        s0, x = s.inp((2, 3)), s.inp((2, 4, 3))

        def make(ins):
            add, keep = s.n("Add", ins), s.n("Identity", ins[1:])
            return [add, keep], [add.output[0], keep.output[0]]
        seq = s.init(np.array([4, 4], np.int64)) if lens else ""
        return s.scan([seq, s0, x], _scan_body(s, 2, make), 2, num_scan_inputs=1, directions=list(directions))
    s.multi("scan8_forward", batched)
    s.multi("scan8_reverse", lambda s: batched(s, (1,)))
    s.multi("scan8_full_sequence_lens", lambda s: batched(s, lens=True))
    return s


_SUITES = {"flow20": _flow20, "flow8": _flow8}
_BUILT: dict[str, Flow] = {}
_RESULTS: dict[str, dict] = {}


def _suite(name: str) -> Flow:
    if name not in _BUILT:
        _BUILT[name] = _SUITES[name]()
    return _BUILT[name]


def _results(name: str) -> dict[str, dict[int, tuple[np.ndarray, np.ndarray]]]:
    """Compiles the suite once; {output: {batch: (sofie, onnxruntime)}}."""
    if name not in _RESULTS:
        import onnxruntime as ort
        s = _suite(name)
        proto = s.model()
        m = sofie.compile(proto, name=s.name, blas="none")
        sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
        order = [i[0] for i in m.inputs]
        outs = [o.name for o in proto.graph.output]
        res: dict[str, dict[int, tuple]] = {c: {} for c in s.cases}
        for batch in BATCHES:
            feeds = s.feeds(batch, seed=batch)
            got = m(*[feeds[n] for n in order])
            for out, g, r in zip(outs, got, sess.run(None, feeds), strict=True):
                res[out][batch] = (g, r)
        _RESULTS[name] = res
    return _RESULTS[name]


@pytest.mark.parametrize("suite,case", [(n, c) for n in _SUITES for c in _suite(n).cases])
def test_matches_onnxruntime(suite: str, case: str) -> None:
    for batch, (got, ref) in _results(suite)[case].items():
        assert got.dtype == ref.dtype and got.shape == ref.shape, (
            f"{case} batch {batch}: {got.dtype}{list(got.shape)} vs onnxruntime {ref.dtype}{list(ref.shape)}")
        np.testing.assert_allclose(got, ref, rtol=RTOL, atol=ATOL, err_msg=f"{case} batch {batch}")


# ---- a TorchScript model: a Python loop becomes Loop, a data-dependent `if` becomes If ----------

class _Recurrent:
    """h = tanh(W x_t + b + h) over the sequence, then h * 2 when its sum is positive, else h - 1."""

    @staticmethod
    def module():
        import torch

        class Net(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.fc = torch.nn.Linear(4, 4)

            def forward(self, x):
                h = torch.zeros_like(x[:, 0, :])
                for t in range(x.size(1)):
                    h = torch.tanh(self.fc(x[:, t, :]) + h)
                if h.sum() > 0:
                    h = h * 2
                else:
                    h = h - 1
                return h
        torch.manual_seed(0)
        return torch.jit.script(Net())


def test_torchscript_loop_and_if_match_torch(tmp_path):
    import torch
    net = _Recurrent.module()
    path = str(tmp_path / "recurrent.onnx")
    torch.onnx.export(net, (torch.randn(2, 5, 4),), path, input_names=["x"], output_names=["y"], opset_version=17,
                      dynamo=False)
    ops = {n.op_type for n in onnx.load(path).graph.node}
    assert {"Loop", "If"} <= ops, ops
    m = sofie.compile(path, name="recurrent", blas="none")
    for seed in range(3):  # the If goes either way
        x = torch.randn(2, 5, 4, generator=torch.Generator().manual_seed(seed)) * (seed + 1)
        np.testing.assert_allclose(m(x.numpy())[0], net(x).detach().numpy(), rtol=RTOL, atol=ATOL)
