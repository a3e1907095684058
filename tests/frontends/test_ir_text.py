"""IR text as a model format: recognised by extension or content, graph dialect only for
compiling, and every bad input a one-line SofieError (exit code 2 from the CLIs)."""

from __future__ import annotations

import os
import re

import pytest

import sofie
from sofie.errors import SofieError
from sofie.frontends import load_model
from sofie.frontends.ir_text import is_ir_text, read_ir_text
from sofie.frontends.onnx import load_onnx
from sofie.ir.printer import print_module
from sofie.pipeline import run_pipeline
from tests.e2e.test_errors import assert_user_error, cli

HERE = os.path.dirname(os.path.abspath(__file__))
PIPELINE_IR = os.path.join(os.path.dirname(HERE), "passes", "pipeline.ir")  # starts with // comments


@pytest.fixture
def linear_text(model_dir: str) -> str:
    """linear_10x50 as lossless IR text: 50x50 weights in the resource section."""
    return print_module(load_onnx(os.path.join(model_dir, "linear_10x50.onnx")))


def test_recognised_by_extension_or_content(tmp_path, model_dir: str) -> None:
    for ext in (".ir", ".sofie", ".MLIR"):
        (tmp_path / f"any{ext}").write_text("whatever")
        assert is_ir_text(str(tmp_path / f"any{ext}"))
    (tmp_path / "commented.txt").write_text(open(PIPELINE_IR).read())
    assert is_ir_text(str(tmp_path / "commented.txt"))
    (tmp_path / "prose.txt").write_text("// a note\nthis module @m is not IR\n")
    assert not is_ir_text(str(tmp_path / "prose.txt"))
    assert not is_ir_text(os.path.join(model_dir, "conv1.onnx"))
    assert not is_ir_text(str(tmp_path / "missing.txt"))


def test_load_model_reads_graph_ir_text(tmp_path, linear_text: str, model_dir: str) -> None:
    path = tmp_path / "exported.txt"  # found by its content
    path.write_text(linear_text)
    m = load_model(str(path))
    ref = load_onnx(os.path.join(model_dir, "linear_10x50.onnx"))
    assert m.name == "linear_10x50"  # the module's own name, not the file's
    assert print_module(m) == print_module(ref)
    assert load_model(str(path), name="my-net.v2").name == "my_net_v2"  # a C++ identifier, as for ONNX


@pytest.mark.slow
def test_low_dialect_text_compiles_to_the_same_model(tmp_path, model_dir: str) -> None:
    """Low IR from `sofie-opt --lower` (allocations) or `--plan-memory` (offsets) compiles too:
    the rest of the pipeline runs, and the outputs equal those of the .onnx, bit for bit."""
    import numpy as np
    onnx_path = os.path.join(model_dir, "linear_10x50.onnx")
    x = np.random.default_rng(0).standard_normal((3, 50)).astype(np.float32)
    want = sofie.compile(onnx_path, blas="none")(x)[0]
    for passes in (["lower"], ["lower", "fuse-loops", "plan-memory"]):
        low, _ = run_pipeline(run_pipeline(load_onnx(onnx_path), ["infer-shapes", "fold-constants", "canonicalize",
                                                                 "fuse", "cse", "dce"])[0], passes)
        path = tmp_path / f"low{len(passes)}.ir"
        path.write_text(print_module(low))
        assert read_ir_text(str(path)).main.ops  # sofie-opt reads every level
        np.testing.assert_array_equal(sofie.compile(str(path), blas="none")(x)[0], want)
        r = cli("sofie-compile", str(path), "-o", str(tmp_path / f"out{len(passes)}"), "--blas", "none")
        assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("corrupt, needle", [
    (lambda t: t.replace('": "', '": "!', 1), "'!' at character 0; expected base64"),
    (lambda t: t.replace('": "', '": "AAAA', 1), "resource holds 10003 bytes, its type tensor<50x50xf32> needs 10000"),
    (lambda t: t.replace("= dense_resource", "= elided", 1), 'resource "0.weight" belongs to no weight'),
    (lambda t: t[:t.index("\n{-#")] + "\n", 'weight "0.weight" is declared dense_resource, but the resource '
                                            'section has no entry "0.weight"'),
])
def test_corrupt_text_is_a_one_line_error(tmp_path, linear_text: str, corrupt, needle: str) -> None:
    path = tmp_path / "bad.ir"
    path.write_text(corrupt(linear_text))
    assert_user_error(cli("sofie-compile", str(path), "-o", str(tmp_path / "out")), str(path), needle)
    assert_user_error(cli("sofie-opt", str(path)), needle)
    with pytest.raises(SofieError, match=needle.replace("(", r"\(")):
        sofie.compile(str(path))


def test_elided_text_parses_but_does_not_compile(tmp_path, model_dir: str) -> None:
    elided = tmp_path / "elided.ir"
    r = cli("sofie-opt", os.path.join(model_dir, "linear_10x50.onnx"), "--elide-weights", "-o", str(elided))
    assert r.returncode == 0, r.stderr
    assert cli("sofie-opt", str(elided), "--fuse").returncode == 0
    named = r"weight @0\.(weight|bias) (has no data|was elided)"  # the first one compiling needs
    r = cli("sofie-compile", str(elided), "-o", str(tmp_path / "out"))
    assert_user_error(r, "elided")
    assert re.search(named, r.stderr), r.stderr
    with pytest.raises(SofieError, match=named):
        sofie.compile(str(elided))


def test_other_formats_are_still_refused(tmp_path) -> None:
    pt = tmp_path / "model.pt"
    pt.write_bytes(b"\x80\x02PK\x03\x04")
    with pytest.raises(SofieError, match=r"unsupported model format '\.pt'"):
        load_model(str(pt))
