"""print(parse(print(m))) == print(m) at every level, and the parser's errors."""

from __future__ import annotations

import os

import numpy as np
import pytest

from sofie.errors import SofieError
from sofie.frontends.onnx import load_onnx
from sofie.ir.core import Module
from sofie.ir.parser import parse, parse_type
from sofie.ir.printer import print_module
from sofie.ir.types import TensorType
from sofie.ir.verifier import verify
from sofie.pipeline import GRAPH_PIPELINE, run_pipeline
from tests.models import MODELS


def round_trips(text: str) -> None:
    m = parse(text)
    verify(m)
    assert print_module(m) == text


def round_trips_losslessly(m: Module) -> None:
    """The text round-trips and holds every weight's bytes."""
    text = print_module(m)
    round_trips(text)
    assert "elided" not in text
    back = parse(text)
    assert list(back.weights) == list(m.weights)
    for name, w in m.weights.items():
        assert back.weights[name].type == w.type
        assert back.weights[name].data.tobytes() == np.ascontiguousarray(w.data).tobytes(), name


@pytest.mark.parametrize("name", list(MODELS))
def test_every_level_round_trips(model_dir: str, name: str) -> None:
    m = load_onnx(os.path.join(model_dir, name + ".onnx"))
    round_trips_losslessly(m)
    m, _ = run_pipeline(m, GRAPH_PIPELINE)
    round_trips_losslessly(m)             # optimized graph dialect
    low, _ = run_pipeline(m, ["lower"])
    round_trips_losslessly(low)           # low dialect, allocations not yet placed
    low, _ = run_pipeline(low, ["fuse-loops", "plan-memory"])
    round_trips_losslessly(low)           # planned low dialect


def test_small_weights_are_inline_and_exact() -> None:
    text = """module @m {
  weight "c" : tensor<2x3xf32> = dense<[0.1, -2.5, 1e-10, inf, -inf, 3.4028235e+38]>
  weight "i" : tensor<2xi64> = dense<[-1, 200]>
  weight "big" : tensor<100x100xf32> = elided
  func @main(%x: tensor<Nx3xf32>) -> (tensor<Nx3xf32>) {
    %c = graph.weight {ref = "c"} : tensor<2x3xf32>
    %0 = graph.add %x, %x : tensor<Nx3xf32> loc("/a b/\\"quoted\\"")
    return %0
  }
}
"""
    round_trips(text)
    m = parse(text)
    np.testing.assert_array_equal(m.weights["c"].data.reshape(-1),
                                  np.array([0.1, -2.5, 1e-10, np.inf, -np.inf, 3.4028235e38], np.float32))
    assert m.weights["big"].data is None
    assert m.main.ops[1].loc == '/a b/"quoted"'


def test_types() -> None:
    assert parse_type("tensor<Nx3x224x224xf32>") == TensorType("f32", ("N", 3, 224, 224))
    assert parse_type("tensor<i64>") == TensorType("i64", ())
    assert str(TensorType("i1", (2,))) == "tensor<2xi1>"


@pytest.mark.parametrize("text, message", [
    ("module @m {\n  func @main() -> () {\n    return %y\n  }\n}\n", "undefined value %y"),
    ("module @m {\n  func @main(%x: tensor<2xf32>) -> (tensor<2xf32>) {\n    %y = graph.nonsense %x : "
     "tensor<2xf32>\n    return %y\n  }\n}\n", "unknown op 'graph.nonsense'"),
    ("module @m {\n  func @main(%x: tensor<2xf32>) -> (tensor<2xf32>) {\n    %y = graph.relu %x {bogus = 1} : "
     "tensor<2xf32>\n    return %y\n  }\n}\n", "unknown attribute 'bogus'"),
    ("module @m {\n  func @main(%x: tensor<2xf32>) -> (tensor<2xf32>) {\n    %y = graph.relu %x : "
     "tensor<2xq7>\n    return %y\n  }\n}\n", "unknown element type 'q7'"),
    ("module @m {\n  weight \"w\" : tensor<3xf32> = dense<[1.0]>\n}\n", "has 1 values"),
    ("module @m {\n  func @main(%x: tensor<2xf32>) -> (tensor<2xf32>) {\n    %y = graph.relu %x : "
     "tensor<2xf32>\n    %y = graph.relu %x : tensor<2xf32>\n    return %y\n  }\n}\n", "defined twice"),
    ("module @m {\n  func @main(%x: tensor<2xf32> -> (tensor<2xf32>) {\n  }\n}\n", "<text>:2:"),
])
def test_parse_errors_name_the_problem(text: str, message: str) -> None:
    with pytest.raises(SofieError, match=message):
        parse(text)
