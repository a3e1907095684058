"""A fixed subset of the ONNX node tests (tests/conformance/node_subset.txt: a few per op sofie
supports) through the conformance runner; each must pass. One compile batch per ~40 models,
cached by content, so a rerun after an unrelated change builds nothing."""

from __future__ import annotations

import os

import pytest

from sofie.conformance.collect import collect
from sofie.conformance.report import PASSED
from sofie.conformance.subset import read_subset
from sofie.conformance.suite import cache_root, run_suite
from sofie.ir.registry import onnx_op_types

SUBSET = os.path.join(os.path.dirname(__file__), "node_subset.txt")
NAMES, UNCOVERED = read_subset(SUBSET)


@pytest.fixture(scope="module")
def results() -> dict:
    tests = collect(names=set(NAMES), cache=cache_root())
    assert sorted(t.name for t in tests) == sorted(NAMES), "node_subset.txt names a test onnx does not have"
    run = run_suite(tests, jobs=1, log=lambda _: None)
    return {r.name: r for r in run.results}


@pytest.mark.parametrize("name", NAMES)
def test_node(results, name):
    r = results[name]
    assert r.status == PASSED, f"{name} ({r.op}): {r.status}: {r.reason}"


def test_every_supported_op_is_covered(results):
    """An op sofie imports has a test in the subset, or a reason in it why none passes
    (regenerate with python -m sofie.conformance --pick-subset tests/conformance/node_subset.txt)."""
    covered = {r.op for r in results.values()} | UNCOVERED
    assert sorted(set(onnx_op_types()) - covered) == []
