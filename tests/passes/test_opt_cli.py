"""sofie-opt's pipeline options: pass order from flags, printing after passes, statistics,
the verifier between passes, output file, lowering, and how weights are printed."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from sofie.errors import SofieError
from sofie.frontends.onnx import load_onnx
from sofie.ir.core import Module
from sofie.ir.parser import parse
from sofie.ir.types import TensorType
from sofie.pipeline import Pass, PipelineOptions, run_pipeline

BIN = os.path.dirname(sys.executable)
HERE = os.path.dirname(os.path.abspath(__file__))
PIPELINE_IR = os.path.join(HERE, "pipeline.ir")


def opt(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    r = subprocess.run([f"{BIN}/sofie-opt", *args], capture_output=True, text=True, input=stdin)
    assert r.returncode == 0, r.stderr
    return r


def test_flags_run_in_the_order_given_with_stats() -> None:
    r = opt(PIPELINE_IR, "--fuse", "--fold-batchnorm", "--dce", "--pass-stats")
    names = [line.split()[0] for line in r.stderr.splitlines()]
    assert names == ["fuse", "fold-batchnorm", "dce"]
    # fuse before fold-batchnorm cannot fuse through the BatchNorm: the Relu stays
    assert "graph.relu" in r.stdout
    assert "graph.relu" not in opt(PIPELINE_IR, "--fold-batchnorm", "--fuse").stdout


def test_print_ir_after_all_and_after_one() -> None:
    r = opt(PIPELINE_IR, "--pass-pipeline=fold-batchnorm,fuse", "--print-ir-after-all")
    assert r.stderr.count("// ----- IR after") == 2
    assert "IR after fold-batchnorm" in r.stderr and "IR after fuse" in r.stderr
    r = opt(PIPELINE_IR, "--fold-batchnorm", "--fuse", "--print-ir-after=fuse")
    assert r.stderr.count("// ----- IR after") == 1 and "IR after fuse" in r.stderr


def test_output_file_and_lowering(tmp_path) -> None:
    out = tmp_path / "out.ir"
    assert opt(PIPELINE_IR, "--fold-batchnorm", "-o", str(out)).stdout == ""
    assert "graph.batch_normalization" not in out.read_text()
    low = opt(str(out), "--fuse", "--plan-memory").stdout  # `lower` is inserted before plan-memory
    assert "low.conv2d" in low and "graph." not in low and "low.alloc" not in low
    assert low == opt(str(out), "--fuse", "--lower", "--plan-memory").stdout
    parse(low)  # the low dialect parses back
    unplanned = opt(str(out), "--fuse", "--lower").stdout
    assert "low.alloc" in unplanned and "low.buffer" not in unplanned


def test_a_pass_at_the_wrong_level_says_so(tmp_path) -> None:
    r = subprocess.run([f"{BIN}/sofie-opt", PIPELINE_IR, "--plan-memory", "--fuse"], capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        "sofie-opt: error: pass 'fuse' runs on graph IR, but the module is low IR at that point (after lower)"]
    low = tmp_path / "low.ir"
    low.write_text(opt(PIPELINE_IR, "--plan-memory").stdout)
    r = subprocess.run([f"{BIN}/sofie-opt", str(low), "--cse"], capture_output=True, text=True)
    assert r.returncode == 2 and "pass 'cse' runs on graph IR, but the module is low IR" in r.stderr


def test_weights_are_lossless_unless_elided(model_dir: str) -> None:
    model = os.path.join(model_dir, "linear_10x50.onnx")
    ref = load_onnx(model)
    text = opt(model).stdout
    assert 'weight "0.weight" : tensor<50x50xf32> = dense_resource' in text and "elided" not in text
    back = parse(text)
    for name, w in ref.weights.items():
        np.testing.assert_array_equal(back.weights[name].data, w.data)
    assert opt("-", stdin=text).stdout == text  # reads its own output back, unchanged

    elided = opt(model, "--elide-weights").stdout
    assert 'weight "0.weight" : tensor<50x50xf32> = elided' in elided and "{-#" not in elided
    assert parse(elided).weights["0.weight"].data is None

    all_blobs = opt(model, "--inline-weights-below=0").stdout
    assert "dense<" not in all_blobs and parse(all_blobs).weights["0.bias"].data is not None
    all_inline = opt(model, "--inline-weights-below=2500").stdout
    assert "dense_resource" not in all_inline and "{-#" not in all_inline


def test_dumps_between_passes_elide_weights(model_dir: str) -> None:
    r = opt(os.path.join(model_dir, "linear_10x50.onnx"), "--fuse", "--print-ir-after=fuse")
    assert "= elided" in r.stderr and "{-#" not in r.stderr
    assert "= dense_resource" in r.stdout  # the output itself stays lossless


class BreakTypes(Pass):
    """A broken pass: changes a result type behind the shape rule's back."""

    name = "break-types"

    def run(self, module: Module) -> None:
        op = next(o for o in module.main.ops if o.name == "graph.conv")
        op.results[0].type = TensorType("f32", (1, 1))


class BreakOutputType(Pass):
    """A broken rewrite: returns a value of another type in place of the model's output."""

    name = "break-output-type"

    def run(self, module: Module) -> None:
        f = module.main
        f.outputs = [f.args[0]]


