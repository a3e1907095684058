"""ONNX frontend: opset range, external data (and its path checks), unsupported models, Constant
variants, and the text round trip of every imported (and lowered) module.

Numbers are checked with sofie's numpy interpreter (the imported graph's semantics) against
onnxruntime, at rtol 1e-5 / atol 1e-6 (float32, a few ulps); one test also compiles to C++.
"""

from __future__ import annotations

import os

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import sofie
from sofie.frontends.onnx import MAX_OPSET, MIN_OPSET, load_onnx
from sofie.ir.interpret import run_function
from sofie.ir.parser import parse
from sofie.ir.printer import print_module
from sofie.pipeline import GRAPH_PIPELINE, run_pipeline
from tests.e2e.test_ops import get_suite

ort = pytest.importorskip("onnxruntime")

RTOL, ATOL = 1e-5, 1e-6
RNG = np.random.default_rng(0)
W = RNG.standard_normal((8, 5)).astype(np.float32)
B = RNG.standard_normal(5).astype(np.float32)


def tiny(opset: int, ir_version: int | None = None) -> onnx.ModelProto:
    """x[N, 8] -> Gemm -> Relu -> Softmax (axis 1, valid in every opset)."""
    nodes = [helper.make_node("Gemm", ["x", "W", "B"], ["h"], name="fc"),
             helper.make_node("Relu", ["h"], ["r"], name="relu"),
             helper.make_node("Softmax", ["r"], ["y"], name="softmax", axis=1)]
    g = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 8])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 5])],
                          [numpy_helper.from_array(W, "W"), numpy_helper.from_array(B, "B")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = ir_version or min(m.ir_version, 8 if opset <= 17 else m.ir_version)
    return m


def ort_session(model: onnx.ModelProto | str):
    data = model if isinstance(model, str) else model.SerializeToString()
    return ort.InferenceSession(data, providers=["CPUExecutionProvider"])


def check_matches(module, ref_model, feeds: dict[str, np.ndarray], *, reference_evaluator: bool = False) -> None:
    """sofie's imported graph against onnxruntime (or, for opsets onnxruntime does not load
    yet, onnx's reference evaluator)."""
    if reference_evaluator:
        from onnx.reference import ReferenceEvaluator
        ref = ReferenceEvaluator(ref_model).run(None, feeds)
    else:
        ref = ort_session(ref_model).run(None, feeds)
    got = run_function(module, [feeds[a.name] for a in module.main.args])
    assert len(got) == len(ref)
    for g, r in zip(got, ref):
        assert g.shape == r.shape
        np.testing.assert_allclose(g, r, rtol=RTOL, atol=ATOL)


def check_round_trip(module) -> None:
    """print(parse(print(m))) == print(m), for the graph module and for its lowered form."""
    text = print_module(module)
    assert print_module(parse(text)) == text
    low_text = print_module(run_pipeline(module, ["lower", "plan-memory"])[0])
    assert print_module(parse(low_text)) == low_text


def x_feed(batch: int = 3, width: int = 8) -> dict[str, np.ndarray]:
    return {"x": np.random.default_rng(batch).standard_normal((batch, width)).astype(np.float32)}


# ---- opsets ---------------------------------------------------------------------------------

@pytest.mark.parametrize("opset", sorted({7, 9, 11, 13, 17, MAX_OPSET}))
def test_opset_imports_and_matches(opset: int) -> None:
    model = tiny(opset)
    try:
        ort_session(model)
        newer_than_ort = False
    except Exception:  # onnxruntime lags behind onnx's newest opset: onnx's reference then
        newer_than_ort = True
    m = load_onnx(model)
    check_matches(m, model, x_feed(), reference_evaluator=newer_than_ort)
    check_round_trip(m)


def test_opset_range_is_7_to_current() -> None:
    assert MIN_OPSET == 7 and MAX_OPSET == onnx.defs.onnx_opset_version()


@pytest.mark.parametrize("opset", [6, 1, MAX_OPSET + 1])
def test_opset_outside_range_refused(opset: int) -> None:
    """Gemm (and Relu before opset 6) were defined differently before opset 7: the error names them."""
    older = {6: "Gemm", 1: "Gemm, Relu"}
    changed = rf" \(ops defined differently before opset 7: {older[opset]}\)" if opset < MIN_OPSET else ""
    with pytest.raises(sofie.SofieError, match=rf"opset {opset} is outside the supported range "
                                                rf"{MIN_OPSET}\.\.{MAX_OPSET}{changed}"):
        load_onnx(tiny(opset, ir_version=8))


def test_old_opset_whose_ops_have_not_changed_imports() -> None:
    """A model at opset 1 that uses only ops defined as they are at opset 7 (Not, Identity)
    imports as opset 7; an op that changed (Add, which had `broadcast`) is named instead."""
    def model(op: str, elem: int) -> onnx.ModelProto:
        g = helper.make_graph([helper.make_node(op, ["x"] * (2 if op == "Add" else 1), ["y"]),
                               helper.make_node("Identity", ["y"], ["z"])], "old",
                              [helper.make_tensor_value_info("x", elem, [2, 3])],
                              [helper.make_tensor_value_info("z", elem, [2, 3])])
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 1)])
        m.ir_version = 3
        return m
    compiled = sofie.compile(model("Not", TensorProto.BOOL), name="not_opset1", blas="none")
    x = np.array([[True, False, True], [False, False, True]])
    np.testing.assert_array_equal(compiled(x)[0], ~x)
    with pytest.raises(sofie.SofieError, match=r"opset 1 is outside .* before opset 7: Add\)"):
        load_onnx(model("Add", TensorProto.FLOAT))


