"""Every element type end to end: f32, f64, the signed and unsigned integers, bool, and f16 as
storage (inputs, outputs, weights, casts through float).

Four models, each compiled once (sofie.compile caches by content hash) and run at batch 1 and 3
from that one build; every case is an independent subgraph with its own output, and a test per
case names it:

- ELEMENTWISE: each elementwise op on each element type it is defined on, against numpy
  formulas written here (integers in exact Python arithmetic, wrapped to the type), and against
  onnxruntime where it has the kernel. Every other (op, type) pair must be refused at compile
  time with a SofieError naming the op, the node and the type (test_elementwise_refused).
- CASTS: Cast between every pair of the 12 element types, against onnxruntime, plus f16 in and
  out through float, and weights / Concat / Transpose of every type.
- FLOAT64: Gemm + HardSigmoid + Elu (the issue's model) and the float64 kernels (MatMul, conv,
  pooling, batchnorm, softmax, concat), against onnxruntime; onnxruntime has no double kernel
  for HardSigmoid, Elu, Conv, AveragePool or GlobalAveragePool, so for those the ONNX reference
  evaluator (numpy in float64) is the oracle.
- INTEGER: int64 Mul / Add / Max (the issue's model), integer MatMul on i32 i64 u32 u64 and
  integer Gemm, against onnxruntime (the ONNX reference evaluator for Gemm, which onnxruntime
  has in float only).

Tolerances (stated per comparison below):
- integers, bool, every Cast and all data movement: exact (bit-exact floats, any NaN for NaN);
  f64 -> f16 is compared with numpy's single rounding: onnxruntime rounds through float first.
- float64: rtol 1e-12; atol 1e-15 for elementwise ops, 1e-13 for sums (GEMM, conv, pooling,
  batchnorm, softmax), whose terms cancel near zero in another order than the oracle's.
- float32: rtol 1e-5, atol 1e-6 (libm vs numpy / MLAS, a few ulps).
- f16 through float32 Sigmoid: rtol 1e-3 (one f16 ulp; the float results may differ by an ulp
  before rounding to half).
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import onnx
import pytest
from onnx import TensorProto as TP
from onnx import helper, numpy_helper

import sofie
from sofie.jit import cache_dir

BATCHES = (1, 3)
ONNX_TYPE = {"f32": TP.FLOAT, "f64": TP.DOUBLE, "f16": TP.FLOAT16, "i8": TP.INT8, "i16": TP.INT16,
             "i32": TP.INT32, "i64": TP.INT64, "u8": TP.UINT8, "u16": TP.UINT16, "u32": TP.UINT32,
             "u64": TP.UINT64, "i1": TP.BOOL}
NP = {k: np.dtype(helper.tensor_dtype_to_np_dtype(v)) for k, v in ONNX_TYPE.items()}
FLOATS = ("f32", "f64")
SIGNED = ("i8", "i16", "i32", "i64")
UNSIGNED = ("u8", "u16", "u32", "u64")
NUMERIC = FLOATS + SIGNED + UNSIGNED
ALL_TYPES = tuple(ONNX_TYPE)

F64 = dict(rtol=1e-12, atol=1e-15)
F64_SUM = dict(rtol=1e-12, atol=1e-13)
F64_FOLDED = dict(rtol=1e-12, atol=1e-12)  # BatchNorm folded into the conv weights: other roundings
F32 = dict(rtol=1e-5, atol=1e-6)
EXACT = None

Gen = Callable[[np.random.Generator, tuple], np.ndarray]


# ---- many independent cases in one ONNX graph -------------------------------------------------

@dataclass
class Case:
    name: str
    nodes: list = field(default_factory=list)
    inputs: list = field(default_factory=list)
    inits: list = field(default_factory=list)
    outputs: list = field(default_factory=list)
    gens: dict = field(default_factory=dict)        # input name -> (shape with "N", generator)
    tol: dict | None = None                         # assert_allclose kwargs; None: exact
    numpy: Callable | None = None                   # inputs -> expected (the oracle when given)
    reference: bool = False                         # the ONNX reference evaluator, else onnxruntime


class Model:
    def __init__(self, name: str, opset: int = 17) -> None:
        self.name, self.opset = name, opset
        self.cases: dict[str, Case] = {}
        self._k = 0

    def _fresh(self, what: str) -> str:
        self._k += 1
        return f"{self.cur.name}.{what}{self._k}"

    def inp(self, dtype: str, shape: tuple, gen: Gen) -> str:
        name = self._fresh("x")
        self.cur.inputs.append(helper.make_tensor_value_info(name, ONNX_TYPE[dtype], list(shape)))
        self.cur.gens[name] = (shape, gen, NP[dtype])
        return name

    def init(self, arr: np.ndarray) -> str:
        name = self._fresh("w")
        self.cur.inits.append(numpy_helper.from_array(np.asarray(arr), name))
        return name

    def node(self, op: str, inputs: list[str], **attrs) -> str:
        out = self._fresh(op.lower())
        self.cur.nodes.append(helper.make_node(op, inputs, [out], name=self._fresh(op), **attrs))
        return out

    def case(self, name: str, build: Callable[[Model], str | list[str]], tol: dict | None = EXACT,
             numpy: Callable | None = None, reference: bool = False) -> None:
        assert name not in self.cases, name
        self.cur = Case(name, tol=tol, numpy=numpy, reference=reference)
        outs = build(self)
        for k, v in enumerate([outs] if isinstance(outs, str) else outs):
            out = f"{name}#{k}"
            self.cur.nodes.append(helper.make_node("Identity", [v], [out], name=out + ".out"))
            self.cur.outputs.append(onnx.ValueInfoProto(name=out))  # type and shape inferred
        self.cases[name] = self.cur

    def proto(self, cases: list[Case] | None = None) -> onnx.ModelProto:
        cs = list(self.cases.values()) if cases is None else cases
        g = helper.make_graph([n for c in cs for n in c.nodes], self.name, [i for c in cs for i in c.inputs],
                              [o for c in cs for o in c.outputs], [w for c in cs for w in c.inits])
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", self.opset)])
        m.ir_version = 8
        return m

    def feeds(self, batch: int) -> dict[str, np.ndarray]:
        out = {}
        for k, c in enumerate(self.cases.values()):
            rng = np.random.default_rng(1000 * batch + k)
            for name, (shape, gen, dt) in c.gens.items():
                out[name] = np.asarray(gen(rng, tuple(batch if d == "N" else d for d in shape))).astype(dt)
        return out


def _ort_session(proto: onnx.ModelProto):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.log_severity_level = 3
    return ort.InferenceSession(proto.SerializeToString(), so, providers=["CPUExecutionProvider"])


def _ort_has(m: Model, c: Case) -> bool:
    """Whether onnxruntime has a kernel for every node of the case."""
    try:
        _ort_session(m.proto([c]))
        return True
    except Exception:  # noqa: BLE001  (NOT_IMPLEMENTED, or a type onnxruntime refuses)
        return False


_RESULTS: dict[str, dict] = {}


def run(m: Model, blas: str = "none") -> dict[str, list[tuple[list, list, str]]]:
    """{case: [(sofie outputs, expected outputs, oracle) per batch]}; one build per model."""
    key = f"{m.name}.{blas}"
    if key in _RESULTS:
        return _RESULTS[key]
    proto = m.proto()
    os.makedirs(cache_dir(), exist_ok=True)
    with open(os.path.join(cache_dir(), f"test_dtypes.{key}.lock"), "w") as lock:  # xdist workers
        fcntl.flock(lock, fcntl.LOCK_EX)
        compiled = sofie.compile(proto, name=m.name, blas=blas)
    order = [i[0] for i in compiled.inputs]
    on_ort = [c for c in m.cases.values() if c.numpy is None and not c.reference]
    on_ref = [c for c in m.cases.values() if c.numpy is None and c.reference]
    ort_sess = _ort_session(m.proto(on_ort)) if on_ort else None
    ref_eval = None
    if on_ref:
        from onnx.reference import ReferenceEvaluator
        ref_eval = ReferenceEvaluator(m.proto(on_ref))
    res: dict[str, list] = {c: [] for c in m.cases}
    for batch in BATCHES:
        feeds = m.feeds(batch)
        got = dict(zip([o.name for o in proto.graph.output], compiled(*[feeds[n] for n in order])))
        expected: dict[str, tuple] = {}
        for cases, engine, oracle in ((on_ort, ort_sess, "onnxruntime"), (on_ref, ref_eval, "onnx reference")):
            if not cases:
                continue
            names = [o.name for c in cases for o in c.outputs]
            ins = {i.name: feeds[i.name] for c in cases for i in c.inputs}
            expected.update({n: (v, oracle) for n, v in zip(names, engine.run(None, ins))})
        for c in m.cases.values():
            if c.numpy is not None:
                ins = [feeds[i.name] for i in c.inputs]
                ref = c.numpy(*ins)
                expected.update({o.name: (r, "numpy") for o, r in zip(c.outputs, ref if isinstance(ref, list)
                                                                       else [ref])})
            outs = [o.name for o in c.outputs]
            res[c.name].append(([got[o] for o in outs], [expected[o][0] for o in outs], expected[outs[0]][1]))
    _RESULTS[key] = res
    return res


def assert_same(got: np.ndarray, want: np.ndarray, tol: dict | None, what: str) -> None:
    want = np.asarray(want)
    assert got.dtype == want.dtype, f"{what}: dtype {got.dtype}, expected {want.dtype}"
    assert got.shape == want.shape, f"{what}: shape {got.shape}, expected {want.shape}"
    if tol is not None:
        np.testing.assert_allclose(got, want, err_msg=what, **tol)
    elif got.dtype.kind == "f":  # bit-exact, but any NaN for a NaN
        nan = np.isnan(want)
        assert np.array_equal(np.isnan(got), nan), f"{what}: NaN where not expected or missing"
        g, w = got[~nan], want[~nan]
        bad = (g != w) | (np.signbit(g) != np.signbit(w))
        assert not bad.any(), f"{what}: {bad.sum()} of {g.size} differ, e.g. {g[bad][:5]} != {w[bad][:5]}"
    else:
        np.testing.assert_array_equal(got, want, err_msg=what)


def check_case(m: Model, case: str, blas: str = "none") -> None:
    for batch, (got, want, oracle) in zip(BATCHES, run(m, blas)[case]):
        for k, (g, w) in enumerate(zip(got, want)):
            assert_same(g, w, m.cases[case].tol, f"{case} output {k} batch {batch} vs {oracle}")


# ---- value generators -----------------------------------------------------------------------

def normal(scale: float = 2.0) -> Gen:
    return lambda rng, shape: rng.standard_normal(shape) * scale


def positive(rng, shape):
    return np.abs(rng.standard_normal(shape)) + 0.1


def away0(rng, shape):
    x = rng.standard_normal(shape)
    return np.where(x >= 0, x + 0.5, x - 0.5)


def ints(lo: int, hi: int, nonzero: bool = False) -> Gen:
    """Integers in [lo, hi] (as Python ints: object arrays keep 64-bit bounds exact)."""
    def gen(rng, shape):
        x = rng.integers(lo, hi, size=shape, endpoint=True, dtype=np.int64 if lo < 0 or hi < 2**63 else np.uint64)
        return np.where(x == 0, 1, x) if nonzero else x
    return gen


def full(dtype: str, nonzero: bool = False) -> Gen:
    info = np.iinfo(NP[dtype])
    return ints(int(info.min), int(info.max), nonzero)


def wide(dtype: str) -> Gen:
    """Values whose sums and differences stay in range (signed overflow is undefined in C++);
    the narrow types compute in int and wrap when stored, so they take their full range."""
    bits = NP[dtype].itemsize * 8
    if dtype in ("i32", "i64"):
        return ints(-(2 ** (bits - 3)), 2 ** (bits - 3))
    return full(dtype)


def small(dtype: str) -> Gen:
    """Products stay in range for i32 / i64; unsigned and narrow types wrap, defined."""
    return {"i32": ints(-2**15, 2**15), "i64": ints(-2**31, 2**31)}.get(dtype) or full(dtype)


# ---- exact integer references: Python ints, wrapped to the type ------------------------------

def wrap(values, dtype: np.dtype) -> np.ndarray:
    bits = dtype.itemsize * 8
    v = np.vectorize(lambda x: int(x) % (1 << bits), otypes=[object])(values)
    if dtype.kind == "i":
        v = np.vectorize(lambda x: x - (1 << bits) if x >= 1 << (bits - 1) else x, otypes=[object])(v)
    return np.asarray(v.astype(np.int64) if dtype.kind == "i" else v.astype(np.uint64)).astype(dtype)


def exact(fn: Callable) -> Callable:
    """A numpy reference on Python ints (object arrays), broadcast, wrapped to the first
    operand's type."""
    def ref(*xs):
        objs = np.broadcast_arrays(*[np.asarray(x).astype(object) for x in xs])
        return wrap(np.vectorize(fn, otypes=[object])(*objs), xs[0].dtype)
    return ref