def test_verifier_checks_returned_values_against_the_signature(monkeypatch) -> None:
    import sofie.passes.pass_manager as pm
    monkeypatch.setitem(pm.PASSES, "break-output-type", BreakOutputType)
    m = parse(open(PIPELINE_IR).read())
    with pytest.raises(SofieError, match=r"returns \(tensor<.*\) but its signature declares"):
        run_pipeline(m, ["break-output-type"])


def test_verifier_runs_after_every_pass(monkeypatch) -> None:
    import sofie.passes.pass_manager as pm
    monkeypatch.setitem(pm.PASSES, "break-types", BreakTypes)
    m = parse(open(PIPELINE_IR).read())
    with pytest.raises(SofieError, match="verifier after pass 'break-types': graph.conv"):
        run_pipeline(m, ["break-types"])
    m = parse(open(PIPELINE_IR).read())
    run_pipeline(m, ["break-types"], PipelineOptions(verify_each=False))  # --no-verify


def test_help_lists_the_passes_in_the_order_they_run() -> None:
    from sofie.pipeline import DEFAULT_PIPELINE
    for tool in ("sofie-opt", "sofie-compile"):
        text = subprocess.run([f"{BIN}/{tool}", "--help"], capture_output=True, text=True).stdout
        where = [text.index(f"  {'--' if tool == 'sofie-opt' else ''}{name} ") for name in DEFAULT_PIPELINE]
        assert where == sorted(where), tool
        assert "plan-memory-no-reuse" in text and "'default'" in text


def test_pipeline_default_names_the_default_and_extends_it() -> None:
    from sofie.pipeline import DEFAULT_PIPELINE
    r = opt(PIPELINE_IR, "--pass-pipeline=default,fuse-loops", "--pass-stats")
    assert [line.split()[0] for line in r.stderr.splitlines()] == DEFAULT_PIPELINE + ["fuse-loops"]
    assert r.stdout == opt(PIPELINE_IR, "--pass-pipeline=" + ",".join(DEFAULT_PIPELINE)).stdout
    assert r.stdout == opt(PIPELINE_IR, *(f"--{n}" for n in DEFAULT_PIPELINE)).stdout


def compile_stats(tmp_path, pipeline: str) -> tuple[dict, str]:
    import json
    out = tmp_path / pipeline.replace(",", "_")
    r = subprocess.run([f"{BIN}/sofie-compile", PIPELINE_IR, "-o", str(out), "--stats", "--name", "m",
                        f"--pass-pipeline={pipeline}"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return json.loads((out / "m.stats.json").read_text()), r.stderr


def test_a_plan_without_reuse_only_when_asked_and_said(tmp_path) -> None:
    reuse, said = compile_stats(tmp_path, "default")
    assert reuse["memory_plan"] == "plan-memory" and "note:" not in said
    # a pipeline leaving out plan-memory still gets the plan with reuse
    no_plan, said = compile_stats(tmp_path, "fold-batchnorm,fuse")
    assert no_plan["memory_plan"] == "plan-memory" and "note:" not in said
    assert [p["name"] for p in no_plan["passes"]][-1] == "plan-memory"
    # unfused, Conv -> BN -> Relu has intermediates to share bytes
    asked, said = compile_stats(tmp_path, "infer-shapes,plan-memory-no-reuse")
    assert asked["memory_plan"] == "plan-memory-no-reuse"
    assert [p["name"] for p in asked["passes"]] == ["infer-shapes", "widen-f16", "lower", "plan-memory-no-reuse"]
    assert "note: memory plan without reuse" in said
    assert asked["arena_bytes"] > compile_stats(tmp_path, "infer-shapes")[0]["arena_bytes"]


def test_passes_are_discovered_from_their_modules(tmp_path, monkeypatch) -> None:
    """A pass module dropped into sofie/passes registers itself: no central list to edit."""
    import sofie.passes
    import sofie.passes.pass_manager as pm
    from sofie.pipeline import available_passes
    (tmp_path / "sofie_test_new_pass.py").write_text(
        "from sofie.passes.pass_manager import Pass, register_pass\n\n"
        "@register_pass\nclass NewPass(Pass):\n    name = 'new-test-pass'\n\n"
        "    def run(self, module):\n        return None\n")
    monkeypatch.setattr(sofie.passes, "__path__", [*sofie.passes.__path__, str(tmp_path)])
    try:
        assert available_passes()["new-test-pass"].__module__ == "sofie.passes.sofie_test_new_pass"
    finally:
        pm.PASSES.pop("new-test-pass", None)
        sys.modules.pop("sofie.passes.sofie_test_new_pass", None)


def test_python_builds_take_default_in_their_pass_list(tmp_path) -> None:
    from sofie.driver import build
    from sofie.pipeline import DEFAULT_PIPELINE
    r = build(PIPELINE_IR, str(tmp_path), name="m", blas="none", passes=["default", "plan-memory-no-reuse"])
    assert [p["name"] for p in r.stats["passes"]] == [*DEFAULT_PIPELINE[:-1], "plan-memory-no-reuse"]
    assert r.stats["memory_plan"] == "plan-memory-no-reuse"
    with pytest.raises(SofieError, match="unknown pass 'nonsense'"):
        build(PIPELINE_IR, str(tmp_path), name="m", blas="none", passes=["default", "nonsense"])
