"""mkdocs hook: fills the generated tables into the pages at build time, from the checkout
being documented, so that they cannot drift from the code.

A page asks for a table with a marker line: `<!-- generated: ops -->` (the ONNX op table) or
`<!-- generated: cli sofie-compile -->` (a CLI's flags); see sofie/tools/reference.py.
"""

from __future__ import annotations

import os
import re
import sys

_MARKER = re.compile(r"^<!-- generated: (ops|cli [a-z-]+) -->$", re.M)


def on_config(config, **kwargs):
    # document the checkout mkdocs.yml sits in, not whatever sofie is installed
    repo = os.path.dirname(os.path.abspath(config.config_file_path))
    if repo not in sys.path:
        sys.path.insert(0, repo)
    return config


def on_page_markdown(markdown, page, config, files, **kwargs):
    from sofie.tools.reference import flag_table, op_table

    def table(m: re.Match) -> str:
        what = m.group(1)
        return op_table() if what == "ops" else flag_table(what.split()[1])

    return _MARKER.sub(table, markdown)