def _int_div(a, b):
    q = abs(a) // abs(b)
    return -q if (a < 0) != (b < 0) else q


def _int_pow(a, b):
    if b >= 0:
        return a ** b
    return 1 if a == 1 else (-1) ** (-b) if a == -1 else 0


# ---- ELEMENTWISE: every op on every type it is defined on ------------------------------------

def _floatref(fn):
    def ref(*xs):
        with np.errstate(all="ignore"):
            return np.asarray(fn(*xs)).astype(xs[0].dtype)
    return ref


def _f32(x):  # ONNX float attributes are float32
    return float(np.float32(x))


def _erf(x):
    import math
    return np.vectorize(math.erf)(x.astype(np.float64))


# op -> (types it is defined on (ONNX's, less f16), float reference, integer reference, attrs)
UNARY_OPS = {
    "Relu": (FLOATS + SIGNED, lambda x: np.maximum(x, 0), lambda a: max(a, 0)),
    "Sigmoid": (FLOATS, lambda x: 1 / (1 + np.exp(-x)), None),
    "Tanh": (FLOATS, np.tanh, None),
    "LeakyRelu": (FLOATS, lambda x: np.where(x >= 0, x, x * x.dtype.type(_f32(0.3))), None, {"alpha": 0.3}),
    "Elu": (FLOATS, lambda x: np.where(x >= 0, x, x.dtype.type(_f32(0.6)) * np.expm1(x)), None, {"alpha": 0.6}),
    "Selu": (FLOATS, lambda x: x.dtype.type(_f32(1.0507009873554805)) * np.where(
        x > 0, x, x.dtype.type(_f32(1.6732632423543772)) * np.expm1(x)), None),
    "HardSigmoid": (FLOATS, lambda x: np.clip(x.dtype.type(_f32(0.2)) * x + x.dtype.type(0.5), 0, 1), None),
    "HardSwish": (FLOATS, lambda x: x * np.clip(x / 6 + x.dtype.type(0.5), 0, 1), None),
    "Exp": (FLOATS, np.exp, None),
    "Log": (FLOATS, np.log, None),
    "Sqrt": (FLOATS, np.sqrt, None),
    "Abs": (NUMERIC, np.abs, abs),
    "Neg": (FLOATS + SIGNED, np.negative, lambda a: -a),
    "Reciprocal": (FLOATS, lambda x: 1 / x, None),
    "Floor": (FLOATS, np.floor, None),
    "Ceil": (FLOATS, np.ceil, None),
    "Erf": (FLOATS, _erf, None),
    "Softplus": (FLOATS, lambda x: np.log1p(np.exp(x)), None),
    "Softsign": (FLOATS, lambda x: x / (1 + np.abs(x)), None),
    "Clip": (NUMERIC, None, None),  # cases below
}
BINARY_OPS = {
    "Add": (NUMERIC, np.add, lambda a, b: a + b),
    "Sub": (NUMERIC, np.subtract, lambda a, b: a - b),
    "Mul": (NUMERIC, np.multiply, lambda a, b: a * b),
    "Div": (NUMERIC, np.divide, _int_div),
    "Pow": (FLOATS + ("i32", "i64"), np.power, _int_pow),
    "Max": (NUMERIC, np.maximum, max),
    "Min": (NUMERIC, np.minimum, min),
}
ELEMENTWISE_TYPES = {op: spec[0] for op, spec in {**UNARY_OPS, **BINARY_OPS}.items()}
_FLOAT_INPUT = {"Log": positive, "Sqrt": positive, "Reciprocal": away0}


