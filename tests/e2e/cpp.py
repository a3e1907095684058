"""Builds a user's C++ program against models compiled by `sofie-compile` (no Python path)."""

from __future__ import annotations

import os
import subprocess
import sys

BIN = os.path.dirname(sys.executable)


def sh(*cmd: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)


def compile_model(model: str, out: str, name: str, blas: str) -> list[str]:
    """sofie-compile MODEL into OUT; returns the flags --print-flags gives for the BLAS."""
    r = sh(f"{BIN}/sofie-compile", model, "-o", out, "--name", name, "--blas", blas)
    assert r.returncode == 0, r.stderr
    return sh(f"{BIN}/sofie-compile", model, "--blas", blas, "--print-flags").stdout.split()


def build_main(main_src: str, out: str, include_dirs: list[str], *flags: str) -> str:
    """g++ MAIN_SRC (written to OUT/main.cpp) with -I for each folder, in that order."""
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "main.cpp"), "w") as f:
        f.write(main_src)
    exe = os.path.join(out, "main")
    includes = [arg for d in include_dirs for arg in ("-I", d)]
    r = sh("g++", "-std=c++17", "-O2", *includes, os.path.join(out, "main.cpp"), "-o", exe, *flags)
    assert r.returncode == 0, r.stderr
    return exe


def build_program(model: str, out: str, name: str, blas: str, main_src: str, *cxxflags: str) -> str:
    """sofie-compile MODEL into OUT, then g++ MAIN_SRC with the flags --print-flags gives."""
    flags = compile_model(model, out, name, blas)
    return build_main(main_src, out, [out], *cxxflags, *flags)
