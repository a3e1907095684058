"""`make demo` installs what the demo needs and no more: sofie and onnxruntime, not the test
dependencies (torch alone is gigabytes); `make test` still installs them."""

from __future__ import annotations

import re
import subprocess

from tests.conftest import ROOT

HEAVY = ("torch", "onnxscript", "keras", "h5py", "uproot", "root", "dask", "pytest")


def dry_run(target: str, tmp_path) -> list[str]:
    """The commands `make <target>` runs, for a venv that does not exist yet."""
    # Under `make test` the environment carries MAKELEVEL, and a nested make would add
    # "Entering/Leaving directory" lines; --no-print-directory keeps the output the commands only.
    cmd = ["make", "--no-print-directory", "-n", target, f"VENV={tmp_path / 'venv'}"]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return r.stdout.splitlines()


def pip_installs(lines: list[str]) -> list[str]:
    return [line for line in lines if re.search(r"-m pip install .*-e ", line)]


def test_demo_installs_the_demo_extra_only(tmp_path) -> None:
    lines = dry_run("demo", tmp_path)
    assert pip_installs(lines) == [f"{tmp_path / 'venv'}/bin/python -m pip install -q -e '.[demo]'"]
    assert not any(name in line for line in lines for name in ("torch", ".[test]"))
    # it ends by telling how to put the CLIs on PATH
    assert "source" in lines[-2] and f"{tmp_path / 'venv'}/bin/activate" in lines[-2]
    assert "export PATH" in lines[-1]


def test_demo_extra_holds_no_heavy_dependency() -> None:
    # pyproject.toml's own line (tomllib is Python 3.11+; sofie supports 3.10)
    with open(f"{ROOT}/pyproject.toml") as f:
        line = re.search(r"^demo = \[(.*)\]", f.read(), re.M)
    assert line, "pyproject.toml has no one-line demo extra"
    demo = re.findall(r'"([^"]+)"', line.group(1))
    assert [re.split(r"[<>=\[ ;]", req, maxsplit=1)[0].lower() for req in demo] == ["onnxruntime"]
    assert not any(req.lower().startswith(heavy) for req in demo for heavy in HEAVY)


def test_make_test_still_installs_the_test_extra(tmp_path) -> None:
    assert pip_installs(dry_run("test", tmp_path)) == [f"{tmp_path / 'venv'}/bin/python -m pip install -q -e '.[test]'"]