def _unary_int_input(op: str, t: str) -> Gen:
    return full(t) if t not in ("i32", "i64") else wide(t)


def _binary_int_inputs(op: str, t: str) -> tuple[Gen, Gen]:
    if op == "Div":
        return (wide(t), full(t, nonzero=True)) if t not in ("i32", "i64") else (wide(t), ints(-1000, 1000, True))
    if op == "Pow":  # no 0 base: 0 to a negative power is a division by zero
        return ints(-5, 5, nonzero=True), ints(-3, 8)
    if op == "Mul":
        return small(t), small(t)
    return wide(t), wide(t)


def _add_then_div(a, b, c):
    return exact(_int_div)(exact(lambda x, y: x + y)(a, b), c)


def elementwise_model() -> Model:
    m = Model("dtypes_elementwise", opset=17)
    shape = ("N", 3, 8)
    for t in NUMERIC:
        tol = F32 if t == "f32" else F64 if t == "f64" else EXACT
        for op, (types, fref, iref, *attrs) in UNARY_OPS.items():
            if t not in types or op == "Clip":
                continue
            gen = _FLOAT_INPUT.get(op, normal()) if t in FLOATS else _unary_int_input(op, t)
            ref = _floatref(fref) if t in FLOATS else exact(iref)
            m.case(f"{op}_{t}", lambda m, op=op, t=t, gen=gen, attrs=attrs: m.node(
                op, [m.inp(t, shape, gen)], **(attrs[0] if attrs else {})), tol, ref)
        for op, (types, fref, iref) in BINARY_OPS.items():
            if t not in types:
                continue
            if t in FLOATS:
                ga, gb = (positive, normal(1.0)) if op == "Pow" else (normal(), away0 if op == "Div" else normal())
            else:
                ga, gb = _binary_int_inputs(op, t)
            ref = _floatref(fref) if t in FLOATS else exact(iref)
            m.case(f"{op}_{t}", lambda m, op=op, t=t, ga=ga, gb=gb: m.node(
                op, [m.inp(t, shape, ga), m.inp(t, shape, gb)]), tol, ref)
            if op in ("Add", "Mul", "Max"):  # broadcast against a weight of the type
                w = np.asarray(ga(np.random.default_rng(5), (8,))).astype(NP[t])
                m.case(f"{op}_{t}_weight", lambda m, op=op, t=t, ga=ga, w=w: m.node(
                    op, [m.inp(t, shape, ga), m.init(w)]), tol,
                    lambda x, ref=ref, w=w: ref(x, w))
        # Clip (opset 13: bounds are inputs of the type), with and without bounds
        lo, hi = (-0.5, 0.7) if t in FLOATS else (-50, 70) if t in SIGNED else (10, 200)
        bounds = [np.array(lo, NP[t]), np.array(hi, NP[t])]
        gen = normal() if t in FLOATS else full(t) if t not in ("i64", "u64") else ints(-100, 300) if t == "i64" \
            else ints(0, 300)
        m.case(f"Clip_{t}", lambda m, t=t, gen=gen, bounds=bounds: m.node(
            "Clip", [m.inp(t, shape, gen), m.init(bounds[0]), m.init(bounds[1])]), tol,
            lambda x, b=bounds: np.clip(x, b[0], b[1]))
        m.case(f"Clip_{t}_open", lambda m, t=t, gen=gen: m.node("Clip", [m.inp(t, shape, gen)]), tol,
               lambda x: x.copy())
        if t in ("i8", "i16", "u8", "u16"):
            # one fused loop: C++ computes these types in int, each op must wrap as numpy's does
            m.case(f"chain_{t}", lambda m, t=t: m.node("Div", [m.node("Add", [m.inp(t, shape, full(t)), m.inp(
                t, shape, full(t))]), m.inp(t, shape, ints(1, 7))]), tol, _add_then_div)
    return m


