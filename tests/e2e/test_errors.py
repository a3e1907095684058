"""Bad input: a clear SofieError from Python, one line and exit code 2 from the CLIs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import sofie
from sofie.compiled import CompiledModel

BIN = os.path.dirname(sys.executable)


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([f"{BIN}/{args[0]}", *args[1:]], capture_output=True, text=True, timeout=300)


def assert_user_error(r: subprocess.CompletedProcess, *needles: str) -> None:
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr + r.stdout
    assert r.stderr.strip().count("\n") == 0, r.stderr  # one line
    for n in needles:
        assert n in r.stderr, (n, r.stderr)


@pytest.fixture
def truncated(model_dir: str, tmp_path) -> str:
    data = open(os.path.join(model_dir, "conv1.onnx"), "rb").read()
    p = tmp_path / "t.onnx"
    p.write_bytes(data[: len(data) // 2])
    return str(p)


def test_truncated_onnx(truncated: str, tmp_path) -> None:
    assert_user_error(cli("sofie-compile", truncated, "-o", str(tmp_path)), truncated, "not a readable ONNX model")
    with pytest.raises(sofie.SofieError, match="not a readable ONNX model"):
        sofie.compile(truncated)


def unknown_op_model(path: str) -> str:
    node = helper.make_node("FrobnicateTensor", ["x"], ["y"], name="frob_1")
    g = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def test_unknown_op_names_op_node_opset_and_supported_ops(tmp_path) -> None:
    path = unknown_op_model(str(tmp_path / "m.onnx"))
    r = cli("sofie-compile", path, "-o", str(tmp_path))
    assert_user_error(r, "FrobnicateTensor", "frob_1", "opset 17", "Supported ops:", "Conv", "Gemm")
    assert_user_error(cli("sofie-opt", path), "FrobnicateTensor")


def test_every_unsupported_op_is_named_at_once(tmp_path) -> None:
    """One error for the whole model: each missing op type with its first node and its count."""
    nodes = [helper.make_node("Relu", ["x"], ["a"], name="relu_1"),
             helper.make_node("FrobnicateTensor", ["a"], ["b"], name="frob_1"),
             helper.make_node("Wibble", ["b"], ["c"], name="wib_1"),
             helper.make_node("FrobnicateTensor", ["c"], ["y"], name="frob_2")]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    path = str(tmp_path / "m.onnx")
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), path)
    for tool in ("sofie-compile", "sofie-opt"):
        assert_user_error(cli(tool, path, "-o", str(tmp_path)), "2 unsupported ops (opset 17)",
                          "'FrobnicateTensor' at node 'frob_1' (2 nodes), 'Wibble' at node 'wib_1' (1 node)",
                          "Supported ops:", "Relu")
    del nodes[2]
    onnx.save(helper.make_model(helper.make_graph(nodes, "g", g.input, g.output),
                                opset_imports=[helper.make_opsetid("", 17)]), path)
    assert_user_error(cli("sofie-compile", path, "-o", str(tmp_path)),
                      "node 'frob_1' (FrobnicateTensor, opset 17): unsupported op 'FrobnicateTensor' "
                      "(2 nodes, this is the first)")


def test_missing_model_file(tmp_path) -> None:
    assert_user_error(cli("sofie-compile", str(tmp_path / "nope.onnx"), "-o", str(tmp_path)), "no such file")
    with pytest.raises(sofie.SofieError, match="no such file"):
        sofie.compile(str(tmp_path / "nope.onnx"))


@pytest.mark.parametrize("name", ["nope.onnx", "nope.ir"])
def test_file_errors_are_worded_alike_by_both_clis(tmp_path, name: str) -> None:
    missing, folder = str(tmp_path / name), tmp_path / ("dir" + os.path.splitext(name)[1])
    folder.mkdir()
    for tool in ("sofie-compile", "sofie-opt"):
        r = cli(tool, missing, "-o", str(tmp_path / "out"))
        assert_user_error(r, f"{tool}: error: {missing}: no such file")
        r = cli(tool, str(folder), "-o", str(tmp_path / "out"))
        assert_user_error(r, f"{tool}: error: {folder}: is a directory, expected a model file")
    with pytest.raises(sofie.SofieError, match="is a directory, expected a model file"):
        sofie.compile(str(folder))


def test_print_flags_needs_no_model() -> None:
    r = cli("sofie-compile", "--print-flags", "--blas", "none")
    assert r.returncode == 0 and r.stderr == "", r.stderr
    r = cli("sofie-compile")  # argparse's usage error: usage lines, then the error
    assert r.returncode == 2 and "sofie-compile: error: the following arguments are required: model" in r.stderr


def test_cli_usage_errors(model_dir: str, tmp_path) -> None:
    model = os.path.join(model_dir, "conv1.onnx")
    assert cli("sofie-compile", model, "--blas", "mkl").returncode == 2
    assert_user_error(cli("sofie-compile", model, "-o", str(tmp_path), "--pass-pipeline", "fuse,nonsense"),
                      "unknown pass 'nonsense'")
    assert_user_error(cli("sofie-opt", model, "--pass-pipeline", "nonsense"), "unknown pass")


def test_bad_ir_text_names_line_and_column(tmp_path) -> None:
    p = tmp_path / "bad.ir"
    p.write_text("module @m {\n  func @main(%x: tensor<4xf32>) -> (tensor<4xf32>) {\n"
                 "    %y = graph.relu %x : tensor<4xf32\n    return %y\n  }\n}\n")
    assert_user_error(cli("sofie-opt", str(p)), "bad.ir:3:")
    p.write_text("module @m {\n  func @main(%x: tensor<4xf32>) -> (tensor<4xf32>) {\n"
                 "    %y = graph.relu %z : tensor<4xf32>\n    return %y\n  }\n}\n")
    assert_user_error(cli("sofie-opt", str(p)), "undefined value %z")
    p.write_text("module @m {\n  func @main(%x: tensor<4xf32>) -> (tensor<5xf32>) {\n"
                 "    %y = graph.relu %x : tensor<5xf32>\n    return %y\n  }\n}\n")
    assert_user_error(cli("sofie-opt", str(p)), "graph.relu", "shape rule")


@pytest.fixture(scope="module")
def mlp(model_dir: str) -> CompiledModel:
    return sofie.compile(os.path.join(model_dir, "mlp_5x200.onnx"))


@pytest.mark.parametrize("x, message", [
    (np.zeros((2, 200), np.float64), r"must be float32, got float64; cast with x\.astype\(np\.float32\)"),
    (np.zeros((2, 200), np.int64), r"must be float32, got int64; cast with x\.astype\(np\.float32\)"),
    (np.zeros((200,), np.float32), "must have rank 2"),
    (np.zeros((2, 199), np.float32), r"must have shape \['N', 200\], got \[2, 199\]"),
    (np.zeros((0, 200), np.float32), "batch size 0"),
])
def test_wrong_input(mlp: CompiledModel, x: np.ndarray, message: str) -> None:
    with pytest.raises(sofie.SofieError, match=message):
        mlp(x)


def test_wrong_input_count(mlp: CompiledModel) -> None:
    x = np.zeros((1, 200), np.float32)
    with pytest.raises(sofie.SofieError, match=r"expected 1 input\(s\) \(x\), got 2"):
        mlp(x, x)


def test_non_contiguous_input_is_accepted(mlp: CompiledModel) -> None:
    x = np.random.default_rng(0).standard_normal((200, 4)).astype(np.float32).T
    np.testing.assert_array_equal(mlp(x)[0], mlp(np.ascontiguousarray(x))[0])


@pytest.mark.parametrize("damage", ["missing", "corrupt"])
def test_bad_weights_file_from_python(mlp: CompiledModel, tmp_path, damage: str) -> None:
    folder = tmp_path / "copy"
    shutil.copytree(mlp.folder, folder)
    info = json.load(open(folder / "manifest.json"))
    dat = folder / info["weights"]
    if damage == "missing":
        dat.unlink()
        expected = "cannot open|missing|No such"
    else:
        data = bytearray(dat.read_bytes())
        data[len(data) // 2] ^= 0xFF
        dat.write_bytes(bytes(data))
        expected = "corrupt|checksum"
    with pytest.raises(sofie.SofieError, match=expected):
        CompiledModel(str(folder), info, 4)
