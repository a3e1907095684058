"""Reads the text form (see `sofie.ir.printer`) back into a module, for every dialect."""

from __future__ import annotations

import re
from typing import Any

from lark import Lark, Token, Transformer, UnexpectedInput

from sofie.errors import SofieError
from sofie.ir.core import Function, Module, Operation, Value
from sofie.ir.registry import lookup
from sofie.ir.types import Dim, TensorType, dim_factors, make_dim
from sofie.ir.weight_text import decode_blob, dense_array

GRAMMAR = r"""
start: module resources?
module: "module" "@" NAME attrdict? "{" weight* func* "}"
weight: "weight" STRING ":" TYPE "=" wvalue
wvalue: "elided"                         -> elided
      | "dense_resource"                 -> resource
      | "dense" "<" "[" [scalar ("," scalar)*] "]" ">"  -> dense
func: "func" "@" NAME "(" [arg ("," arg)*] ")" "->" "(" [TYPE ("," TYPE)*] ")" ("attributes" attrdict)? "{" op* ret "}"
arg: VALUE ":" TYPE
op: (results "=")? OPNAME [operand ("," operand)*] attrdict? (":" TYPE ("," TYPE)*)? loc?
results: VALUE ("," VALUE)*
operand: VALUE | "none" -> none
ret: "return" [VALUE ("," VALUE)*]
attrdict: "{" [attr ("," attr)*] "}"
attr: ANAME "=" avalue
?avalue: scalar | STRING -> string | "[" [avalue ("," avalue)*] "]" -> list
?scalar: SIGNED_INT -> int
       | FLOATLIT -> float
loc: "loc" "(" STRING ")"
resources: "{-#" "resources" ":" "{" [blob ("," blob)*] "}" "#-}"
blob: STRING ":" STRING

TYPE: /tensor<[^>]*>/
VALUE: /%[A-Za-z0-9_.]+/
OPNAME.2: /[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_.]*/
NAME: /[A-Za-z_][A-Za-z0-9_.]*/
ANAME: /[A-Za-z_][A-Za-z0-9_.]*/
FLOATLIT.2: /[-+]?(\d+\.\d*([eE][-+]?\d+)?|\d+[eE][-+]?\d+|inf|nan)/
STRING: /"[^"\\]*(\\.[^"\\]*)*"/
COMMENT: /\/\/[^\n]*/
%import common.SIGNED_INT
%import common.WS
%ignore WS
%ignore COMMENT
"""

_PARSER = Lark(GRAMMAR, parser="lalr", maybe_placeholders=True)


def parse_type(text: str) -> TensorType:
    m = re.fullmatch(r"tensor<(.*)>", text)
    if not m:
        raise SofieError(f"bad type '{text}'")
    parts = m.group(1).split("x")
    dims: list[Dim] = []
    for p in parts[:-1]:
        if not re.fullmatch(r"\d+|(\d+\*)?[A-Za-z_][A-Za-z0-9_]*(\*[A-Za-z_][A-Za-z0-9_]*)*", p):
            raise SofieError(f"bad dimension '{p}' in type '{text}' (an integer, a symbol or a "
                             f"product such as 4*N*P)")
        dims.append(int(p) if p.isdigit() else make_dim(*dim_factors(p)))
    return TensorType(parts[-1], tuple(dims))


def _unquote(tok: str) -> str:
    return re.sub(r"\\(.)", r"\1", tok[1:-1])


class _Literals(Transformer):
    def int(self, items):
        return int(items[0])

    def float(self, items):
        return float(items[0])

    def string(self, items):
        return _unquote(items[0])

    def list(self, items):
        return [i for i in items if i is not None]

    def attr(self, items):
        return (str(items[0]), items[1])

    def attrdict(self, items):
        return dict(i for i in items if i is not None)


def parse(text: str, source: str = "<text>") -> Module:
    """Parses IR text; errors name the source, line and column."""
    try:
        tree = _Literals().transform(_PARSER.parse(text))
    except UnexpectedInput as e:
        raise SofieError(f"{source}:{e.line}:{e.column}: syntax error: "
                         f"{e.get_context(text).splitlines()[0].strip()!r}") from None
    module, resources = (tree.children + [None])[:2]
    builder = _Builder(source, resources)
    m = builder.module(module)
    builder.check_all_blobs_used()
    return m


