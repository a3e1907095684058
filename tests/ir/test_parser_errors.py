"""IR text the parser must reject, each with a message naming the problem (and the line).

Every check in `sofie.ir.parser` has a test here: deleting one makes its test fail. The
function-signature checks (return count and types) matter most: nothing downstream compares
a function's outputs with the types its header declares, so a wrong text would otherwise
load silently with a signature other than the one written.
"""

from __future__ import annotations

import pytest

from sofie.errors import SofieError
from sofie.ir.parser import parse


def module(sig: str, *body: str) -> str:
    """`module @m` with one `func @main SIG { BODY }`; the body starts on line 3."""
    lines = ["module @m {", f"  func @main{sig} {{",
             *(f"    {b}" for b in body), "  }", "}"]
    return "\n".join(lines) + "\n"


SIG = "(%x: tensor<2xf32>) -> (tensor<2xf32>)"
ERRORS = {
    # the function signature: what `return` hands back must be what the header declares
    "return_type_differs": (
        module("(%x: tensor<2xf32>) -> (tensor<3xf32>)", "return %x"),
        "<text>: func @main returns tensor<2xf32> where it declares tensor<3xf32>"),
    "return_dtype_differs": (
        module("(%x: tensor<2xf32>) -> (tensor<2xi64>)", "return %x"),
        "<text>: func @main returns tensor<2xf32> where it declares tensor<2xi64>"),
    "return_type_differs_second": (
        module("(%x: tensor<2xf32>, %n: tensor<Nx2xf32>) -> (tensor<2xf32>, tensor<2xf32>)",
               "return %x, %n"),
        "<text>: func @main returns tensor<Nx2xf32> where it declares tensor<2xf32>"),
    "returns_fewer_than_declared": (
        module("(%x: tensor<2xf32>) -> (tensor<2xf32>, tensor<2xf32>)", "return %x"),
        "<text>: func @main returns 1 values, declares 2"),
    "returns_more_than_declared": (
        module(SIG, "return %x, %x"),
        "<text>: func @main returns 2 values, declares 1"),
    "returns_nothing_declares_one": (
        module(SIG, "return"),
        "<text>: func @main returns 0 values, declares 1"),
    # values: every use needs an earlier definition, every name one definition
    "operand_used_before_its_definition": (
        module(SIG, "%a = graph.relu %b : tensor<2xf32>", "%b = graph.relu %x : tensor<2xf32>", "return %a"),
        "<text>:3: use of undefined value %b"),
    "operand_never_defined": (
        module(SIG, "%a = graph.add %x, %nope : tensor<2xf32>", "return %a"),
        "<text>:3: use of undefined value %nope"),
    "result_redefines_an_argument": (
        module(SIG, "%x = graph.relu %x : tensor<2xf32>", "return %x"),
        "<text>:3: graph.relu: value %x defined twice"),
    "two_results_of_one_op_share_a_name": (
        module(SIG, "%a, %a = graph.dropout %x : tensor<2xf32>, tensor<2xi1>",
               "return %x"),
        "<text>:3: graph.dropout: value %a defined twice"),
    # result types: one per result
    "fewer_result_types_than_results": (
        module(SIG, "%a, %b = graph.relu %x : tensor<2xf32>", "return %a"),
        "<text>:3: graph.relu: 2 results but 1 result types"),
    "more_result_types_than_results": (
        module(SIG, "%a = graph.relu %x : tensor<2xf32>, tensor<2xf32>", "return %a"),
        "<text>:3: graph.relu: 1 results but 2 result types"),
    "result_without_type": (
        module(SIG, "%a = graph.relu %x", "return %a"),
        "<text>:3: graph.relu: 1 results but 0 result types"),
    # ops and attributes
    "unknown_op": (
        module(SIG, "%a = graph.frobnicate %x : tensor<2xf32>", "return %a"),
        "unknown op 'graph.frobnicate'"),
    "unknown_dialect": (
        module(SIG, "%a = mystery.relu %x : tensor<2xf32>", "return %a"),
        "unknown op 'mystery.relu'"),
    "attribute_of_wrong_kind": (
        module(SIG, '%a = graph.leaky_relu %x {alpha = "big"} : tensor<2xf32>', "return %a"),
        "<text>:3: graph.leaky_relu: attribute 'alpha' must be float, got 'big'"),
    # types and dims
    "negative_dim": (
        module("(%x: tensor<2x-1xf32>) -> (tensor<2xf32>)", "return %x"),
        "bad dimension '-1' in type 'tensor<2x-1xf32>' (an integer, a symbol or a product such as 4*N*P)"),
    "empty_dim": (
        module("(%x: tensor<2xxf32>) -> (tensor<2xf32>)", "return %x"),
        "bad dimension '' in type 'tensor<2xxf32>' (an integer, a symbol or a product such as 4*N*P)"),
    "fractional_dim": (
        module("(%x: tensor<2.5xf32>) -> (tensor<2xf32>)", "return %x"),
        "bad dimension '2.5' in type 'tensor<2.5xf32>' (an integer, a symbol or a product such as 4*N*P)"),
    "bad_dim_in_result_type": (
        module(SIG, "%a = graph.relu %x : tensor<2x?xf32>", "return %a"),
        "bad dimension '?' in type 'tensor<2x?xf32>' (an integer, a symbol or a product such as 4*N*P)"),
    "missing_element_type": (
        module("(%x: tensor<2x3>) -> (tensor<2xf32>)", "return %x"),
        "unknown element type '3'"),
    # weights
    "weight_with_symbolic_shape": (
        'module @m {\n  weight "w" : tensor<Nx2xf32> = dense<[1.0, 2.0]>\n}\n',
        "<text>: weight w has a symbolic shape (tensor<Nx2xf32>)"),
    "weight_with_too_many_values": (
        'module @m {\n  weight "w" : tensor<2xf32> = dense<[1.0, 2.0, 3.0]>\n}\n',
        '<text>:2: weight "w": has 3 values, its type tensor<2xf32> holds 2'),
    "weight_defined_twice": (
        'module @m {\n  weight "w" : tensor<1xf32> = dense<[1.0]>\n  weight "w" : tensor<1xf32> = dense<[2.0]>\n}\n',
        '<text>:3: weight "w" is declared twice'),
    # functions
    "function_defined_twice": (
        "module @m {\n  func @main(%x: tensor<2xf32>) -> (tensor<2xf32>) {\n    return %x\n  }\n"
        "  func @main(%y: tensor<3xf32>) -> (tensor<3xf32>) {\n    return %y\n  }\n}\n",
        "<text>: func @main defined twice"),
    # syntax
    "missing_brace": (
        "module @m {\n  func @main(%x: tensor<2xf32>) -> (tensor<2xf32>)\n    return %x\n  }\n}\n",
        "<text>:3:5: syntax error"),
}


