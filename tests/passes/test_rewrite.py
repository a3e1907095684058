"""The greedy pattern driver: fixpoint over chains, revisiting users, cleanup of orphans."""

from __future__ import annotations

from sofie.ir.core import Module, Operation
from sofie.ir.parser import parse
from sofie.ir.printer import print_module
from sofie.passes.rewrite import Pattern, Rewriter, apply_patterns, producer

TEXT = """module @m {
  weight "k" : tensor<2xf32> = dense<[1.0, 2.0]>
  func @main(%x: tensor<2xf32>) -> (tensor<2xf32>) {
    %k = graph.weight {ref = "k"} : tensor<2xf32>
    %a = graph.neg %x : tensor<2xf32>
    %b = graph.neg %a : tensor<2xf32>
    %c = graph.neg %b : tensor<2xf32>
    %d = graph.neg %c : tensor<2xf32>
    %e = graph.add %d, %k : tensor<2xf32>
    %f = graph.sub %e, %k : tensor<2xf32>
    return %f
  }
}
"""


class DoubleNegation(Pattern):
    root = "graph.neg"

    def match(self, op: Operation, module: Module) -> Operation | None:
        return producer(op.operands[0], "graph.neg")

    def rewrite(self, op: Operation, inner: Operation, rw: Rewriter) -> None:
        rw.replace(op, [inner.operands[0]])


class AddThenSub(Pattern):
    """(y + k) - k -> y: only matches once its operand chain was simplified."""

    root = "graph.sub"

    def match(self, op: Operation, module: Module) -> Operation | None:
        add = producer(op.operands[0], "graph.add")
        return add if add is not None and add.operands[1] is op.operands[1] else None

    def rewrite(self, op: Operation, add: Operation, rw: Rewriter) -> None:
        rw.replace(op, [rw.create("graph.identity", [add.operands[0]], loc=op.loc).result])


def test_fixpoint_and_cleanup() -> None:
    m = parse(TEXT)
    n = apply_patterns(m, [DoubleNegation(), AddThenSub()])
    text = print_module(m)
    assert n == 3
    assert "graph.neg" not in text and "graph.add" not in text and "graph.sub" not in text
    assert 'weight "k"' not in text  # orphaned weight removed with its readers
    assert "graph.identity %x" in text


def test_no_patterns_change_nothing() -> None:
    m2 = parse(TEXT)
    assert apply_patterns(m2, []) == 0
    assert print_module(m2) == TEXT
