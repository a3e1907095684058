"""The conformance runner itself: comparison rules, batch isolation of a header that does not
compile, a crash at run time losing no other result, the build cache, and the report."""

from __future__ import annotations

import json
import os
import re

import ml_dtypes
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from sofie.conformance.building import Builder
from sofie.conformance.collect import NodeTest, primary_op
from sofie.conformance.compare import compare
from sofie.conformance.importing import OK, content_key, import_test
from sofie.conformance.report import (
    BUILD_ERROR,
    CRASH,
    PASSED,
    README_BEGIN,
    README_END,
    REFUSED,
    RUN_ERROR,
    WRONG,
    Result,
    by_op,
    readme_section,
    summary_line,
    totals,
    update_readme,
    write_reports,
)
from sofie.conformance.running import check
from sofie.conformance.suite import run_suite

F32 = np.float32


# -- comparison rules ------------------------------------------------------------------------
def test_close_floats_pass():
    want = np.array([1.0, -2.0, 1000.0], F32)
    assert compare("y", want * F32(1 + 5e-4), want) is None
    assert compare("y", np.array([5e-6], F32), np.array([0.0], F32)) is None  # within atol


def test_far_floats_fail_naming_the_first_element():
    why = compare("y", np.array([[1.0, 2.0], [3.0, 4.01]], F32), np.array([[1.0, 2.0], [3.0, 4.0]], F32))
    assert why is not None and "1 of 4" in why and "[1, 1]" in why


def test_atol_is_1e5():
    assert compare("y", np.array([2e-5], F32), np.array([0.0], F32)) is not None


def test_nan_equals_nan_in_the_same_place_only():
    assert compare("y", np.array([np.nan, 1.0], F32), np.array([np.nan, 1.0], F32)) is None
    assert compare("y", np.array([np.nan, 1.0], F32), np.array([1.0, 1.0], F32)) is not None
    assert compare("y", np.array([1.0, 1.0], F32), np.array([np.nan, 1.0], F32)) is not None


def test_infinities_equal_by_sign():
    assert compare("y", np.array([np.inf, -np.inf], F32), np.array([np.inf, -np.inf], F32)) is None
    assert compare("y", np.array([np.inf], F32), np.array([-np.inf], F32)) is not None
    assert compare("y", np.array([np.finfo(F32).max], F32), np.array([np.inf], F32)) is not None


def test_dtype_and_shape_must_match():
    assert "dtype" in compare("y", np.zeros(3, np.float64), np.zeros(3, F32))
    assert "dtype" in compare("y", np.zeros(3, np.int32), np.zeros(3, np.int64))
    assert "shape" in compare("y", np.zeros((3, 1), F32), np.zeros(3, F32))
    assert "shape" in compare("y", np.zeros((), F32), np.zeros(1, F32))


def test_integers_and_bools_exactly():
    big = np.array([2**62], np.int64)
    assert compare("y", big, big) is None
    assert compare("y", big + 1, big) is not None  # within rtol 1e-3 as a float, not equal
    assert compare("y", np.array([True, False]), np.array([True, True])) is not None


def test_float16_compares_as_float():
    assert compare("y", np.array([1.0], np.float16), np.array([1.0004], np.float16)) is None
    assert compare("y", np.array([1.0], np.float16), np.array([1.1], np.float16)) is not None


def test_narrow_floats_compare_as_floats():
    """bfloat16 and float8 (ml_dtypes' kind 'V') compare as floats: NaN matches NaN (which ==
    would not), values within the tolerance; the 4-bit integers exactly."""
    bf16, f8 = ml_dtypes.bfloat16, ml_dtypes.float8_e4m3fn
    assert compare("y", np.array([np.nan, 1.0], bf16), np.array([np.nan, 1.0], bf16)) is None
    assert compare("y", np.array([np.nan], f8), np.array([np.nan], f8)) is None
    assert compare("y", np.array([1.0], bf16), np.array([1.0078125], bf16)) is not None  # one ulp: 8e-3
    assert compare("y", np.array([-3], ml_dtypes.int4), np.array([-3], ml_dtypes.int4)) is None
    assert compare("y", np.array([-3], ml_dtypes.int4), np.array([-2], ml_dtypes.int4)) is not None