@pytest.mark.parametrize("name", list(ERRORS))
def test_parse_error(name: str) -> None:
    text, message = ERRORS[name]
    with pytest.raises(SofieError) as e:
        parse(text)
    assert message in str(e.value)


def test_source_name_is_reported() -> None:
    """Errors name the file they come from (sofie-opt passes the path)."""
    with pytest.raises(SofieError, match=r"^model\.ir: func @main returns 1 values, declares 2$"):
        parse(module("(%x: tensor<2xf32>) -> (tensor<2xf32>, tensor<2xf32>)", "return %x"), source="model.ir")


def test_the_valid_texts_around_these_errors_parse() -> None:
    """The error texts are one change away from texts that parse (so each test fails for the
    reason it names, not an unrelated one)."""
    parse(module(SIG, "return %x"))
    parse(module("(%x: tensor<2xf32>, %n: tensor<Nx2xf32>) -> (tensor<2xf32>, tensor<Nx2xf32>)", "return %x, %n"))
    parse(module("(%x: tensor<2xf32>) -> (tensor<2xf32>, tensor<2xf32>)", "return %x, %x"))
    parse(module(SIG, "%b = graph.relu %x : tensor<2xf32>", "%a = graph.relu %b : tensor<2xf32>", "return %a"))
    parse(module(SIG, "%a, %b = graph.dropout %x : tensor<2xf32>, tensor<2xi1>",
                 "return %x"))
    parse(module(SIG, "%a = graph.leaky_relu %x {alpha = 0.5} : tensor<2xf32>", "return %a"))
    parse('module @m {\n  weight "w" : tensor<1x2xf32> = dense<[1.0, 2.0]>\n}\n')
