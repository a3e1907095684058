"""IR text as a model format: what `sofie-opt -o m.ir` writes, sofie-compile and sofie.compile read.

The text is lossless (weights in its resource section, see `sofie.ir.printer`), so a model
optimized by hand or by sofie-opt compiles to the same code as the model it came from.
"""

from __future__ import annotations

import os
import re
import sys

from sofie.errors import SofieError
from sofie.frontends.files import check_model_file
from sofie.frontends.names import module_name
from sofie.ir.core import Module
from sofie.ir.parser import parse
from sofie.ir.verifier import verify

EXTENSIONS = (".ir", ".sofie", ".mlir")
_SNIFF_BYTES = 1 << 16  # enough for a header of comments, like the lit tests' RUN lines
_STARTS_LIKE_IR = re.compile(r"\s*(//[^\n]*(\n\s*|$))*module\s*@")


def is_ir_text(path: str) -> bool:
    """By extension, or for other names by content: `module @` after blank lines and comments."""
    if os.path.splitext(path)[1].lower() in EXTENSIONS:
        return True
    try:
        with open(path, "rb") as f:
            head = f.read(_SNIFF_BYTES)
    except OSError:
        return False
    return sniff_ir_text(path, head)


def sniff_ir_text(path: str, head: bytes) -> bool:
    """By content only: the file's first bytes start like IR text."""
    return looks_like_ir_text(head.decode("utf-8", errors="replace"))


def looks_like_ir_text(text: str) -> bool:
    return bool(_STARTS_LIKE_IR.match(text))


def read_ir_text(path: str) -> Module:
    """IR text of any level (graph or low dialect) from a file or '-' (stdin), verified."""
    m = _parse(path)
    verify(m, "parsing")
    return m


def load_ir_text(path: str, name: str | None = None) -> Module:
    """IR text as a model to compile, at any level: graph IR goes through the whole pipeline,
    low IR (from sofie-opt --lower or --plan-memory) through what is left of it. `name`
    renames it (default: its @name)."""
    m = _parse(path)
    verify(m, "parsing")
    m.name = module_name(name or m.name)
    return m


def load_ir_string(text: str, source: str, name: str | None = None) -> Module:
    """IR text held elsewhere (a ROOT file's TObjString): as `load_ir_text`, `source` naming it."""
    m = parse(text, source=source)
    verify(m, "parsing")
    m.name = module_name(name or m.name)
    return m


def _parse(path: str) -> Module:
    if path == "-":
        return parse(sys.stdin.read(), source="<stdin>")
    check_model_file(path)
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise SofieError(f"{path}: no such file") from None
    except OSError as e:
        raise SofieError(f"{path}: {e.strerror}") from None
    except UnicodeDecodeError:
        raise SofieError(f"{path}: not IR text (binary data)") from None
    return parse(text, source=path)