ELEMENTWISE = elementwise_model()


@pytest.mark.parametrize("case", list(ELEMENTWISE.cases))
def test_elementwise(case: str) -> None:
    check_case(ELEMENTWISE, case)


ON_ORT = [c for c in ELEMENTWISE.cases if _ort_has(ELEMENTWISE, ELEMENTWISE.cases[c])]


def test_onnxruntime_runs_most_elementwise_cases() -> None:
    """The cross-check below is not vacuous: onnxruntime lacks a few (op, type) kernels only."""
    assert len(ON_ORT) > 0.8 * len(ELEMENTWISE.cases), sorted(set(ELEMENTWISE.cases) - set(ON_ORT))


@pytest.mark.parametrize("case", ON_ORT)
def test_elementwise_vs_onnxruntime(case: str) -> None:
    """The cases onnxruntime has a kernel for agree with it too (same tolerances)."""
    c = ELEMENTWISE.cases[case]
    sess = _ort_session(ELEMENTWISE.proto([c]))
    for batch, (got, _, _) in zip(BATCHES, run(ELEMENTWISE)[case]):
        feeds = ELEMENTWISE.feeds(batch)
        want = sess.run(None, {i.name: feeds[i.name] for i in c.inputs})
        for g, w in zip(got, want):
            assert_same(g, w, c.tol, f"{case} batch {batch} vs onnxruntime")


def _one_node(op: str, t: str) -> onnx.ModelProto:
    arity = 2 if op in BINARY_OPS else 1
    ins = [helper.make_tensor_value_info(f"in{k}", ONNX_TYPE[t], ["N", 4]) for k in range(arity)]
    node = helper.make_node(op, [i.name for i in ins], ["out"], name=f"n_{op}")
    g = helper.make_graph([node], "refused", ins, [helper.make_tensor_value_info("out", ONNX_TYPE[t], None)])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m


# f16 is accepted wherever f32 is (it computes through float; test_elementwise_ops.py)
REFUSED = [(op, t) for op, types in ELEMENTWISE_TYPES.items() for t in ALL_TYPES
           if t not in types and not (t == "f16" and "f32" in types)]


@pytest.mark.parametrize("op,t", REFUSED, ids=[f"{op}_{t}" for op, t in REFUSED])
def test_elementwise_refused(op: str, t: str) -> None:
    """An op on a type it is not defined on (bool; integers for the float functions) is refused
    at import."""
    from sofie.ir.registry import lookup_onnx
    name = lookup_onnx(op).name.replace(".", r"\.")
    with pytest.raises(sofie.SofieError, match=rf"{name} \(node 'n_{op}'\): .*element type {t} \(supported: "):
        sofie.compile(_one_node(op, t), name="refused", blas="none")


def test_elementwise_type_table() -> None:
    """The types sofie's table declares are the ones this test expects (ONNX's, less f16)."""
    from sofie.ir.dialects.graph.elementwise import BINARY, UNARY, VARIADIC
    declared = {s.onnx: set(s.types) for s in UNARY + BINARY + VARIADIC if s.onnx in ELEMENTWISE_TYPES}
    assert declared == {op: set(types) for op, types in ELEMENTWISE_TYPES.items()}


# ---- CASTS: every pair of element types, f16 through float, storage of every type ------------

def _range_of(t: str) -> tuple[float, float]:
    if t == "i1":
        return 0, 1
    if t == "f16":
        return -65504.0, 65504.0
    if t in FLOATS:
        return -1e30, 1e30
    info = np.iinfo(NP[t])
    return float(info.min), float(info.max)