class _Builder:
    def __init__(self, source: str, resources) -> None:
        self.source = source
        self.blobs: dict[str, Token] = {}  # the resource section, entries taken as weights claim them
        for blob in resources.children if resources is not None else []:
            if blob is None:
                continue
            key, text = blob.children
            name = _unquote(key)
            if name in self.blobs:
                raise SofieError(f'{source}:{key.line}: resource "{name}" appears twice')
            self.blobs[name] = text

    def check_all_blobs_used(self) -> None:
        if self.blobs:
            name, text = next(iter(self.blobs.items()))
            raise SofieError(f'{self.source}:{text.line}: resource "{name}" belongs to no weight '
                             f'(expected a declaration \'weight "{name}" : <type> = dense_resource\')')

    def module(self, node) -> Module:
        children = list(node.children)
        m = Module(str(children[0]))
        for c in children[1:]:
            if isinstance(c, dict):
                m.attrs = c
            elif c.data == "weight":
                self.weight(m, c)
            elif c.data == "func":
                f = self.function(m, c)
                if f.name in m.functions:  # add_function would silently replace the first
                    raise SofieError(f"{self.source}: func @{f.name} defined twice")
                m.add_function(f)
        return m

    def weight(self, m: Module, node) -> None:
        name, ty, value = _unquote(node.children[0]), parse_type(node.children[1]), node.children[2]
        if not ty.is_static:
            raise SofieError(f"{self.source}: weight {name} has a symbolic shape ({ty})")
        what = f'{self.source}:{node.children[0].line}: weight "{name}"'
        if name in m.weights:  # add_weight would rename the second: refs could not reach it
            raise SofieError(f"{what} is declared twice")
        data = None
        if value.data == "dense":
            data = dense_array([v for v in value.children if v is not None], ty, what)
        elif value.data == "resource":
            if name not in self.blobs:
                raise SofieError(f'{what} is declared dense_resource, but the resource section '
                                 f'has no entry "{name}"')
            blob = self.blobs.pop(name)
            data = decode_blob(_unquote(blob), ty, f'{self.source}:{blob.line}: weight "{name}"')
        m.add_weight(name, data, ty)

    def function(self, m: Module, node) -> Function:
        children = list(node.children)
        name = str(children[0])
        args: list[Value] = []
        out_types: list[TensorType] = []
        attrs: dict[str, Any] = {}
        ops, ret = [], None
        for c in children[1:]:
            if c is None:
                continue
            if isinstance(c, dict):
                attrs = c
            elif isinstance(c, Token) and c.type == "TYPE":
                out_types.append(parse_type(c))
            elif c.data == "arg":
                args.append(Value(parse_type(c.children[1]), str(c.children[0])[1:]))
            elif c.data == "op":
                ops.append(c)
            elif c.data == "ret":
                ret = c
        f = Function(name, args, attrs)
        f.module = m
        scope = {a.name: a for a in args}
        for o in ops:
            f.append(self.op(o, scope))
        f.set_outputs([self.use(scope, t) for t in ret.children if t is not None], out_types)
        for v, t in zip(f.outputs, out_types):
            if v.type != t:
                raise SofieError(f"{self.source}: func @{name} returns {v.type} where it declares {t}")
        if len(f.outputs) != len(out_types):
            raise SofieError(f"{self.source}: func @{name} returns {len(f.outputs)} values, "
                             f"declares {len(out_types)}")
        return f

    def use(self, scope: dict[str, Value], tok: Token) -> Value:
        name = str(tok)[1:]
        if name not in scope:
            raise SofieError(f"{self.source}:{tok.line}: use of undefined value %{name}")
        return scope[name]

    def op(self, node, scope: dict[str, Value]) -> Operation:
        results, opname, operands, attrs, types, loc = [], None, [], {}, [], ""
        for c in node.children:
            if c is None:
                continue
            if isinstance(c, dict):
                attrs = c
            elif isinstance(c, Token) and c.type == "OPNAME":
                opname = c
            elif isinstance(c, Token) and c.type == "TYPE":
                types.append(parse_type(c))
            elif c.data == "results":
                results = [str(t)[1:] for t in c.children]
            elif c.data == "operand":
                operands.append(self.use(scope, c.children[0]))
            elif c.data == "none":
                operands.append(None)
            elif c.data == "loc":
                loc = _unquote(c.children[0])
        where = f"{self.source}:{opname.line}: {opname}"
        opdef = lookup(str(opname))
        if len(types) != len(results):
            raise SofieError(f"{where}: {len(results)} results but {len(types)} result types")
        op = Operation(str(opname), operands, types, opdef.normalize_attrs(attrs, where), loc, results)
        for r in op.results:
            if r.name in scope:
                raise SofieError(f"{where}: value %{r.name} defined twice")
            scope[r.name] = r
        return op
