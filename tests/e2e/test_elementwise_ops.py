"""The elementwise families of issue 11 end to end: activations, the math library, comparisons
and logic, bitwise ops, Where, the variadic ops, casts and constants, against onnxruntime (the
ONNX reference evaluator where onnxruntime has no kernel for the type or opset).

One model per opset, compiled once (the `Model` harness of test_dtypes.py); each case is an
independent subgraph and a test of its own. Inputs are mostly fixed arrays of edge values
(NaN, +-inf, -0, halfway points, the integer limits) rather than random draws.

Tolerances: exact for integers and bools (and bit-exact floats where stated); float32 rtol 1e-5
/ atol 1e-6 and float64 rtol 1e-12 / atol 1e-15 against onnxruntime (libm / vmath vs MLAS /
Eigen, a few ulps); f16 cases rtol 1e-3 (one half ulp: both compute in float and round).
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto as TP
from onnx import helper, numpy_helper

import sofie
from tests.e2e.test_dtypes import EXACT, F32, F64, ONNX_TYPE, Model, _ort_has, check_case, exact

F16 = dict(rtol=1e-3, atol=1e-4)
NAN, INF = np.nan, np.inf

SPECIALS = np.array([-INF, -3.5, -2.5, -1.5, -1.0, -0.5, -0.0, 0.0, 0.25, 0.5, 1.5, 2.5, 7.0, INF, NAN])
RAMP = np.linspace(-4, 4, 24).reshape(2, 3, 4)
UNIT = np.linspace(-0.95, 0.95, 12).reshape(3, 4)  # asin, acos, atanh


def fixed(arr) -> callable:
    """An input that always holds `arr` (the harness draws from a generator)."""
    return lambda rng, shape: np.asarray(arr)


def _np_type(t: str) -> np.dtype:
    return np.dtype(helper.tensor_dtype_to_np_dtype(ONNX_TYPE[t]))


def one(m: Model, name: str, op: str, inputs: list[tuple[str, np.ndarray]], tol: dict | None = EXACT,
        reference: bool = False, numpy=None, **attrs) -> None:
    """A one-node case: `inputs` are (element type, value) runtime inputs; `numpy`, when
    given, is the oracle (onnxruntime and the reference evaluator compute some double
    activations through float)."""
    def build(m: Model) -> str:
        names = [m.inp(t, np.shape(v), fixed(np.asarray(v).astype(_np_type(t)))) if t else ""
                 for t, v in inputs]
        return m.node(op, names, **attrs)
    m.case(name, build, tol, reference=reference, numpy=numpy)
    if numpy is None and not reference and not _ort_has(m, m.cases[name]):  # e.g. double Gelu, bool Where
        m.cases[name].reference = True


def tol_of(t: str) -> dict | None:
    return {"f32": F32, "f64": F64, "f16": F16}.get(t, EXACT)


# ---- opset 20: activations, math, comparisons, logic, bitwise, Where, variadic ---------------

def _gelu(x):
    import math
    return 0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))


def _gelu_tanh(x):
    return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))


def activations(m: Model) -> None:
    for t in ("f32", "f64"):
        x = [(t, RAMP)]
        oracle = t == "f64" or None  # double: numpy in double, the engines round through float
        one(m, f"gelu_{t}", "Gelu", x, tol_of(t), numpy=oracle and _gelu)
        one(m, f"gelu_tanh_{t}", "Gelu", x, tol_of(t), numpy=oracle and _gelu_tanh, approximate="tanh")
        one(m, f"mish_{t}", "Mish", x, tol_of(t))
        one(m, f"softplus_large_{t}", "Softplus", [(t, np.array([-100.0, -20.0, 0.0, 20.0, 100.0, 1e30]))],
            tol_of(t))
        one(m, f"thresholded_relu_{t}", "ThresholdedRelu", x, tol_of(t), alpha=0.5)
    one(m, "celu", "Celu", [("f32", RAMP)], F32)
    one(m, "celu_alpha", "Celu", [("f32", RAMP)], F32, alpha=2.0)
    one(m, "shrink_default", "Shrink", [("f32", RAMP)], F32)
    one(m, "shrink_bias", "Shrink", [("f32", RAMP)], F32, lambd=1.5, bias=0.5)
    one(m, "softsign_specials", "Softsign", [("f32", SPECIALS[1:-2])], F32)
    one(m, "hard_swish_f64", "HardSwish", [("f64", RAMP)], F64, numpy=lambda x: x * np.clip(x / 6 + 0.5, 0, 1))
    for t, v in (("i8", [-128, -1, 0, 5, 127]), ("i32", [-2**31, -7, 0, 9, 2**31 - 1])):
        one(m, f"relu_{t}", "Relu", [(t, v)])
    one(m, "prelu_channel", "PRelu", [("f32", RAMP), ("f32", np.array([[0.1], [-2.0], [3.0]]))], F32)
    one(m, "prelu_scalar", "PRelu", [("f32", RAMP), ("f32", np.array(0.25))], F32)
    one(m, "prelu_i32", "PRelu", [("i32", [-6, -1, 0, 4]), ("i32", [3])])
    # Clip with bounds computed at run time: Min(Max(x, min), max)
    one(m, "clip_runtime_bounds", "Clip", [("f32", RAMP), ("f32", np.array(-1.0)), ("f32", np.array(2.0))], F32)
    one(m, "clip_runtime_min_i8", "Clip", [("i8", [-128, -3, 0, 3, 127]), ("i8", np.array(-2))])
    one(m, "clip_runtime_max_only", "Clip", [("f32", RAMP), ("", None), ("f32", np.array(0.5))], F32)


def math_library(m: Model) -> None:
    for op, x in (("Sin", RAMP), ("Cos", RAMP), ("Tan", RAMP / 3), ("Asin", UNIT), ("Acos", UNIT),
                  ("Atan", RAMP), ("Sinh", RAMP), ("Cosh", RAMP), ("Asinh", RAMP), ("Acosh", np.abs(RAMP) + 1),
                  ("Atanh", UNIT)):
        one(m, op.lower(), op, [("f32", x)], F32)
    one(m, "sin_f64", "Sin", [("f64", RAMP)], F64)
    one(m, "atanh_f64", "Atanh", [("f64", UNIT)], F64)
    one(m, "round_half_even", "Round", [("f32", SPECIALS)])  # exact, NaN and -0 kept
    one(m, "round_f64", "Round", [("f64", [0.5000000000000001, -2.5, 3.5, 1e300, -0.49999999999999994])])
    one(m, "sign_f32", "Sign", [("f32", SPECIALS[:-1])])
    one(m, "sign_i64", "Sign", [("i64", [-2**63, -5, 0, 3, 2**63 - 1])])
    one(m, "sign_u8", "Sign", [("u8", [0, 1, 255])])
    for t in ("f32", "f64"):
        one(m, f"isnan_{t}", "IsNaN", [(t, SPECIALS)])
        one(m, f"isinf_{t}", "IsInf", [(t, SPECIALS)])
    one(m, "isinf_positive", "IsInf", [("f32", SPECIALS)], detect_negative=0)
    one(m, "isinf_negative", "IsInf", [("f32", SPECIALS)], detect_positive=0)
    one(m, "isinf_neither", "IsInf", [("f32", SPECIALS)], detect_positive=0, detect_negative=0)
    for op in ("Reciprocal", "Floor", "Ceil", "Exp", "Log", "Sqrt", "Abs", "Neg"):
        one(m, f"{op.lower()}_specials", op, [("f32", SPECIALS)], F32)
    one(m, "abs_i8_wraps", "Abs", [("i8", [-128, -1, 0, 127])])
    one(m, "neg_i32_wraps", "Neg", [("i32", [-2**31, -1, 0, 2**31 - 1])])
    # Pow with mixed element types: the result has the base's
    base, exp_f, exp_i = np.array([[1.0, 2.0, -3.0, 0.5]]), np.array([[2.0], [0.5], [3.0]]), np.array([[0], [2], [3]])
    for tb, te, e in (("f32", "i32", exp_i), ("f32", "i64", exp_i), ("f64", "f32", exp_f), ("f32", "u64", exp_i)):
        one(m, f"pow_{tb}_{te}", "Pow", [(tb, base), (te, e)], tol_of(tb), reference=te == "u64")
    # computed in double and truncated (no negative base: a fractional power of it is NaN)
    one(m, "pow_i32_f32", "Pow", [("i32", [[1, 2, 4, 9]]), ("f32", [[0.5], [3.0]])])
    one(m, "pow_i64_i32", "Pow", [("i64", [1, 2, 3, -2]), ("i32", [5, 3, 2, 3])], reference=True)
    # exact: 3**39 needs 62 bits (onnxruntime computes through double and is off by 11)
    one(m, "pow_i64_i64", "Pow", [("i64", [[1, 2, 3, -2]]), ("i64", [[0], [7], [39]])],
        numpy=exact(lambda a, b: a ** b))
    # Mod: fmod=0 takes the divisor's sign (integers), fmod=1 the dividend's (C's % and fmod)
    a, b = np.array([-7, -4, -1, 0, 1, 4, 7, 9]), np.array([[3], [-3], [5]])
    for t in ("i8", "i32", "i64"):
        one(m, f"mod_{t}", "Mod", [(t, a), (t, b)])
        one(m, f"mod_fmod_{t}", "Mod", [(t, a), (t, b)], fmod=1)
    one(m, "mod_u8", "Mod", [("u8", [0, 7, 200, 255]), ("u8", [3, 5, 7, 16])])
    # uint64 arrays: a plain list holding 2**64 - 1 is float64, and its cast to u64 gave 0
    one(m, "mod_u64_fmod", "Mod", [("u64", np.array([0, 7, 200, 2**64 - 1], np.uint64)),
                                   ("u64", np.array([3, 5, 7, 16], np.uint64))], fmod=1)
    for t in ("f32", "f64"):
        one(m, f"mod_fmod_{t}", "Mod", [(t, [-7.5, -4.0, -0.5, 0.0, 1.25, 7.5]), (t, [[2.0], [-3.0]])],
            tol_of(t), fmod=1)


def comparisons_and_logic(m: Model) -> None:
    nans = np.array([NAN, 1.0, -0.0, INF, 2.0])
    other = np.array([[NAN], [1.0], [0.0]])
    for op in ("Equal", "Less", "LessOrEqual", "Greater", "GreaterOrEqual"):
        one(m, f"{op.lower()}_f32_nan", op, [("f32", nans), ("f32", other)])
        one(m, f"{op.lower()}_i64", op, [("i64", [-2**63, 0, 5]), ("i64", [[5], [-2**63]])])
        one(m, f"{op.lower()}_u8", op, [("u8", [0, 200, 255]), ("u8", [200])])
    one(m, "greater_or_equal_f64", "GreaterOrEqual", [("f64", RAMP), ("f64", np.array([0.0, 1.0, -1.0, 2.0]))])
    one(m, "equal_bool", "Equal", [("i1", [True, False, True]), ("i1", [[True], [False]])])
    tf = np.array([[True, False, True, False]])
    ft = np.array([[True], [False]])
    for op in ("And", "Or", "Xor"):
        one(m, f"{op.lower()}_broadcast", op, [("i1", tf), ("i1", ft)])
    one(m, "not", "Not", [("i1", tf)])
    for t, v, w in (("i32", [-2**31, -1, 0, 12345], [[-1], [0x0F0F]]), ("u8", [0, 1, 170, 255], [[85], [15]]),
                    ("i64", [-2**63, -1, 7, 2**62], [[3], [-8]])):
        for op in ("BitwiseAnd", "BitwiseOr", "BitwiseXor"):
            one(m, f"{op.lower()}_{t}", op, [(t, v), (t, w)])
        one(m, f"bitwisenot_{t}", "BitwiseNot", [(t, v)])
    one(m, "bitwisenot_u16", "BitwiseNot", [("u16", [0, 1, 65535])])
    # signed BitShift (opset 28, no onnxruntime kernel): Python ints as the oracle
    for t in ("i8", "i64"):
        bits = np.dtype(_np_type(t)).itemsize * 8
        v, by = [-128, -1, 5, -64, 127, -7, -3], [1, 7, bits - 1, bits, -1, 2, -2]
        one(m, f"bitshift_left_{t}", "BitShift", [(t, v), (t, by)], direction="LEFT",
            numpy=exact(lambda a, b, bits=bits: a << b if 0 <= b < bits else 0))
        one(m, f"bitshift_right_{t}", "BitShift", [(t, v), (t, by)], direction="RIGHT",
            numpy=exact(lambda a, b, bits=bits: a >> b if 0 <= b < bits else -1 if a < 0 else 0))
    for t in ("u8", "u16", "u32", "u64"):
        bits = np.dtype(_np_type(t)).itemsize * 8
        v = np.array([1, 3, 2 ** bits - 1, 2 ** (bits - 1)], dtype=object)
        for direction in ("LEFT", "RIGHT"):
            one(m, f"bitshift_{direction.lower()}_{t}", "BitShift",
                [(t, v.astype(_np_type(t))), (t, [0, 1, 3, bits - 1])], direction=direction)
    one(m, "where_broadcast3", "Where", [("i1", [[True], [False], [True]]), ("f32", RAMP[0]),
                                         ("f32", np.array([-1.0]))], F32)
    one(m, "where_i64", "Where", [("i1", [True, False, True]), ("i64", [1, 2, 3]), ("i64", [[-2**63], [7]])])
    one(m, "where_bool", "Where", [("i1", [True, False]), ("i1", [True, True]), ("i1", [[False], [False]])])


def variadic(m: Model) -> None:
    three = [("f32", RAMP), ("f32", np.array([[1.0], [-1.0], [0.0]])), ("f32", np.array([0.5, NAN, -2.0, 3.0]))]
    for op in ("Max", "Min", "Sum", "Mean"):
        one(m, f"{op.lower()}_three", op, three[:2] + [("f32", np.array([0.5, 0.0, -2.0, 3.0]))], F32)
        one(m, f"{op.lower()}_one", op, [("f32", RAMP)], F32)
    one(m, "mean_f64_two", "Mean", [("f64", RAMP), ("f64", np.array(1.0))], F64)
    for op in ("Max", "Min"):
        one(m, f"{op.lower()}_u8_four", op, [("u8", [0, 9, 255]), ("u8", [3]), ("u8", [[200], [1]]), ("u8", [5, 5, 5])])
        one(m, f"{op.lower()}_i64", op, [("i64", [-2**63, 0, 2**63 - 1]), ("i64", [1, 1, 1])])
    one(m, "sum_f64_four", "Sum", [("f64", [1, 2, 3]), ("f64", [10]), ("f64", [[100], [1000]]), ("f64", [-1, -2, -3])],
        F64)


def casts_and_constants(m: Model) -> None:
    one(m, "castlike_f32_to_i32", "CastLike", [("f32", [-2.7, -0.5, 0.0, 3.9]), ("i32", [0])])
    one(m, "castlike_i64_to_f64", "CastLike", [("i64", [-2**62, 5]), ("f64", [0.0])])
    one(m, "castlike_f32_to_bool", "CastLike", [("f32", SPECIALS), ("i1", [True])])
    one(m, "cast_f32_to_f16", "Cast", [("f32", SPECIALS)], to=TP.FLOAT16)
    for key, value in (("value_int", 7), ("value_ints", [1, -2, 3]), ("value_float", 2.5),
                       ("value_floats", [0.5, -1.0]), ("value", numpy_helper.from_array(np.array([[3, 4]], np.int32)))):
        m.case(f"constant_{key}", lambda m, key=key, value=value: m.node(
            "Add", [m.node("Constant", [], **{key: value}), m.node("Constant", [], **{key: value})]))
    m.case("constant_of_shape_i64", lambda m: m.node("ConstantOfShape", [m.init(np.array([2, 3], np.int64))],
                                                     value=numpy_helper.from_array(np.array([-5], np.int64))))
    m.case("constant_of_shape_bool", lambda m: m.node("ConstantOfShape", [m.init(np.array([4], np.int64))],
                                                      value=numpy_helper.from_array(np.array([True]))))
    ten = RAMP.reshape(-1)[:10].reshape(2, 5)
    m.case("dropout_mask", lambda m: list(_dropout(m, m.inp("f32", (2, 5), fixed(ten)))), F32)


def _dropout(m: Model, x: str) -> tuple[str, str]:
    out, mask = m._fresh("dropout"), m._fresh("mask")
    m.cur.nodes.append(helper.make_node("Dropout", [x], [out, mask], name=m._fresh("Dropout")))
    return out, mask


def f16_storage(m: Model) -> None:
    """f16 computes through float: read as f32, a float result rounded back to f16."""
    h = [("f16", SPECIALS[1:-2])]
    one(m, "sigmoid_f16", "Sigmoid", h, F16)
    one(m, "isnan_f16", "IsNaN", [("f16", SPECIALS)])
    one(m, "add_f16", "Add", h + [("f16", [0.5])], F16)
    one(m, "where_f16", "Where", [("i1", [True, False])] + [("f16", [1.5, 2.5]), ("f16", [-1.0, -2.0])])


def model20() -> Model:
    m = Model("elementwise20", opset=20)
    for part in (activations, math_library, comparisons_and_logic, variadic, casts_and_constants, f16_storage):
        part(m)
    return m


def model_legacy() -> Model:
    """Attribute forms of older opsets: Clip 6 (min/max attributes), Swish (opset 24)."""
    m = Model("elementwise9", opset=9)
    one(m, "clip6_attrs", "Clip", [("f32", RAMP)], F32, min=-1.0, max=0.5)
    one(m, "clip6_min_only", "Clip", [("f32", RAMP)], F32, min=0.0)
    one(m, "dropout9_ratio", "Dropout", [("f32", RAMP)], F32, ratio=0.3)
    return m


# activations fused into a Gemm / Conv epilogue: (ONNX op, attributes, graph op it must not leave)
FUSED = {
    "gelu": ("Gelu", {}, "graph.gelu"),
    "gelu_tanh": ("Gelu", {"approximate": "tanh"}, "graph.gelu"),
    "mish": ("Mish", {}, "graph.mish"),
    "celu": ("Celu", {"alpha": 0.7}, "graph.celu"),
    "shrink": ("Shrink", {"lambd": 0.3, "bias": 0.1}, "graph.shrink"),
    "thresholded_relu": ("ThresholdedRelu", {"alpha": 0.2}, "graph.thresholded_relu"),
    "softplus": ("Softplus", {}, "graph.softplus"),
    "swish": ("Swish", {"alpha": 0.7}, "graph.swish"),
    "sin": ("Sin", {}, "graph.sin"),
}


def fused(m: Model) -> None:
    rng = np.random.default_rng(11)
    w = (rng.standard_normal((5, 8)) * 0.8).astype(np.float32)
    b = rng.standard_normal(5).astype(np.float32)
    k = (rng.standard_normal((4, 3, 3, 3)) * 0.5).astype(np.float32)
    for name, (op, attrs, _) in FUSED.items():
        m.case(f"gemm_{name}", lambda m, op=op, attrs=attrs: m.node(op, [m.node(
            "Gemm", [m.inp("f32", ("N", 8), lambda rng, s: rng.standard_normal(s) * 2), m.init(w), m.init(b)],
            transB=1)], **attrs), dict(rtol=1e-4, atol=1e-5), reference=True)
    m.case("conv_mish", lambda m: m.node("Mish", [m.node("Conv", [
        m.inp("f32", ("N", 3, 6, 5), lambda rng, s: rng.standard_normal(s) * 2), m.init(k)], pads=[1, 1, 1, 1])]),
        dict(rtol=1e-4, atol=1e-5), reference=True)


def model24() -> Model:
    """Swish (opset 24), and the fused epilogues (onnxruntime 1.32 stops below opset 24: the
    ONNX reference evaluator is the oracle here)."""
    m = Model("elementwise24", opset=24)
    one(m, "swish", "Swish", [("f32", RAMP)], F32, reference=True)
    one(m, "swish_alpha", "Swish", [("f32", RAMP)], F32, reference=True, alpha=0.5)
    one(m, "mod_fmod_f32_24", "Mod", [("f32", [-7.5, 7.5]), ("f32", [2.0, -2.0])], F32, fmod=1)
    fused(m)
    return m


MODELS = {m.name: m for m in (model20(), model_legacy(), model24())}
CASES = [(name, c) for name, m in MODELS.items() for c in m.cases]


@pytest.mark.parametrize("model,case", CASES, ids=[f"{m}-{c}" for m, c in CASES])
def test_elementwise_op(model: str, case: str) -> None:
    check_case(MODELS[model], case)


def test_activations_fuse_into_epilogues() -> None:
    """The fused cases above leave no standalone activation (but the two standalone Swish)."""
    m = MODELS["elementwise24"]
    ops = sofie.compile(m.proto(), name=m.name, blas="none").stats["ops"]
    assert ops.get("graph.gemm") == len(FUSED) and ops.get("graph.conv") == 1, ops
    left = {op: ops.get(op, 0) for _, _, op in FUSED.values() if ops.get(op, 0)}
    assert left == {"graph.swish": 2}, ops


# ---- refused clearly: the node, the op and why -------------------------------------------------

def _node_model(op: str, ins: list[tuple[str, tuple]], opset: int = 20, outs: int = 1, **attrs) -> onnx.ModelProto:
    vis = [helper.make_tensor_value_info(f"in{k}", ONNX_TYPE[t], list(s)) for k, (t, s) in enumerate(ins)]
    names = [f"out{k}" for k in range(outs)]
    node = helper.make_node(op, [v.name for v in vis], names, name="the_node", **attrs)
    g = helper.make_graph([node], "refused", vis, [onnx.ValueInfoProto(name=n) for n in names])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    return m


def _sparse_constant() -> onnx.ModelProto:
    sparse = helper.make_sparse_tensor(numpy_helper.from_array(np.array([1.0], np.float32), "v"),
                                       numpy_helper.from_array(np.array([0], np.int64), "i"), [3])
    node = helper.make_node("Constant", [], ["out0"], name="the_node", sparse_value=sparse)
    g = helper.make_graph([node], "refused", [], [onnx.ValueInfoProto(name="out0")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 20)])
    m.ir_version = 8
    return m


REFUSED = {
    "cast_to_string": (_node_model("Cast", [("f32", (2,))], to=TP.STRING), r"Cast to STRING is not supported"),
    "cast_to_float6": (_node_model("Cast", [("f32", (2,))], opset=26, to=TP.FLOAT6E2M3),
                       r"Cast to FLOAT6E2M3 is not supported"),
    "constant_sparse": (_sparse_constant(), r"sparse Constant \(sparse_value\) is not supported"),
    "gelu_bad_approximate": (_node_model("Gelu", [("f32", (2,))], approximate="erf"),
                             r"Gelu.*approximate='erf' is not supported \(expected one of 'none', 'tanh'\)"),
    "mod_types_differ": (_node_model("Mod", [("i32", (2,)), ("i64", (2,))]), r"operand types differ \(i32 vs i64\)"),
    "where_condition_not_bool": (_node_model("Where", [("f32", (2,)), ("f32", (2,)), ("f32", (2,))]),
                                 r"the condition is f32, expected bool"),
    "and_on_ints": (_node_model("And", [("i32", (2,)), ("i32", (2,))]), r"And is not defined on element type i32"),
    "bitshift_float": (_node_model("BitShift", [("f32", (2,)), ("f32", (2,))], direction="LEFT"),
                       r"BitShift is not defined on element type f32"),
    "bitshift_bad_direction": (_node_model("BitShift", [("u8", (2,)), ("u8", (2,))], direction="UP"),
                               r"direction='UP' is not supported \(expected one of 'LEFT', 'RIGHT'\)"),
    "sin_on_ints": (_node_model("Sin", [("i32", (2,))]), r"Sin is not defined on element type i32"),
    "dropout_training_at_run_time": (_node_model("Dropout", [("f32", (2,)), ("f32", ()), ("i1", ())]),
                                     r"training_mode is computed at run time"),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_refused_with_clear_error(case: str) -> None:
    model, pattern = REFUSED[case]
    with pytest.raises(sofie.SofieError, match=pattern) as e:
        sofie.compile(model, name="refused", blas="none")
    assert "the_node" in str(e.value), str(e.value)