def cast_source(src: str, dst: str) -> Gen:
    """Values of `src` whose Cast to `dst` ONNX defines: integers and bools anything (integers
    wrap), floats within the range of an integer destination; special values to floats/bool."""
    if src == "i1":
        return lambda rng, shape: rng.integers(0, 2, shape).astype(bool)
    if src not in FLOATS + ("f16",):
        return full(src)
    if dst in SIGNED + UNSIGNED:
        lo, hi = _range_of(dst)
        lo, hi = max(lo, _range_of(src)[0]) * 0.9, min(hi, _range_of(src)[1], 1e15) * 0.9
        if dst in UNSIGNED:
            lo = -0.9  # truncates to 0: defined

        def to_int(rng, shape):
            x = rng.uniform(lo, hi, shape)
            small_vals = rng.uniform(-3, 3, shape)  # fractions near zero: truncation toward zero
            return np.where(rng.random(shape) < 0.5, x, np.maximum(small_vals, lo))
        return to_int

    def floats(rng, shape):
        x = rng.standard_normal(shape) * 10.0 ** rng.integers(-9, 6, shape)
        if src == "f64":
            x = np.where(rng.random(shape) < 0.1, x * 1e300, x)  # beyond float: inf
        specials = np.array([0.0, -0.0, np.nan, np.inf, -np.inf, 65504.0, 65520.0, 1e-8, 6e-8, 1e-40])
        x.reshape(-1)[: specials.size] = specials[: x.size]
        return x
    return floats


def _float_to_half_numpy(src: str):
    return lambda x: x.astype(np.float16)  # one rounding from the source value


def cast_model() -> Model:
    m = Model("dtypes_casts", opset=19)
    shape = ("N", 16)
    for src in ALL_TYPES:
        for dst in ALL_TYPES:
            numpy = _float_to_half_numpy(src) if (src, dst) == ("f64", "f16") else None
            m.case(f"cast_{src}_to_{dst}", lambda m, src=src, dst=dst: m.node(
                "Cast", [m.inp(src, shape, cast_source(src, dst))], to=ONNX_TYPE[dst]), EXACT, numpy)
    # float16 models: half in and out, computing in float
    m.case("f16_sigmoid_f16", lambda m: m.node("Cast", [m.node("Sigmoid", [m.node(
        "Cast", [m.inp("f16", shape, normal())], to=TP.FLOAT)])], to=TP.FLOAT16), dict(rtol=1e-3, atol=0))
    # weights, Concat and Transpose of every type: the .dat and the data-movement kernels
    for t in ALL_TYPES:
        with np.errstate(over="ignore"):  # 65520 rounds to inf in f16: one of the special values, on purpose
            w = np.asarray(cast_source(t, t)(np.random.default_rng(3), (2, 16))).astype(NP[t])
        m.case(f"concat_weight_{t}", lambda m, t=t, w=w: m.node("Concat", [m.inp(t, (3, 16), cast_source(t, t)),
                                                                           m.init(w)], axis=0))
        m.case(f"concat_batch_{t}", lambda m, t=t: m.node("Concat", [m.inp(t, shape, cast_source(t, t)),
                                                                     m.inp(t, ("N", 4), cast_source(t, t))], axis=1))
        m.case(f"transpose_{t}", lambda m, t=t: m.node("Transpose", [m.inp(t, ("N", 3, 5), cast_source(t, t))],
                                                       perm=[0, 2, 1]))
    return m


CASTS = cast_model()


@pytest.mark.parametrize("case", list(CASTS.cases))
def test_casts(case: str) -> None:
    check_case(CASTS, case)


# ---- FLOAT64: the issue's model, and every float64 kernel ------------------------------------

def f64_model() -> Model:
    m = Model("dtypes_f64", opset=17)
    rng = np.random.default_rng(64)
    ref = dict(reference=True)  # no double kernel in onnxruntime: the ONNX reference evaluator
    x = ("N", 3, 9, 8)

    def w(*shape):
        return rng.standard_normal(shape)

    def inp(m, shape, gen=None):
        return m.inp("f64", shape, gen or normal(1.0))

    def gemm_hs_elu(m):  # the issue's model: Gemm, HardSigmoid, Elu (not fused: two readers)
        g = m.node("Gemm", [inp(m, ("N", 16)), m.init(w(16, 8)), m.init(w(8))])
        return [g, m.node("HardSigmoid", [g]), m.node("Elu", [g])]
    m.case("gemm_hardsigmoid_elu", gemm_hs_elu, F64_SUM, **ref)
    m.case("gemm_fused_elu", lambda m: m.node("Elu", [m.node(
        "Gemm", [inp(m, ("N", 16)), m.init(w(8, 16)), m.init(w(8))], transB=1)], alpha=0.5), F64_SUM, **ref)
    m.case("gemm_fused_hardsigmoid", lambda m: m.node("HardSigmoid", [m.node(
        "Gemm", [inp(m, ("N", 16)), m.init(w(16, 8))])], alpha=0.3, beta=0.4), F64_SUM, **ref)
    m.case("gemm_fused_relu", lambda m: m.node("Relu", [m.node(
        "Gemm", [inp(m, ("N", 16)), m.init(w(16, 8)), m.init(w(1, 8))])]), F64_SUM)
    m.case("gemm_alpha_beta_full_bias", lambda m: m.node(
        "Gemm", [inp(m, (4, 6)), m.init(w(5, 6)), m.init(w(4, 5))], transB=1, alpha=0.5, beta=-2.0), F64_SUM)
    m.case("gemm_transA_scalar_bias", lambda m: m.node(
        "Gemm", [inp(m, (6, 4)), m.init(w(6, 5)), m.init(w(1))], transA=1, beta=0.25), F64_SUM)
    m.case("gemm_two_inputs_large", lambda m: m.node("Gemm", [inp(m, (70, 90)), inp(m, (90, 40))]), F64_SUM)
    m.case("matmul_3d", lambda m: m.node("MatMul", [inp(m, ("N", 4, 6)), m.init(w(6, 5))]), F64_SUM)
    m.case("matmul_1d", lambda m: m.node("MatMul", [inp(m, (6,)), m.init(w(6, 5))]), F64_SUM)
    m.case("conv_relu", lambda m: m.node("Relu", [m.node(
        "Conv", [inp(m, x), m.init(w(4, 3, 3, 3)), m.init(w(4))], pads=[1, 1, 1, 1])]), F64_SUM, **ref)
    m.case("conv_stride_group", lambda m: m.node(
        "Conv", [inp(m, ("N", 4, 9, 8)), m.init(w(6, 2, 3, 2))], strides=[2, 1], group=2), F64_SUM, **ref)
    m.case("conv_1x1", lambda m: m.node("Conv", [inp(m, x), m.init(w(5, 3, 1, 1))]), F64_SUM, **ref)
    # 3x3 with 16 channels: Winograd in float32, im2col + dgemm in float64; residual and act fused
    m.case("conv_3x3_16ch_residual", lambda m: m.node("Relu", [m.node("Add", [m.node(
        "Conv", [inp(m, ("N", 16, 6, 6)), m.init(w(16, 16, 3, 3)), m.init(w(16))], pads=[1, 1, 1, 1]),
        inp(m, ("N", 16, 6, 6))])]), F64_SUM, **ref)
    m.case("conv_batchnorm_folded", lambda m: m.node("BatchNormalization", [
        m.node("Conv", [inp(m, x), m.init(w(4, 3, 3, 3))]), m.init(w(4)), m.init(w(4)), m.init(w(4)),
        m.init(np.abs(w(4)) + 0.5)]), F64_FOLDED, **ref)
    m.case("batchnorm", lambda m: m.node("BatchNormalization", [
        inp(m, x), m.init(w(3)), m.init(w(3)), m.init(w(3)), m.init(np.abs(w(3)) + 0.5)], epsilon=1e-3), F64_SUM)
    m.case("maxpool", lambda m: m.node("MaxPool", [inp(m, x)], kernel_shape=[3, 3], pads=[1, 1, 1, 1],
                                       strides=[2, 2]), EXACT)
    m.case("avgpool", lambda m: m.node("AveragePool", [inp(m, x)], kernel_shape=[3, 2], pads=[1, 0, 1, 1],
                                       count_include_pad=1), F64_SUM, **ref)
    m.case("global_avgpool", lambda m: m.node("GlobalAveragePool", [inp(m, x)]), F64_SUM, **ref)
    m.case("softmax_last", lambda m: m.node("Softmax", [inp(m, ("N", 10), normal())]), F64_SUM)
    m.case("softmax_axis1", lambda m: m.node("Softmax", [inp(m, ("N", 3, 4), normal())], axis=1), F64_SUM)
    m.case("concat", lambda m: m.node("Concat", [inp(m, ("N", 2)), inp(m, ("N", 3))], axis=1), EXACT)
    m.case("concat_weight", lambda m: m.node("Concat", [inp(m, (2, 3)), m.init(w(1, 3))], axis=0), EXACT)
    m.case("sigmoid_tanh", lambda m: [m.node("Sigmoid", [inp(m, ("N", 7), normal())]),
                                      m.node("Tanh", [inp(m, ("N", 7), normal())])], F64)
    return m


