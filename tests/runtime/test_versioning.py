"""Every runtime header spells the sofie version the same way: include guard, inline
namespace, relative includes (what lets two sofie versions share a translation unit; the
end-to-end check is tests/e2e/test_two_models.py)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from sofie.runtime.versioning import include_guard, runtime_namespace  # noqa: E402

HEADERS = sorted((REPO / "sofie" / "runtime" / "sofie_rt").glob("*.hxx"))


def test_namespace_and_guard_spellings() -> None:
    assert runtime_namespace("0.1.0") == "v0_1_0"
    assert runtime_namespace("1.2.0rc1+g3a") == "v1_2_0rc1_g3a"
    assert include_guard("blas", "0.1.0") == "SOFIE_RT_BLAS_HXX_V0_1_0"


@pytest.mark.parametrize("header", HEADERS, ids=lambda p: p.name)
def test_header_is_versioned(header: Path) -> None:
    text = header.read_text()
    guard, ns = include_guard(header.stem), runtime_namespace()
    assert not re.search(r"^#pragma once", text, re.M), "two copies of one version would both be read"
    lines = text.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("#"))
    assert lines[first:first + 2] == [f"#ifndef {guard}", f"#define {guard}"], \
        f"{header.name} must open with the include guard {guard} (sofie {ns})"
    assert lines[-1] == f"#endif  // {guard}"
    # every namespace opened is the versioned one; no other version is spelled
    assert not re.search(r"^namespace sofie::", text, re.M)
    opened = text.count(f"\nnamespace sofie {{\ninline namespace {ns} {{\nnamespace rt {{\n")
    assert opened == len(re.findall(r"^namespace sofie \{", text, re.M)) == text.count(f"}}  // namespace {ns}")
    other = set(re.findall(r"\bv\d+_\d+_\w+", text)) | set(re.findall(r"_HXX_(V\w+)", text))
    assert other <= {ns, ns.upper()}, f"{header.name} spells another version: {other - {ns, ns.upper()}}"
    # siblings by relative path: "sofie_rt/x.hxx" could resolve to another version's copy
    assert not re.search(r'#include "sofie_rt/', text)


def test_umbrella_header_includes_every_header() -> None:
    umbrella = (REPO / "sofie" / "runtime" / "sofie_rt" / "sofie_rt.hxx").read_text()
    included = set(re.findall(r'#include "(\w+\.hxx)"', umbrella))
    assert included == {h.name for h in HEADERS} - {"sofie_rt.hxx"}
