"""Builds a user's C++ program against a model compiled by `sofie-compile` (no Python path)."""

from __future__ import annotations

import os
import subprocess
import sys

BIN = os.path.dirname(sys.executable)


def sh(*cmd: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)


def build_program(model: str, out: str, name: str, blas: str, main_src: str, *cxxflags: str) -> str:
    """sofie-compile MODEL into OUT, then g++ MAIN_SRC with the flags --print-flags gives."""
    r = sh(f"{BIN}/sofie-compile", model, "-o", out, "--name", name, "--blas", blas)
    assert r.returncode == 0, r.stderr
    flags = sh(f"{BIN}/sofie-compile", model, "--blas", blas, "--print-flags").stdout.split()
    with open(os.path.join(out, "main.cpp"), "w") as f:
        f.write(main_src)
    exe = os.path.join(out, "main")
    r = sh("g++", "-std=c++17", "-O2", *cxxflags, "-I", out, os.path.join(out, "main.cpp"), "-o", exe, *flags)
    assert r.returncode == 0, r.stderr
    return exe