FLOAT64 = f64_model()


@pytest.mark.parametrize("blas", ["none", "openblas"])
@pytest.mark.parametrize("case", list(FLOAT64.cases))
def test_float64(case: str, blas: str) -> None:
    """Built with the built-in GEMM and with OpenBLAS (dgemm)."""
    check_case(FLOAT64, case, blas)


def _pruned(m: Model, case: Case, output: int) -> onnx.ModelProto:
    """The case's model reduced to the nodes one output needs."""
    out = case.outputs[output].name
    needed, nodes = {out}, []
    for n in reversed(case.nodes):
        if set(n.output) & needed:
            nodes.insert(0, n)
            needed |= set(n.input)
    sub = Case(case.name, nodes, [i for i in case.inputs if i.name in needed],
               [w for w in case.inits if w.name in needed], [case.outputs[output]])
    return m.proto([sub])


def test_float64_issue_model_gemm_vs_onnxruntime() -> None:
    """onnxruntime runs the Gemm of the issue's model (it has no double HardSigmoid or Elu,
    which the reference evaluator checks above): rtol 1e-12."""
    case = FLOAT64.cases["gemm_hardsigmoid_elu"]
    sess = _ort_session(_pruned(FLOAT64, case, 0))
    for batch, (got, _, _) in zip(BATCHES, run(FLOAT64)[case.name]):
        feeds = FLOAT64.feeds(batch)
        (want,) = sess.run(None, {i.name: feeds[i.name] for i in case.inputs})
        assert_same(got[0], want, F64_SUM, f"gemm batch {batch} vs onnxruntime")


# ---- INTEGER: the issue's int64 model, integer MatMul / Gemm ---------------------------------

def integer_model() -> Model:
    m = Model("dtypes_int", opset=17)
    rng = np.random.default_rng(8)
    ref = dict(reference=True)  # onnxruntime has Gemm in float only: the ONNX reference evaluator

    def mul_add_max(m):  # the issue's model: int64 Mul, Add, Max, beyond 32 bits
        x = m.inp("i64", ("N", 4, 5), ints(-2**40, 2**40))
        p = m.node("Mul", [x, m.init(rng.integers(-2**10, 2**10, (5,)))])
        s = m.node("Add", [p, m.inp("i64", ("N", 4, 5), ints(-2**50, 2**50))])
        return [p, s, m.node("Max", [s, m.init(rng.integers(-2**49, 2**49, (4, 1)))])]
    m.case("int64_mul_add_max", mul_add_max)
    for t in ("i32", "i64", "u32", "u64"):
        lo, hi = (-1000, 1000) if t[0] == "i" else (0, 1000)
        w = rng.integers(lo, hi, (6, 5), endpoint=True).astype(NP[t])
        m.case(f"matmul_{t}", lambda m, t=t, w=w, lo=lo, hi=hi: m.node(
            "MatMul", [m.inp(t, ("N", 3, 6), ints(lo, hi)), m.init(w)]))
        m.case(f"matmul_{t}_two_inputs", lambda m, t=t, lo=lo, hi=hi: m.node(
            "MatMul", [m.inp(t, (4, 7), ints(lo, hi)), m.inp(t, (7, 3), ints(lo, hi))]))
    m.case("matmul_i64_1d", lambda m: m.node("MatMul", [m.inp("i64", (6,), ints(-9, 9)),
                                                        m.init(rng.integers(-9, 9, (6, 5)))]))
    m.case("matmul_i64_1d_1d", lambda m: m.node("MatMul", [m.inp("i64", (6,), ints(-9, 9)),
                                                           m.inp("i64", (6,), ints(-9, 9))]))
    m.case("matmul_i64_2d_1d", lambda m: m.node("MatMul", [m.inp("i64", ("N", 6), ints(-9, 9)),
                                                           m.init(rng.integers(-9, 9, (6,)))]))
    # square, between two loops: writing the product over its dying A would corrupt the rows
    # still being read (a reduction must not run in place)
    m.case("matmul_i32_square", lambda m: m.node("Neg", [m.node("MatMul", [
        m.node("Neg", [m.inp("i32", (5, 5), ints(-9, 9))]), m.init(rng.integers(-9, 9, (5, 5)).astype(np.int32))])]))
    m.case("gemm_i32_alpha_beta", lambda m: m.node("Gemm", [
        m.inp("i32", (4, 6), ints(-50, 50)), m.init(rng.integers(-50, 50, (5, 6)).astype(np.int32)),
        m.init(rng.integers(-50, 50, (4, 5)).astype(np.int32))], transB=1, alpha=2.0, beta=-3.0), **ref)
    m.case("gemm_i64_row_bias_relu", lambda m: m.node("Relu", [m.node("Gemm", [
        m.inp("i64", ("N", 6), ints(-50, 50)), m.init(rng.integers(-50, 50, (6, 5))),
        m.init(rng.integers(-50, 50, (5,)))])]), **ref)
    m.case("gemm_u64_transA_clip", lambda m: m.node("Clip", [m.node("Gemm", [
        m.inp("u64", (6, 4), ints(0, 50)), m.init(rng.integers(0, 50, (6, 5)).astype(np.uint64))], transA=1),
        m.init(np.array(100, np.uint64)), m.init(np.array(9000, np.uint64))]), **ref)
    return m


