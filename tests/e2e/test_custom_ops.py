"""Custom operators (sofie.CustomOp): declared in Python with their C++, imported from ONNX
nodes of their domain, planned and emitted like built-in ops, usable from the API and the CLIs.
Results are compared with each op's numpy reference (float32: rtol 1e-5, atol 1e-6)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from onnx import TensorProto, helper

import sofie
from sofie.custom_ops import load_custom_ops

HERE = os.path.dirname(os.path.abspath(__file__))
OPS_FILE = os.path.join(HERE, "custom_ops", "ops.py")
OPS = {op.op_type: op for op in load_custom_ops(OPS_FILE)}
TOL = {"rtol": 1e-5, "atol": 1e-6}


def _model(nodes, outputs, *, dtype=TensorProto.FLOAT, shape=("N", 5), out_shapes=None):
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", dtype, list(shape))],
                          [helper.make_tensor_value_info(o, dtype, None) for o in outputs])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("test.ops", 1)])


def _swish_ref(x, beta):
    return OPS["Swish"].reference(x, beta)


def test_swish_body_between_builtin_ops_matches_reference_at_several_batches() -> None:
    """Relu -> Swish(beta=0.5) -> Add: the custom op's output is planned in the arena between two
    built-in ops; batch 1, 7 and 70 (chunks of the default max batch)."""
    m = sofie.compile(_model([helper.make_node("Relu", ["x"], ["r"]),
                              helper.make_node("Swish", ["r"], ["s"], domain="test.ops", beta=0.5, name="sw"),
                              helper.make_node("Add", ["s", "x"], ["y"])], ["y"]), name="swish", blas="none",
                      max_batch=16)
    header = open(m.header).read()
    assert "custom_test_ops_Swish(sofie::rt::View<const float>{" in header and "0.5f)" in header
    rng = np.random.default_rng(0)
    for batch in (1, 7, 70):
        x = rng.standard_normal((batch, 5)).astype(np.float32) * 3
        (y,) = m(x)
        np.testing.assert_allclose(y, _swish_ref(np.maximum(x, 0), 0.5) + x, **TOL)


def test_default_attribute_and_float64() -> None:
    m = sofie.compile(_model([helper.make_node("Swish", ["x"], ["y"], domain="test.ops")], ["y"],
                             dtype=TensorProto.DOUBLE), name="swish64", blas="none")
    x = np.linspace(-6, 6, 20).reshape(4, 5)
    (y,) = m(x)
    np.testing.assert_allclose(y, x / (1 + np.exp(-x)), rtol=1e-12)


def test_header_op_with_two_outputs_list_string_and_int_attributes() -> None:
    """RowStats from a user header: two outputs of different shapes (its shape rule), a
    `floats`, a `str` and an `int` attribute; both modes in one model."""
    nodes = [helper.make_node("RowStats", ["x"], ["y", "s"], domain="test.ops", w=[1.0, -2.0, 0.5],
                              mode="max", offset=3, name="rs_max"),
             helper.make_node("RowStats", ["y"], ["y2", "s2"], domain="test.ops", name="rs_sum")]
    m = sofie.compile(_model(nodes, ["y", "s", "y2", "s2"], shape=("N", 3, 4)), name="rowstats", blas="none")
    assert os.path.isfile(os.path.join(os.path.dirname(m.header), "custom", "row_stats.hxx"))
    x = np.random.default_rng(1).standard_normal((6, 3, 4)).astype(np.float32)
    y, s, y2, s2 = m(x)
    ry, rs = OPS["RowStats"].reference(x, [1.0, -2.0, 0.5], "max", 3)
    ry2, rs2 = OPS["RowStats"].reference(ry, [1.0], "sum", 0)
    assert s.shape == (6, 3) and s2.shape == (6, 3)
    for got, want in ((y, ry), (s, rs), (y2, ry2), (s2, rs2)):
        np.testing.assert_allclose(got, want, **TOL)


def test_constant_inputs_fold_through_the_reference() -> None:
    """A custom op whose input is a constant is folded with its numpy reference, like any op."""
    c = helper.make_tensor("c", TensorProto.FLOAT, [5], [-2, -1, 0, 1, 2])
    g = helper.make_graph([helper.make_node("Swish", ["c"], ["sc"], domain="test.ops"),
                           helper.make_node("Add", ["x", "sc"], ["y"])], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 5])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [c])
    m = sofie.compile(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17),
                                                          helper.make_opsetid("test.ops", 1)]),
                      name="swish_folded", blas="none")
    assert "custom_test_ops_Swish" not in open(m.header).read()
    x = np.zeros((2, 5), np.float32)
    (y,) = m(x)
    np.testing.assert_allclose(y[0], _swish_ref(np.arange(-2, 3, dtype=np.float32), 1.0), **TOL)


def _cli(tool: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", f"sofie.tools.{tool}", *args], capture_output=True, text=True)


def test_cli_compiles_with_custom_ops_file_and_ir_text_round_trips(tmp_path) -> None:
    import onnx
    path = str(tmp_path / "m.onnx")
    onnx.save(_model([helper.make_node("Swish", ["x"], ["y"], domain="test.ops", beta=2.0)], ["y"]), path)
    r = _cli("compile", path, "-o", str(tmp_path / "out"), "--blas", "none")
    assert r.returncode == 2 and "op 'Swish' of custom domain 'test.ops' is not declared" in r.stderr
    r = _cli("opt", path, "--custom-ops", OPS_FILE, "-o", str(tmp_path / "m.ir"))
    assert r.returncode == 0, r.stderr
    text = open(tmp_path / "m.ir").read()
    assert "custom.test_ops.swish" in text and "beta = 2.0" in text
    r = _cli("compile", str(tmp_path / "m.ir"), "--custom-ops", OPS_FILE, "-o", str(tmp_path / "out"),
             "--blas", "none", "--name", "sw")
    assert r.returncode == 0, r.stderr
    main = tmp_path / "main.cpp"
    main.write_text('#include "sw.hxx"\n#include <cstdio>\nint main() {\n'
                    '  TMVA_SOFIE_sw::Session s("' + str(tmp_path / "out" / "sw.dat") + '");\n'
                    '  float x[5] = {-2, -1, 0, 1, 2};\n  auto y = s.infer(x);\n'
                    '  for (float v : y) std::printf("%.7g\\n", v);\n}\n')
    exe = str(tmp_path / "main")
    subprocess.run(["g++", "-std=c++17", "-O2", "-I", str(tmp_path / "out"), str(main), "-o", exe], check=True)
    got = np.array([float(v) for v in subprocess.run([exe], capture_output=True, text=True, check=True).stdout.split()])
    np.testing.assert_allclose(got, _swish_ref(np.arange(-2, 3, dtype=np.float32), 2.0), **TOL)


@pytest.mark.parametrize("kwargs, message", [
    (dict(cpp=""), r"exactly one of cpp= \(a function body\) or header="),
    (dict(cpp="", header="nowhere.hxx", function="f"), r"header 'nowhere.hxx' does not exist"),
    (dict(inputs=["class"]), r"'class' is not usable as a C\+\+ parameter name"),
    (dict(inputs=["X"], outputs=["X"]), r"need distinct names"),
    (dict(domain=""), r"needs a domain of its own"),
    (dict(attrs={"table": {"a": 1}}), r"attribute 'table': default .* is not an int, float, str"),
])
def test_bad_declarations_are_refused(kwargs, message) -> None:
    decl = dict(domain="bad.ops", op_type="Op", inputs=["X"], outputs=["Y"], cpp="Y[0] = X[0];")
    with pytest.raises(sofie.SofieError, match=message):
        sofie.register_custom_op(sofie.CustomOp(**{**decl, **kwargs}))


def test_wrong_input_type_and_bad_shape_rule_are_refused() -> None:
    with pytest.raises(sofie.SofieError, match=r"input 'X' is i64; custom op test.ops.Swish takes f32, f64"):
        sofie.compile(_model([helper.make_node("Swish", ["x"], ["y"], domain="test.ops")], ["y"],
                             dtype=TensorProto.INT64), name="swish_i64", blas="none")
    sofie.register_custom_op(sofie.CustomOp(domain="bad.ops", op_type="Shapeless", inputs=["X"], outputs=["Y"],
                                            shape=lambda X: "oops", cpp="Y[0] = X[0];"))
    g = _model([helper.make_node("Shapeless", ["x"], ["y"], domain="bad.ops")], ["y"])
    g.opset_import.append(helper.make_opsetid("bad.ops", 1))
    with pytest.raises(sofie.SofieError, match=r"shape rule of custom op bad.ops.Shapeless must return 1 TensorType"):
        sofie.compile(g, name="shapeless", blas="none")
