"""The module name every frontend gives: it names NAME.hxx and the C++ namespace."""

from __future__ import annotations

import re


def module_name(name: str) -> str:
    """`name` as a C++ identifier: other characters become '_', a leading digit gets 'm_'."""
    s = re.sub(r"[^A-Za-z0-9_]", "_", name)
    return s if s and not s[0].isdigit() else "m_" + s