# -- building and running ----------------------------------------------------------------------
def _unary(name: str, op: str, dtype: int = TensorProto.FLOAT) -> onnx.ModelProto:
    graph = helper.make_graph([helper.make_node(op, ["x"], ["y"])], name,
                              [helper.make_tensor_value_info("x", dtype, [2, 3])],
                              [helper.make_tensor_value_info("y", dtype, [2, 3])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _tests() -> list[NodeTest]:
    x = np.array([[-1.5, 0.0, 2.0], [3.0, -4.0, 0.5]], F32)
    xi = np.array([[-1, 0, 2], [3, -4, 5]], np.int32)
    return [NodeTest("t_relu", _unary("t_relu", "Relu"), [([x], [np.maximum(x, 0)])], "Relu"),
            NodeTest("t_neg", _unary("t_neg", "Neg", TensorProto.INT32), [([xi], [-xi])], "Neg"),
            NodeTest("t_abs", _unary("t_abs", "Abs"), [([x], [np.abs(x)])], "Abs"),
            NodeTest("t_exp", _unary("t_exp", "Exp"), [([x], [np.exp(x)])], "Exp")]


def _edit_header(m, edit) -> None:
    path = os.path.join(m.folder, m.name + ".hxx")
    with open(path) as f:
        text = f.read()
    with open(path, "w") as f:
        f.write(edit(text))
    m.key = content_key(m.folder)


@pytest.fixture()
def imported(tmp_path):
    tests = _tests()
    models = [import_test(t, str(tmp_path / "models")) for t in tests]
    assert [m.status for m in models] == [OK] * len(tests)
    return tests, models


def test_a_header_that_does_not_compile_is_isolated(tmp_path, imported):
    tests, models = imported
    bad = models[1]
    _edit_header(bad, lambda s: s.replace("namespace TMVA_SOFIE_t_neg {",
                                          "namespace TMVA_SOFIE_t_neg {\ndeliberately broken;", 1))
    built = Builder(str(tmp_path), batch_size=8).build(models)
    assert list(built.errors) == [bad.key]
    assert re.match(r"t_neg\.hxx:\d+:\d+: error: .*deliberately", built.errors[bad.key]), built.errors[bad.key]
    # the first g++ run fails, then the model it names alone, then the others together
    assert built.compiles == 3 and built.compiled_models == 3
    for t, m in zip(tests, models):
        if m is not bad:
            assert check(t, built.programs[m.key], m) == (PASSED, "")

    again = Builder(str(tmp_path), batch_size=8).build(models)  # cached: programs and the error
    assert again.compiles == 0 and again.programs == built.programs and again.errors == built.errors


def test_only_changed_models_are_rebuilt(tmp_path, imported):
    tests, models = imported
    first = Builder(str(tmp_path), batch_size=8).build(models)
    assert first.compiles == 1 and first.compiled_models == 4
    _edit_header(models[2], lambda s: s.replace("// Do not edit.", "// Do not edit (edited).", 1))
    second = Builder(str(tmp_path), batch_size=8).build(models)
    assert second.compiles == 1 and second.compiled_models == 1
    assert check(tests[2], second.programs[models[2].key], models[2]) == (PASSED, "")


def test_a_crash_at_run_time_loses_no_other_result(tmp_path, imported):
    tests, models = imported
    crashing = models[0]
    _edit_header(crashing, lambda s: re.sub(r"(inline void Session::run\(.*\) \{\n)", r"\1  __builtin_trap();\n", s))
    built = Builder(str(tmp_path), batch_size=8).build(models)
    assert built.compiles == 1 and not built.errors  # all four in one program
    outcomes = [check(t, built.programs[m.key], m) for t, m in zip(tests, models)]
    assert outcomes[0][0] == RUN_ERROR and "killed by signal" in outcomes[0][1]
    assert outcomes[1:] == [(PASSED, "")] * 3


def test_wrong_outputs_are_reported(tmp_path, imported):
    tests, models = imported
    built = Builder(str(tmp_path), batch_size=8).build(models[:1])
    wrong = NodeTest("t_relu", tests[0].model, [(tests[0].data_sets[0][0], [np.zeros((2, 3), F32)])], "Relu")
    status, why = check(wrong, built.programs[models[0].key], models[0])
    assert status == WRONG and "output 'y'" in why
    bad_dtype = NodeTest("t_relu", tests[0].model, [([np.zeros((2, 3), np.float64)], [np.zeros((2, 3), F32)])])
    status, why = check(bad_dtype, built.programs[models[0].key], models[0])
    assert status == RUN_ERROR and "float64" in why


# -- the op a test is about ------------------------------------------------------------------
def _graph_test(name: str, ops: list[str]) -> NodeTest:
    nodes = [helper.make_node(op, ["x"], ["x"]) for op in ops]
    return NodeTest(name, helper.make_model(helper.make_graph(nodes, name, [], [])), [])


def test_primary_op():
    tests = [_graph_test("test_sce_mean", ["SoftmaxCrossEntropyLoss"]),
             _graph_test("test_sce_mean_expanded", ["Constant", "Reshape", "LogSoftmax"]),
             _graph_test("test_max_example", ["Max"]),
             _graph_test("test_maxpool_2d", ["Constant", "MaxPool", "Max"]),
             _graph_test("test_layer_normalization_4d_expanded_ver18", ["ReduceMean", "Sub"])]
    by_name = {t.name: t for t in tests}
    ops = [primary_op(t, by_name) for t in tests]
    assert ops == ["SoftmaxCrossEntropyLoss"] * 2 + ["Max", "MaxPool", "LayerNormalization"]


# -- the report -------------------------------------------------------------------------------
RESULTS = [Result("test_a", "Abs", PASSED), Result("test_a2", "Abs", WRONG, "output 'y': 1 of 4 differ"),
           Result("test_b", "Add", REFUSED, "unsupported op"),
           Result("test_c", "Conv", BUILD_ERROR, "x.hxx:1:1: error"), Result("test_d", "Conv", CRASH, "TypeError"),
           Result("test_e", "Conv", RUN_ERROR, "killed by signal 11"), Result("test_f", "Conv", PASSED, bound=True)]


def test_counts():
    assert totals(RESULTS) == (2, 4, 1)
    assert summary_line(RESULTS) == ("2 passed (1 as given, 1 with shape inputs bound as constants), "
                                     "4 failed, 1 refused")
    table = by_op(RESULTS)
    assert list(table) == ["Abs", "Add", "Conv"]
    assert table["Conv"][PASSED] == 1 and sum(table["Conv"].values()) == 4


def test_reports_list_every_test_not_passing(tmp_path):
    md, js = write_reports(RESULTS, {"import": 1.0}, str(tmp_path))
    data = json.load(open(js))
    assert (data["passed"], data["failed"], data["refused"], data["total"]) == (2, 4, 1, 7)
    assert data["by_op"]["Conv"] == {BUILD_ERROR: 1, CRASH: 1, RUN_ERROR: 1, PASSED: 1}
    text = open(md).read()
    assert "| Conv | 4 | 1 | 3 | 0 |" in text
    for r in RESULTS:
        assert (f"| {r.name} | {r.op} | {r.status} |" in text) == (r.status != PASSED)


def test_readme_section_is_replaced_between_the_markers(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\nbefore\n{README_BEGIN}\nold figure\n{README_END}\nafter\n")
    update_readme(str(readme), readme_section(RESULTS, 7))
    text = readme.read_text()
    assert text.startswith("# x\n\nbefore\n") and text.endswith(f"{README_END}\nafter\n")
    assert "old figure" not in text and "**2 of 7**" in text and "| Abs | 2 | 1 | 1 | 0 |" in text
    update_readme(str(readme), readme_section(RESULTS[:1], 1))  # idempotent: one section
    assert readme.read_text().count(README_BEGIN) == 1


def test_the_command_line_run_reports_progress_per_phase(tmp_path, capsys):
    """run_suite(progress=True), as `python -m sofie.conformance` calls it: into a log (not a
    terminal) a line per quarter of each phase, on stderr; the results are unchanged."""
    run = run_suite(_tests(), jobs=1, batch_size=2, cache=str(tmp_path), log=lambda line: None, progress=True)
    assert [r.status for r in run.results] == [PASSED] * 4
    lines = capsys.readouterr().err.splitlines()
    assert [line for line in lines if line.startswith("import:")][-1] == "import: 4/4 (100%)"
    assert lines.count("build batches: 1/2 (50%)") == 1 and "build batches: 2/2 (100%)" in lines
    assert "run: 4/4 (100%)" in lines
