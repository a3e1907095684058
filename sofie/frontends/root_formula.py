"""A ROOT TFormula of one variable `x` (an external TNeuron's activation) as ONNX nodes.

The expression is ROOT's C++-like syntax: numbers, `x`, parameters `[0]`, `[1]`, ..., the
operators + - * / and ^ (power), and the usual functions, bare or as `TMath::` / `std::`
names. It is rewritten into Python syntax and walked with `ast`; anything else (other
variables, named parameters, TFormula's predefined `gaus`, `pol1`, ...) is refused by name.
"""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Sequence
from typing import Protocol

from sofie.errors import SofieError

# function name (lower case, prefix dropped) -> ONNX op, or a builder over the argument names
_UNARY = {"exp": "Exp", "log": "Log", "sqrt": "Sqrt", "abs": "Abs", "fabs": "Abs", "sin": "Sin", "cos": "Cos",
          "tan": "Tan", "tanh": "Tanh", "sinh": "Sinh", "cosh": "Cosh", "asin": "Asin", "acos": "Acos",
          "atan": "Atan", "asinh": "Asinh", "acosh": "Acosh", "atanh": "Atanh", "erf": "Erf",
          "floor": "Floor", "ceil": "Ceil", "sign": "Sign"}
_BINARY = {"pow": "Pow", "power": "Pow", "min": "Min", "max": "Max"}
_CONSTANTS = {"pi": math.pi, "e": math.e}
_OPS = {ast.Add: "Add", ast.Sub: "Sub", ast.Mult: "Mul", ast.Div: "Div", ast.Pow: "Pow"}


class Emitter(Protocol):
    """Where the nodes go."""

    def node(self, op: str, inputs: Sequence[str]) -> str:
        """Adds an ONNX node; returns its output's name."""

    def constant(self, value: float) -> str:
        """Adds a scalar constant of the graph's element type; returns its name."""


def formula_nodes(expression: str, params: Sequence[float], x: str, emit: Emitter, what: str) -> str:
    """Emits `expression` applied elementwise to tensor `x`; returns the result's name. `what`
    names the formula in errors (file, model, neuron)."""
    text = _python_syntax(expression, what)
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        raise SofieError(f"{what}: cannot read the formula '{expression}'") from None
    return _Walker(expression, list(params), x, emit, what).visit(tree.body)


def _python_syntax(expression: str, what: str) -> str:
    text = re.sub(r"\b(TMath|std)::", "", expression)
    named = re.search(r"\[([^\]0-9][^\]]*)\]", text)
    if named:
        raise SofieError(f"{what}: the formula '{expression}' has a named parameter [{named.group(1)}]; "
                         f"sofie reads numbered ones ([0], [1], ...)")
    text = re.sub(r"\[(\d+)\]", r"_p\1", text)
    text = re.sub(r"\bPi\(\)|\bpi\(\)", "pi", text)
    return text.replace("^", "**")


class _Walker:
    def __init__(self, expression: str, params: list[float], x: str, emit: Emitter, what: str) -> None:
        self.expression, self.params, self.x, self.emit, self.what = expression, params, x, emit, what

    def refuse(self, part: str) -> SofieError:
        return SofieError(f"{self.what}: the formula '{self.expression}' uses {part}, which sofie does not read "
                          f"(it reads x, numbers, [0].., + - * / ^ and {', '.join(sorted(_UNARY | _BINARY))})")

    def visit(self, node: ast.AST) -> str:
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float) and not isinstance(node.value, bool):
            return self.emit.constant(float(node.value))
        if isinstance(node, ast.Name):
            return self.name(node.id)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
            inner = self.visit(node.operand)
            return self.emit.node("Neg", [inner]) if isinstance(node.op, ast.USub) else inner
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            return self.emit.node(_OPS[type(node.op)], [self.visit(node.left), self.visit(node.right)])
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
            return self.call(node.func.id, node.args)
        raise self.refuse(f"'{ast.unparse(node)}'")

    def name(self, name: str) -> str:
        if name == "x":
            return self.x
        if name.startswith("_p") and name[2:].isdigit():
            k = int(name[2:])
            if k >= len(self.params):
                raise SofieError(f"{self.what}: the formula '{self.expression}' uses [{k}], "
                                 f"but the file holds {len(self.params)} parameter values")
            return self.emit.constant(float(self.params[k]))
        if name.lower() in _CONSTANTS:
            return self.emit.constant(_CONSTANTS[name.lower()])
        raise self.refuse(f"the name '{name}'")

    def call(self, func: str, args: list[ast.expr]) -> str:
        f = func.lower()
        if f in _UNARY and len(args) == 1:
            return self.emit.node(_UNARY[f], [self.visit(args[0])])
        if f == "sq" and len(args) == 1:
            a = self.visit(args[0])
            return self.emit.node("Mul", [a, a])
        if f == "log10" and len(args) == 1:
            return self.emit.node("Div", [self.emit.node("Log", [self.visit(args[0])]),
                                          self.emit.constant(math.log(10.0))])
        if f in _BINARY and len(args) == 2:
            return self.emit.node(_BINARY[f], [self.visit(args[0]), self.visit(args[1])])
        raise self.refuse(f"the function {func}() with {len(args)} argument(s)")
