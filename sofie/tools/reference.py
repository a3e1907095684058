"""Reference tables for the documentation, generated from the code so that they cannot drift:
the ONNX ops the importer takes (from the op declarations, the importer's adapters, control
flow and ONNX's function-defined ops) and the flags of the CLIs (from their argparse parsers).

`docs/hooks/generated.py` puts them into the pages at `mkdocs build` time; `python -m
sofie.tools.reference ops|sofie-compile|sofie-opt` prints one.
"""

from __future__ import annotations

import argparse
import sys
from typing import NamedTuple

import onnx

from sofie.frontends.onnx import _ADAPTERS, MAX_OPSET, is_supported
from sofie.frontends.onnx_control_flow import CONTROL_FLOW
from sofie.ir.registry import OpDef, lookup_onnx, onnx_op_types


class OpRow(NamedTuple):
    onnx: str
    graph_op: str
    types: str
    note: str


_BY_KERNEL = "by kernel"  # element types without a declaration: lowering names the kernel's


def onnx_schema_names() -> list[str]:
    """Every op of ONNX's default domain, in any opset the installed onnx knows."""
    return sorted({s.name for s in onnx.defs.get_all_schemas_with_history() if s.domain == ""})


def accepted_ops() -> list[str]:
    """The default-domain op types the ONNX importer takes at the newest opset."""
    names = set(onnx_schema_names()) | set(onnx_op_types()) | set(_ADAPTERS) | set(CONTROL_FLOW)
    return sorted(n for n in names if is_supported(n, MAX_OPSET))


def _declared_types(opdef: OpDef) -> str:
    types = getattr(getattr(opdef, "spec", None), "types", None)
    return ", ".join(types) if types else _BY_KERNEL


def _row(op_type: str) -> OpRow:
    if op_type == "Constant":
        return OpRow(op_type, "graph.weight", "any", "becomes a weight")
    if op_type in CONTROL_FLOW:
        return OpRow(op_type, "(its body's ops)", "as its body",
                     "control flow, resolved at import: see [Control flow](formats.md#control-flow)")
    opdef = lookup_onnx(op_type)
    if opdef is not None:
        note = opdef.doc
        if op_type in _ADAPTERS:
            note = (note + "; " if note else "") + "older and variant forms through an import adapter"
        return OpRow(op_type, opdef.name, _declared_types(opdef), note)
    if op_type in _ADAPTERS:
        return OpRow(op_type, "(adapter)", _BY_KERNEL, "imported as other graph ops by an import adapter")
    return OpRow(op_type, "(function body)", "as its body",
                 f"ONNX defines it as a function (opset {MAX_OPSET}): its body is inlined at import; "
                 f"refused when the body uses an unsupported op")


def op_rows() -> list[OpRow]:
    return [_row(op) for op in accepted_ops()]


def _cell(text: str) -> str:
    return " ".join(text.replace("|", "\\|").split())


def _code(name: str) -> str:
    return f"`{name}`" if name.startswith("graph.") else name


def op_table() -> str:
    lines = ["| ONNX op | graph op | element types | notes |", "|---|---|---|---|"]
    lines += [f"| {r.onnx} | {_code(r.graph_op)} | {r.types} | {_cell(r.note)} |" for r in op_rows()]
    return "\n".join(lines) + "\n"


def cli_parsers() -> dict[str, argparse.ArgumentParser]:
    from sofie.tools import compile as compile_cli
    from sofie.tools import opt as opt_cli
    return {"sofie-compile": compile_cli._parser(), "sofie-opt": opt_cli._parser()}


def _flag(action: argparse.Action) -> str:
    names = ", ".join(action.option_strings) or (action.metavar or action.dest)
    if action.nargs == 0:
        return f"`{names}`"
    value = action.metavar or (("{" + ",".join(action.choices) + "}") if action.choices else action.dest.upper())
    return f"`{names} {value}`" if action.option_strings else f"`{names}`"


def _help(action: argparse.Action) -> str:
    text = action.help or ""
    if action.option_strings and action.nargs != 0 and action.default not in (None, [], argparse.SUPPRESS) \
            and "default" not in text:
        text += f" (default: {action.default})"
    if action.option_strings and isinstance(action.default, list):
        text += " (repeatable)" if "repeatable" not in text else ""
    return _cell(text)


def flag_table(prog: str) -> str:
    """The arguments of `prog` (sofie-compile, sofie-opt) as a markdown table, in parser order."""
    parser = cli_parsers()[prog]
    lines = ["| argument | meaning |", "|---|---|"]
    lines += [f"| {_flag(a)} | {_help(a)} |" for a in parser._actions if not isinstance(a, argparse._HelpAction)]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    what = (sys.argv[1:] if argv is None else argv) or ["ops"]
    sys.stdout.write(op_table() if what[0] == "ops" else flag_table(what[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