INTEGER = integer_model()


@pytest.mark.parametrize("case", list(INTEGER.cases))
def test_integer(case: str) -> None:
    check_case(INTEGER, case)


# ---- kernels without an instance for a type are refused by lowering --------------------------

def _kernel_model(op: str, t: str, shapes: list, **attrs) -> onnx.ModelProto:
    ins = [helper.make_tensor_value_info(f"in{k}", ONNX_TYPE[t], list(s)) for k, s in enumerate(shapes)]
    node = helper.make_node(op, [i.name for i in ins], ["out"], name="c1", **attrs)
    g = helper.make_graph([node], "refused", ins, [helper.make_tensor_value_info("out", ONNX_TYPE[t], None)])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m


X4 = ("N", 3, 6, 6)
KERNEL_REFUSALS = {
    "conv_i32": (_kernel_model("Conv", "i32", [X4, (4, 3, 3, 3)]),
                 r"graph\.conv \(node 'c1'\): no kernel for element type i32 \(supported: f32, f64\)"),
    "maxpool_i32": (_kernel_model("MaxPool", "i32", [X4], kernel_shape=[2, 2]),
                    r"graph\.max_pool \(node 'c1'\): no kernel for element type i32 \(supported: f32, f64, i8, u8\)"),
    "avgpool_f16": (_kernel_model("AveragePool", "f16", [X4], kernel_shape=[2, 2]),
                    r"graph\.average_pool .*element type f16"),
    "global_avgpool_f16": (_kernel_model("GlobalAveragePool", "f16", [X4]),
                           r"graph\.global_average_pool .*element type f16"),
    # (Conv and Softmax on f16 compute in f32: the widen-f16 pass, test_f16_dense_ops_compute_in_f32)
    "batchnorm_f16": (_kernel_model("BatchNormalization", "f16", [X4, (3,), (3,), (3,), (3,)]),
                      r"graph\.batch_normalization .*element type f16"),
    "matmul_i8": (_kernel_model("MatMul", "i8", [("N", 4), (4, 3)]),
                  r"graph\.matmul \(node 'c1'\): no kernel for element type i8 "
                  r"\(supported: f32, f64, i32, i64, u32, u64\)"),
    # (MatMul on f16 computes in float: tests/e2e/test_narrow_types.py)
    "matmul_bool": (_kernel_model("MatMul", "i1", [("N", 4), (4, 3)]), r"graph\.matmul .*element type i1"),
    "gemm_bool": (_kernel_model("Gemm", "i1", [(2, 4), (4, 3)]), r"graph\.gemm .*element type i1"),
    "gemm_i32_fractional_alpha": (_kernel_model("Gemm", "i32", [(2, 4), (4, 3)], alpha=0.5),
                                  r"graph\.gemm \(node 'c1'\): alpha=0.5 is not an integer"),
}


@pytest.mark.parametrize("case", list(KERNEL_REFUSALS))
def test_kernel_refused(case: str) -> None:
    model, pattern = KERNEL_REFUSALS[case]
    for passes in ([], None):
        with pytest.raises(sofie.SofieError, match=pattern):
            sofie.compile(model, name="refused", blas="none", passes=passes)


def test_low_ir_with_an_unsupported_type_is_refused_by_the_verifier() -> None:
    """Low IR text reaches the backend only through the verifier, which holds the same
    declaration: a float-only kernel on i32 never becomes C++ that does not compile."""
    from sofie.ir.parser import parse
    from sofie.ir.verifier import verify
    text = """module @m {
  func @main(%x: tensor<2x3xi32>) -> (tensor<2x3xi32>) {
    %y = low.output {index = 0} : tensor<2x3xi32>
    low.softmax %x, %y {axis = 1} loc("s")
    return %y
  }
}"""
    with pytest.raises(sofie.SofieError, match=r"low\.softmax \(node 's'\): no kernel for element type i32"):
        verify(parse(text), "test")


# ---- the Python binding holds the typed pointers to their dtype ------------------------------