def test_no_default_opset_refused() -> None:
    m = tiny(17)
    del m.opset_import[:]
    m.opset_import.append(helper.make_opsetid("com.example", 1))
    with pytest.raises(sofie.SofieError, match="imports no default-domain opset"):
        load_onnx(m)


# ---- external data --------------------------------------------------------------------------

def save_external(folder, name: str = "model.onnx") -> str:
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, name)
    onnx.save_model(tiny(17), path, save_as_external_data=True, all_tensors_to_one_file=True,
                    location="w.bin", size_threshold=0)
    return path


def relocate(path: str, location: str) -> None:
    """Points every external tensor at `location`, writing the proto as is (no re-externalizing)."""
    m = onnx.load_model(path, load_external_data=False)
    for t in m.graph.initializer:
        for e in t.external_data:
            if e.key == "location":
                e.value = location
    with open(path, "wb") as f:
        f.write(m.SerializeToString())


def test_external_data_loads_and_matches(tmp_path) -> None:
    path = save_external(tmp_path / "m")
    proto = onnx.load_model(path, load_external_data=False)
    assert all(t.data_location == TensorProto.EXTERNAL for t in proto.graph.initializer)
    m = load_onnx(path)
    np.testing.assert_array_equal(m.weights["W"].data, W)
    check_matches(m, path, x_feed())
    check_round_trip(m)


@pytest.mark.parametrize("dtype", ["int4", "uint2", "float4_e2m1fn", "float8_e5m2", "bfloat16"])
def test_external_narrow_data_is_unpacked(tmp_path, dtype: str) -> None:
    """4- and 2-bit initializers are packed in the external file (two or four per byte, an odd
    count padded): they load one element per byte, as onnx's own reader gives them."""
    import ml_dtypes
    dt = np.dtype(getattr(ml_dtypes, dtype))
    values = np.array([[1, -2, 0], [3, -1, 1], [0, 1, -2]], np.float32)  # 9 elements: an odd count
    data = ((values + 2) % 4 if dtype == "uint2" else values).astype(dt)  # uint2 holds 0..3
    g = helper.make_graph([helper.make_node("Cast", ["w"], ["y"], to=TensorProto.FLOAT)], "g", [],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3, 3])],
                          [onnx.numpy_helper.from_array(data, "w")])
    path = str(tmp_path / "narrow.onnx")
    onnx.save_model(helper.make_model(g, opset_imports=[helper.make_opsetid("", 21)]), path,
                    save_as_external_data=True, location="w.bin", size_threshold=0)
    assert onnx.load_model(path, load_external_data=False).graph.initializer[0].data_location == TensorProto.EXTERNAL
    got = load_onnx(path).weights["w"].data
    assert got.dtype == dt
    assert got.tobytes() == data.tobytes()
    np.testing.assert_array_equal(got, onnx.numpy_helper.to_array(onnx.load_model(path).graph.initializer[0]))


def test_external_data_in_subfolder_loads(tmp_path) -> None:
    path = save_external(tmp_path / "m")
    os.makedirs(tmp_path / "m" / "data")
    os.replace(tmp_path / "m" / "w.bin", tmp_path / "m" / "data" / "w.bin")
    relocate(path, "data/w.bin")
    np.testing.assert_array_equal(load_onnx(path).weights["B"].data, B)


def test_external_data_absolute_path_refused(tmp_path) -> None:
    path = save_external(tmp_path / "m")
    target = str(tmp_path / "m" / "w.bin")  # exists, but absolute paths are refused anyway
    relocate(path, target)
    with pytest.raises(sofie.SofieError, match=r"external data path '.*w\.bin' of tensor '\w+' "
                                               r"escapes the model's folder; refused"):
        load_onnx(path)


