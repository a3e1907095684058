"""`sofie-opt --view-graph FILE`: the module as a Graphviz picture (as MLIR's --view-op-graph).

One node per op, labelled with its op name and source node; one edge per tensor, labelled with
its type. Weights are left out (they would double the nodes and say nothing about the flow).
Fused ops are filled orange and say what was fused: a graph op's epilogue (`activation`, a
Conv's residual `Z`), a low loop nest's merged loops (`fused`). On the low dialect a kernel
writes its output operand instead of defining a result, so an edge runs from the kernel that
last wrote a tensor's storage to each kernel reading it.

FILE.dot (or .gv) is the DOT text; any other suffix (.svg, .png, .pdf) is rendered by
Graphviz's `dot` program, which must then be on PATH.
"""

from __future__ import annotations

import os
import shutil
import subprocess

from sofie.errors import SofieError
from sofie.ir.core import Function, Module, Operation, Value
from sofie.ir.liveness import is_kernel, storage_root
from sofie.ir.registry import CONSTANT_LIKE, VIEW
from sofie.passes.pass_manager import LOW, module_level

FUSED_FILL = "#f4a261"   # orange: an op carrying fused work
PLAIN_FILL = "#e9eef6"   # light blue-grey: every other op
IO_FILL = "#ffffff"
DOT_SUFFIXES = (".dot", ".gv")


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _type_label(v: Value) -> str:
    return str(v.type).removeprefix("tensor<").removesuffix(">")


def fused_part(op: Operation) -> str | None:
    """What fusion put into `op`, for its label; None for an op nothing was fused into."""
    parts = []
    if op.attrs.get("fused"):
        parts.append("fused loops: " + ", ".join(op.attrs["fused"]))
    if op.name == "graph.conv" and len(op.operands) > 3 and op.operands[3] is not None:
        parts.append("+ residual add")
    if op.attrs.get("activation"):
        parts.append(f"+ {op.attrs['activation']}")
    return "\n".join(parts) or None


def _node(node_id: str, op: Operation) -> str:
    label = op.name + (f"\n{op.loc}" if op.loc else "")
    extra = fused_part(op)
    if extra:
        return f"  {node_id} [label={_quote(label + chr(10) + extra)}, fillcolor={_quote(FUSED_FILL)}, penwidth=2];"
    return f"  {node_id} [label={_quote(label)}, fillcolor={_quote(PLAIN_FILL)}];"


def _edge(src: str, dst: str, v: Value) -> str:
    return f"  {src} -> {dst} [label={_quote(_type_label(v))}];"


def _function_dot(f: Function, prefix: str, low: bool) -> list[str]:
    lines: list[str] = []
    source: dict[int, str] = {}  # id(value or storage root) -> the node that produced it last
    for k, a in enumerate(f.args):
        node = f"{prefix}in{k}"
        lines.append(f"  {node} [label={_quote('input ' + (a.name or str(k)))}, shape=ellipse, "
                     f"fillcolor={_quote(IO_FILL)}];")
        source[id(a)] = node
    for i, op in enumerate(f.ops):
        if op.has_trait(CONSTANT_LIKE) or (low and (not is_kernel(op) or op.has_trait(VIEW))):
            continue  # weights; in the low dialect, allocations and views are storage, not work
        node = f"{prefix}op{i}"
        lines.append(_node(node, op))
        written = {id(v) for v in op.written_operands()} if low else set()
        seen: set[tuple[str, int]] = set()
        for v in op.operands:
            if v is None or id(v) in written:
                continue
            key = id(storage_root(v)) if low else id(v)
            if key in source and (source[key], key) not in seen:
                seen.add((source[key], key))
                lines.append(_edge(source[key], node, v))
        if low:
            for v in op.written_operands():
                source[id(storage_root(v))] = node
        for r in op.results:
            source[id(r)] = node
    for k, v in enumerate(f.outputs):
        node = f"{prefix}out{k}"
        lines.append(f"  {node} [label={_quote('output ' + (v.name or str(k)))}, shape=ellipse, "
                     f"fillcolor={_quote(IO_FILL)}];")
        key = id(storage_root(v)) if low else id(v)
        if key in source:
            lines.append(_edge(source[key], node, v))
    return lines


def to_dot(module: Module, title: str = "") -> str:
    """The module's functions as one DOT digraph (a cluster per function when there are several)."""
    low = module_level(module) == LOW
    heading = f"{module.name}" + (f" ({title})" if title else "")
    lines = ["digraph sofie {", f"  label={_quote(heading)}; labelloc=t; rankdir=TB;",
             '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=10];',
             '  edge [fontname="Helvetica", fontsize=8];']
    functions = list(module.functions.values())
    for n, f in enumerate(functions):
        body = _function_dot(f, f"f{n}_", low)
        if len(functions) == 1:
            lines += body
        else:
            lines += [f"  subgraph cluster_{n} {{", f"  label={_quote('@' + f.name)};", *body, "  }"]
    return "\n".join(lines + ["}"]) + "\n"


def write_graph(module: Module, path: str, title: str = "") -> None:
    """Writes the picture to `path`: DOT text for .dot/.gv, else rendered by `dot` in the
    format the suffix names."""
    text = to_dot(module, title)
    suffix = os.path.splitext(path)[1].lower()
    if suffix in DOT_SUFFIXES:
        with open(path, "w") as f:
            f.write(text)
        return
    if not suffix:
        raise SofieError(f"--view-graph {path}: give the file a suffix naming the format (.svg, .png, .pdf, .dot)")
    dot = shutil.which("dot")
    if dot is None:
        raise SofieError(f"--view-graph {path}: Graphviz's `dot` program is not on PATH (Debian: apt-get install "
                         f"graphviz); a .dot file name writes the DOT text without it")
    r = subprocess.run([dot, f"-T{suffix[1:]}", "-o", path], input=text, capture_output=True, text=True)
    if r.returncode != 0:
        raise SofieError(f"--view-graph {path}: dot failed: {r.stderr.strip() or f'exit code {r.returncode}'}")
