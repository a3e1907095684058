"""The documentation site: it builds with no warning, its generated tables cover what the code
accepts, its stats.json table covers a real stats.json, and the pass walk-through works as
written (its files dropped into a copy of the checkout, its commands run)."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import sys

import onnx
import pytest

from sofie.frontends.onnx import MAX_OPSET, is_supported
from sofie.ir.registry import onnx_op_types
from sofie.tools.reference import cli_parsers

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DOCS = os.path.join(ROOT, "docs")
BIN = os.path.dirname(sys.executable)


def titled_blocks(page: str) -> dict[str, str]:
    """The fenced code blocks of a page that carry a title="..." attribute, by title."""
    text = open(os.path.join(DOCS, page)).read()
    return {m.group(1): m.group(2) for m in re.finditer(r'^```\w* title="([^"]+)"\n(.*?)^```$', text, re.M | re.S)}


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> str:
    out = str(tmp_path_factory.mktemp("site"))
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    r = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", os.path.join(ROOT, "mkdocs.yml"),
                        "-d", out], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-4000:]
    assert "WARNING" not in r.stderr, r.stderr[-4000:]
    return out


def page_html(site: str, page: str) -> str:
    return open(os.path.join(site, page, "index.html")).read()


def test_site_builds_with_no_warning(site: str) -> None:
    assert os.path.isfile(os.path.join(site, "index.html"))


def test_op_table_lists_every_op_the_importer_accepts(site: str) -> None:
    schemas = {s.name for s in onnx.defs.get_all_schemas_with_history() if s.domain == ""}
    accepted = {op for op in schemas | set(onnx_op_types()) if is_supported(op, MAX_OPSET)}
    assert {"Conv", "Gemm", "Loop", "Constant", "QLinearConv", "Mish"} <= accepted
    cells = set(re.findall(r"<tr>\s*<td>([A-Za-z0-9]+)</td>", page_html(site, "guide/ops")))
    assert sorted(accepted - cells) == []


def test_cli_tables_list_every_flag(site: str) -> None:
    codes = re.findall(r"<code>([^<]*)</code>", page_html(site, "guide/cli"))
    tokens = {t for c in codes for t in re.split(r"[ ,]+", html.unescape(c))}
    for prog, parser in cli_parsers().items():
        flags = [s for a in parser._actions for s in a.option_strings if s not in ("-h", "--help")]
        assert len(flags) > 5, prog
        missing = [f for f in flags if f not in tokens]
        assert missing == [], (prog, missing)


def documented_stats() -> set[str]:
    text = open(os.path.join(DOCS, "guide", "stats.md")).read()
    return set(re.findall(r"^\| `([a-z_.\[\]]+)` \|", text, re.M))


def key_paths(obj: dict, prefix: str, documented: set[str]) -> list[str]:
    """Every key of a stats.json as a path (`symbols.batch`, `passes[].name`); a dict is a record
    to descend into when the page documents keys under it, else a map of data (op counts)."""
    paths = []
    for k, v in obj.items():
        p = prefix + k
        paths.append(p)
        if isinstance(v, dict) and any(d.startswith(p + ".") for d in documented):
            paths += key_paths(v, p + ".", documented)
        elif isinstance(v, list) and v and isinstance(v[0], dict):
            for item in v:
                paths += key_paths(item, p + "[].", documented)
    return paths


def test_every_stats_json_key_is_documented(tmp_path) -> None:
    env = checkout_env()
    r = subprocess.run([sys.executable, "-m", "sofie.tools.compile", os.path.join(ROOT, "examples", "lenet.onnx"),
                        "-o", str(tmp_path), "--name", "lenet", "--stats", "--blas", "none"],
                       capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    stats = json.load(open(tmp_path / "lenet.stats.json"))
    documented = documented_stats()
    actual = set(key_paths(stats, "", documented))
    assert sorted(actual - documented) == [], "keys of stats.json missing from docs/guide/stats.md"
    assert sorted(documented - actual) == [], "docs/guide/stats.md documents keys stats.json lacks"


def checkout_env() -> dict[str, str]:
    """The CLIs of the test environment, importing this checkout's sofie."""
    return dict(os.environ, PATH=BIN + os.pathsep + os.environ.get("PATH", ""),
                PYTHONPATH=os.pathsep.join(p for p in (ROOT, os.environ.get("PYTHONPATH")) if p))


def test_cpp_example_builds_and_runs(tmp_path) -> None:
    """The C++ API page's program, with the page's commands."""
    blocks = titled_blocks(os.path.join("guide", "cpp.md"))
    page = open(os.path.join(DOCS, "guide", "cpp.md")).read()
    assert "`sofie-compile model.onnx -o out --name mlp`" in page
    shutil.copy(os.path.join(ROOT, "examples", "lenet.onnx"), tmp_path / "model.onnx")
    (tmp_path / "main.cpp").write_text(blocks["main.cpp"])
    script = "sofie-compile model.onnx -o out --name mlp\n" + blocks["build"]
    r = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, capture_output=True, text=True,
                       env=checkout_env(), timeout=600)
    assert r.returncode == 0, r.stderr[-4000:]


@pytest.fixture
def checkout_copy(tmp_path) -> str:
    """sofie/ and the lit configuration of tests/passes, copied: the walk-through's files go there."""
    shutil.copytree(os.path.join(ROOT, "sofie"), tmp_path / "sofie", ignore=shutil.ignore_patterns("__pycache__"))
    os.makedirs(tmp_path / "tests" / "passes")
    shutil.copy(os.path.join(ROOT, "tests", "passes", "lit.cfg.py"), tmp_path / "tests" / "passes")
    return str(tmp_path)


def test_pass_walkthrough_works_as_written(checkout_copy: str) -> None:
    blocks = titled_blocks(os.path.join("dev", "pass.md"))
    module, ir_in, expected, check = (blocks[t] for t in ("sofie/passes/cancel_double_neg.py", "neg.ir",
                                                          "expected output", "tests/passes/cancel_double_neg.ir"))
    page = open(os.path.join(DOCS, "dev", "pass.md")).read()
    assert "\nsofie-opt neg.ir --cancel-double-neg\n" in page
    for path, text in (("sofie/passes/cancel_double_neg.py", module), ("neg.ir", ir_in),
                       ("tests/passes/cancel_double_neg.ir", check)):
        with open(os.path.join(checkout_copy, path), "w") as f:
            f.write(text)
    env = dict(os.environ, PYTHONPATH=checkout_copy)
    # the new pass is a flag of sofie-opt with no other edit: discovered from its module
    r = subprocess.run([sys.executable, "-m", "sofie.tools.opt", "neg.ir", "--cancel-double-neg"],
                       cwd=checkout_copy, capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout == expected
    r = subprocess.run([os.path.join(BIN, "lit"), "-v", os.path.join(checkout_copy, "tests", "passes",
                                                                     "cancel_double_neg.ir")],
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    assert "PASS: sofie-passes :: cancel_double_neg.ir" in r.stdout, r.stdout