def test_external_data_dotdot_refused(tmp_path) -> None:
    path = save_external(tmp_path / "m")
    os.replace(tmp_path / "m" / "w.bin", tmp_path / "w.bin")  # the file exists outside the folder
    relocate(path, "../w.bin")
    with pytest.raises(sofie.SofieError, match=r"'\.\./w\.bin' .* escapes the model's folder; refused"):
        load_onnx(path)


def test_external_data_dotdot_inside_folder_allowed(tmp_path) -> None:
    path = save_external(tmp_path / "m")
    os.makedirs(tmp_path / "m" / "sub")
    relocate(path, "sub/../w.bin")
    np.testing.assert_array_equal(load_onnx(path).weights["W"].data, W)


def test_external_data_symlink_escape_refused(tmp_path) -> None:
    path = save_external(tmp_path / "m")
    os.replace(tmp_path / "m" / "w.bin", tmp_path / "outside.bin")
    os.symlink(tmp_path / "outside.bin", tmp_path / "m" / "w.bin")
    with pytest.raises(sofie.SofieError, match="escapes the model's folder; refused"):
        load_onnx(path)


def test_external_data_missing_file(tmp_path) -> None:
    path = save_external(tmp_path / "m")
    os.remove(tmp_path / "m" / "w.bin")
    with pytest.raises(sofie.SofieError, match=r"external data file 'w\.bin' of tensor '\w+' is missing"):
        load_onnx(path)


def test_external_data_truncated_file(tmp_path) -> None:
    path = save_external(tmp_path / "m")
    data = tmp_path / "m" / "w.bin"
    data.write_bytes(data.read_bytes()[:50])
    with pytest.raises(sofie.SofieError, match=r"external data file 'w\.bin' is truncated \(tensor '\w+' "
                                               r"needs bytes \d+\.\.\d+\)"):
        load_onnx(path)


def test_external_data_needs_a_file(tmp_path) -> None:
    path = save_external(tmp_path / "m")
    with pytest.raises(sofie.SofieError, match="load the model from its file"):
        load_onnx(onnx.load_model(path, load_external_data=False))


@pytest.mark.slow
def test_external_data_compiles(tmp_path) -> None:
    path = save_external(tmp_path / "m")
    feeds = x_feed(2)
    (y,) = sofie.compile(path, blas="none")(feeds["x"])
    np.testing.assert_allclose(y, ort_session(path).run(None, feeds)[0], rtol=1e-4, atol=1e-5)


def test_missing_and_damaged_model_file(tmp_path) -> None:
    with pytest.raises(sofie.SofieError, match="no such file"):
        load_onnx(str(tmp_path / "nope.onnx"))
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(tiny(17).SerializeToString()[:40])
    with pytest.raises(sofie.SofieError, match="not a readable ONNX model"):
        load_onnx(str(bad))


# ---- unsupported models ---------------------------------------------------------------------

def one_node_model(node: onnx.NodeProto, inputs, opset: int = 17, extra_opsets=()) -> onnx.ModelProto:
    g = helper.make_graph([node], "g", inputs,
                          [helper.make_tensor_value_info(node.output[0], TensorProto.FLOAT, None)])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset), *extra_opsets])
    m.ir_version = 8
    return m


def test_unsupported_op_named_with_node_opset_and_supported_list() -> None:
    node = helper.make_node("StringNormalizer", ["x"], ["y"], name="my_normalizer")
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 2, 2])
    with pytest.raises(sofie.SofieError) as e:
        load_onnx(one_node_model(node, [x], opset=16))
    msg = str(e.value)
    for part in ("node 'my_normalizer'", "StringNormalizer", "opset 16", "unsupported op 'StringNormalizer'",
                 "Supported ops:", "Conv", "Gemm", "Constant"):
        assert part in msg, msg


def test_unsupported_op_without_node_name_gets_a_location() -> None:
    node = helper.make_node("NonMaxSuppression", ["x", "k"], ["y"])
    g = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.INT64, None)],
                          [numpy_helper.from_array(np.ones((1, 1, 2), np.float32), "k")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    with pytest.raises(sofie.SofieError, match=r"node 'NonMaxSuppression_0' \(NonMaxSuppression, opset 17\): "
                                               r"unsupported op"):
        load_onnx(m)


def test_custom_domain_refused() -> None:
    node = helper.make_node("Relu", ["x"], ["y"], name="custom_relu", domain="com.example")
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])
    m = one_node_model(node, [x], extra_opsets=[helper.make_opsetid("com.example", 1)])
    with pytest.raises(sofie.SofieError, match=r"node 'custom_relu'.*op 'Relu' of custom domain 'com\.example' "
                                               r"is not declared; declare it with sofie.CustomOp"):
        load_onnx(m)