def test_binding_refuses_wrong_dtypes() -> None:
    run(INTEGER)  # the same build
    compiled = sofie.compile(INTEGER.proto(), name=INTEGER.name, blas="none")
    feeds = INTEGER.feeds(2)
    xs = [feeds[n] for n, _, _ in compiled.inputs]
    assert compiled.inputs[0][1] == "i64"
    with pytest.raises(sofie.SofieError, match=r"input '.*' must be int64, got int32"):
        compiled(xs[0].astype(np.int32), *xs[1:])
    # the C++ side checks too, whoever calls run(): dtype, layout and size
    outs = [np.empty(tuple(2 if isinstance(d, str) else d for d in shape), NP[dt])
            for _, dt, shape in compiled.outputs]
    session = compiled.session()
    with pytest.raises(ValueError, match=r"input 0 .* must be a C-contiguous int64 array"):
        session.run(2, [], [xs[0].astype(np.float64), *xs[1:]], outs)
    assert outs[1].shape == (2, 4, 5)
    strided = np.empty((2, 5, 4), outs[1].dtype).transpose(0, 2, 1)
    with pytest.raises(ValueError, match=r"output 1 must be a C-contiguous int64 array"):
        session.run(2, [], xs, [outs[0], strided, *outs[2:]])
    with pytest.raises(ValueError, match=r"input 0 .* must be"):
        session.run(3, [], xs, outs)  # batch 3 on arrays of 2 events
    session.run(2, [], xs, outs)
    for a, b in zip(outs, compiled(*xs)):
        np.testing.assert_array_equal(a, b)


def test_f16_dense_ops_compute_in_f32() -> None:
    """MatMul, Conv, Softmax and ReduceMean have no f16 kernel: `widen-f16` runs them in f32
    between casts. Compared with the same graph run by onnxruntime in float32 on the same f16
    inputs, rounded to f16 at the same points: they agree to 1 f16 ulp (rtol 1e-3, atol 1e-4)."""
    import onnxruntime as ort

    def graph(t: int) -> onnx.ModelProto:
        w = numpy_helper.from_array(np.random.default_rng(0).standard_normal((4, 3, 3, 3)).astype(np.float16), "w")
        nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1], name="conv"),
                 helper.make_node("Reshape", ["c", "shape"], ["r"]),
                 helper.make_node("MatMul", ["r", "m"], ["mm"], name="mm"),
                 helper.make_node("Softmax", ["mm"], ["y"], axis=-1, name="sm"),
                 helper.make_node("ReduceMean", ["mm", "axes"], ["z"], name="mean")]
        g = helper.make_graph(nodes, "f16", [helper.make_tensor_value_info("x", t, [2, 3, 5, 5]),
                                             helper.make_tensor_value_info("m", t, [25, 6])],
                              [helper.make_tensor_value_info(o, t, None) for o in ("y", "z")],
                              [w, numpy_helper.from_array(np.array([8, 25], np.int64), "shape"),
                               numpy_helper.from_array(np.array([1], np.int64), "axes")])
        return helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])

    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 5, 5)).astype(np.float16)
    m = (rng.standard_normal((25, 6)) * 0.1).astype(np.float16)
    model = sofie.compile(graph(TP.FLOAT16), name="f16_dense", blas="none")
    got = model(x, m)
    assert all(g.dtype == np.float16 for g in got)
    ref = graph(TP.FLOAT16)
    sess = ort.InferenceSession(_f32_with_f16_rounding(ref).SerializeToString(), providers=["CPUExecutionProvider"])
    want = sess.run(None, {"x": x.astype(np.float32), "m": m.astype(np.float32)})
    for g, w in zip(got, want):
        np.testing.assert_allclose(g.astype(np.float32), np.float16(w).astype(np.float32), rtol=1e-3, atol=1e-4)


def _f32_with_f16_rounding(m: onnx.ModelProto) -> onnx.ModelProto:
    """The f16 model run in f32, each op's result rounded to f16 and back (sofie's cast points)."""
    out = onnx.ModelProto()
    out.CopyFrom(m)
    g = out.graph
    for v in list(g.input) + list(g.output):
        v.type.tensor_type.elem_type = TP.FLOAT
    for t in g.initializer:
        if t.data_type == TP.FLOAT16:
            t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(t).astype(np.float32), t.name))
    nodes = []
    for n in g.node:
        nodes.append(n)
        if n.op_type != "Reshape":
            for k, o in enumerate(n.output):
                n.output[k] = o + "_wide"
                nodes += [helper.make_node("Cast", [o + "_wide"], [o + "_narrow"], to=TP.FLOAT16),
                          helper.make_node("Cast", [o + "_narrow"], [o], to=TP.FLOAT)]
    del g.node[:]
    g.node.extend(nodes)
    return out


def test_bit_cast_keeps_every_bit() -> None:
    """BitCast reinterprets bytes: f32 -> i32 -> f32 and u16 -> f16 round-trip exactly,
    NaN payloads and -0 included (compared bit for bit with numpy's view); a cast between
    types of different width is refused naming the node."""
    def model(pairs: list[tuple[int, int]]) -> onnx.ModelProto:
        nodes, ins, outs = [], [], []
        for k, (src, dst) in enumerate(pairs):
            nodes.append(helper.make_node("BitCast", [f"x{k}"], [f"y{k}"], to=dst, name=f"bitcast{k}"))
            ins.append(helper.make_tensor_value_info(f"x{k}", src, [6]))
            outs.append(helper.make_tensor_value_info(f"y{k}", dst, [6]))
        return helper.make_model(helper.make_graph(nodes, "bits", ins, outs),
                                 opset_imports=[helper.make_opsetid("", 26)])

    f = np.array([1.5, -0.0, np.inf, np.nan, 1e-42, -3.25], np.float32)
    f[3] = np.frombuffer(np.uint32(0x7FC01234).tobytes(), np.float32)[0]  # a NaN with a payload
    i = np.array([0, 1, -1, 0x7F800000, 0x00012345, -2**31], np.int32)
    h = np.array([0, 0x3C00, 0x7E01, 0x8000, 0xFBFF, 1], np.uint16)
    m = sofie.compile(model([(TP.FLOAT, TP.INT32), (TP.INT32, TP.FLOAT), (TP.UINT16, TP.FLOAT16)]),
                      name="bit_cast", blas="none")
    got = m(f, i, h)
    for g, want in zip(got, (f.view(np.int32), i.view(np.float32), h.view(np.float16))):
        assert g.dtype == want.dtype and g.tobytes() == want.tobytes()
    with pytest.raises(sofie.SofieError, match=r"bitcast0.*i32 and f64 differ in width \(32 and 64 bits\)"):
        sofie.compile(model([(TP.INT32, TP.DOUBLE)]), name="bit_cast_bad", blas="none")
