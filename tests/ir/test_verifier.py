"""A broken IR is an error naming the op and the rule it breaks."""

from __future__ import annotations

import pytest

from sofie.errors import SofieError
from sofie.ir.parser import parse
from sofie.ir.verifier import verify

HEAD = "module @m {\n  func @main(%x: tensor<Nx4xf32>, %w: tensor<3x4xf32>) -> (tensor<Nx3xf32>) {\n"


def check(body: str, message: str, returns: str = "tensor<Nx3xf32>") -> None:
    m = parse(HEAD.replace("tensor<Nx3xf32>", returns) + body + "  }\n}\n")
    with pytest.raises(SofieError, match=message):
        verify(m, "test")


def test_result_type_must_follow_the_shape_rule() -> None:
    check('    %y = graph.gemm %x, %w {transB = 1} : tensor<Nx4xf32> loc("fc")\n    return %y\n',
          returns="tensor<Nx4xf32>",
          message=r"verifier after test: graph.gemm \(node 'fc'\): result types tensor<Nx4xf32> differ")


def test_shape_rule_failure_is_reported() -> None:
    check("    %y = graph.gemm %x, %w : tensor<Nx3xf32>\n    return %y\n", "inner dimensions differ")


def test_required_operand() -> None:
    check("    %y = graph.gemm %x, none {transB = 1} : tensor<Nx3xf32>\n    return %y\n",
          r"operand 1 \('B'\) is required")


def test_arity() -> None:
    check("    %y = graph.relu %x, %x : tensor<Nx4xf32>\n    return %y\n", "has 2 operands", "tensor<Nx4xf32>")


def test_required_attribute() -> None:
    m = parse("module @m {\n  func @main(%x: tensor<1x1x4x4xf32>) -> (tensor<1x1x2x2xf32>) {\n"
              "    %y = graph.max_pool %x {strides = [2, 2]} : tensor<1x1x2x2xf32>\n    return %y\n  }\n}\n")
    with pytest.raises(SofieError, match="required attribute 'kernel_shape' is missing"):
        verify(m)


def test_unknown_weight() -> None:
    check('    %c = graph.weight {ref = "nope"} : tensor<3xf32>\n    return %c\n', "unknown weight @nope",
          "tensor<3xf32>")


def test_valid_module_passes() -> None:
    verify(parse(HEAD + "    %y = graph.gemm %x, %w {transB = 1} : tensor<Nx3xf32>\n    return %y\n  }\n}\n"))