def test_unknown_non_batch_dim_becomes_a_symbol_of_its_own() -> None:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])
    x.type.tensor_type.shape.dim[1].Clear()  # neither dim_value nor dim_param
    m = load_onnx(one_node_model(helper.make_node("Relu", ["x"], ["y"]), [x]))
    assert m.main.args[0].type.shape == ("N", "X_1")  # 'x' separates dims in the type syntax


def test_unknown_batch_dim_becomes_the_batch() -> None:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 3])
    m = load_onnx(one_node_model(helper.make_node("Relu", ["x"], ["y"]), [x]))
    assert m.main.args[0].type.shape == ("N", 3)


@pytest.mark.slow
def test_second_named_dynamic_dim_runs_at_any_value() -> None:
    """[batch, seq]: both are symbols; one build serves every seq up to its maximum."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "seq"])
    m = one_node_model(helper.make_node("Relu", ["x"], ["y"]), [x])
    compiled = sofie.compile(m, blas="none", dims={"seq": 9})
    for shape in [(2, 1), (3, 9), (1, 5)]:
        v = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
        np.testing.assert_array_equal(compiled(v)[0], np.maximum(v, 0))
    with pytest.raises(sofie.SofieError, match="dim seq = 10 exceeds its maximum 9"):
        compiled(np.zeros((1, 10), np.float32))


def test_named_dim_imports_as_a_symbol() -> None:
    """A single named dim may sit on any axis (runs are then limited to max_batch, no chunking)."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, "seq-len"])
    m = load_onnx(one_node_model(helper.make_node("Relu", ["x"], ["y"]), [x]))
    assert m.main.args[0].type.shape == (3, "seq_len")
    check_round_trip(m)


def test_unsupported_input_type_refused() -> None:
    x = helper.make_tensor_value_info("x", TensorProto.STRING, [2])
    m = one_node_model(helper.make_node("Identity", ["x"], ["y"]), [x])
    with pytest.raises(sofie.SofieError, match="input 'x' has unsupported element type STRING"):
        load_onnx(m)


def test_undefined_node_input_refused() -> None:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])
    m = one_node_model(helper.make_node("Add", ["x", "ghost"], ["y"], name="add"), [x])
    with pytest.raises(sofie.SofieError, match=r"node 'add'.*input 'ghost' is not defined"):
        load_onnx(m)


# ---- Constant nodes ---------------------------------------------------------------------------

CONSTANTS = {
    "value": (dict(value=numpy_helper.from_array(np.arange(6, dtype=np.float32).reshape(2, 3))), "Add"),
    "value_scalar": (dict(value=numpy_helper.from_array(np.array(2.5, np.float32))), "Mul"),
    "value_float": (dict(value_float=-1.5), "Mul"),
    "value_floats": (dict(value_floats=[1.0, 2.0, -3.0]), "Add"),
    "value_int": (dict(value_int=3), "Reshape1"),
    "value_ints": (dict(value_ints=[3, 2]), "Reshape"),
}


@pytest.mark.parametrize("variant", list(CONSTANTS))
def test_constant_variants(variant: str) -> None:
    attrs, use = CONSTANTS[variant]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])
    nodes = [helper.make_node("Constant", [], ["c"], name="const", **attrs)]
    if use == "Reshape1":  # a 0-d int64 made 1-D: the target shape [c, -1]
        nodes += [helper.make_node("Unsqueeze", ["c", "axes"], ["c1"]),
                  helper.make_node("Concat", ["c1", "minus1"], ["shape"], axis=0),
                  helper.make_node("Reshape", ["x", "shape"], ["y"])]
        inits = [numpy_helper.from_array(np.array([0], np.int64), "axes"),
                 numpy_helper.from_array(np.array([-1], np.int64), "minus1")]
    else:
        nodes.append(helper.make_node(use, ["x", "c"], ["y"]))
        inits = []
    g = helper.make_graph(nodes, "g", [x], [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    m = load_onnx(model)
    check_matches(m, model, {"x": np.random.default_rng(1).standard_normal((2, 3)).astype(np.float32)})
    check_round_trip(m)


def test_constant_string_refused() -> None:
    node = helper.make_node("Constant", [], ["y"], name="s", value_string="hello")
    with pytest.raises(sofie.SofieError, match=r"node 's'.*Constant with attributes \['value_string'\] "
                                               r"is not supported"):
        load_onnx(one_node_model(node, []))


# ---- text round trip of the per-op suites (many ops and attributes) ---------------------------

@pytest.mark.parametrize("suite", ["ops17", "ops11", "ops9"])
def test_op_suites_round_trip(suite: str) -> None:
    s = get_suite(suite)
    m = load_onnx(s.model())
    check_round_trip(m)
    m, _ = run_pipeline(m, GRAPH_PIPELINE)
    check_round_trip(m)
