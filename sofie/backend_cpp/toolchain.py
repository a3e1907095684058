"""Compiler flags for each BLAS choice, and the g++ invocation that builds generated code."""

from __future__ import annotations

import importlib.util
import os
import shlex
import subprocess
import sys

from sofie.errors import SofieError

BLAS_CHOICES = ("openblas", "cblas", "eigen", "none")
CXX = os.environ.get("CXX", "g++")
_OPENBLAS_MISSING = ("BLAS 'openblas' needs the scipy-openblas32 wheel (pip install 'sofie[blas]' "
                     "or pip install scipy-openblas32), or choose --blas none")
_noted_fallback = False


def default_blas() -> str:
    """'openblas' when the scipy-openblas32 wheel is installed (the `blas` extra), else 'none'
    (the built-in kernels), said once per process on stderr: a core install still builds."""
    global _noted_fallback
    if importlib.util.find_spec("scipy_openblas32") is not None:
        return "openblas"
    if not _noted_fallback:
        _noted_fallback = True
        print("sofie: note: no scipy-openblas32 wheel, so BLAS 'none' (built-in kernels); "
              "pip install 'sofie[blas]' for OpenBLAS", file=sys.stderr)
    return "none"


def blas_flags(blas: str) -> list[str]:
    """Extra compile and link flags a program including the generated header needs."""
    if blas == "openblas":
        try:
            import scipy_openblas32 as sob
        except ImportError:
            raise SofieError(_OPENBLAS_MISSING) from None
        lib = sob.get_lib_dir()
        return [f"-I{sob.get_include_dir()}", f"-L{lib}", f"-l{sob.get_library()}", f"-Wl,-rpath,{lib}"]
    if blas == "cblas":
        return ["-lopenblas"] if _has_lib("openblas") else ["-lcblas", "-lblas"]
    if blas == "eigen":
        for inc in ("/usr/include/eigen3", "/usr/local/include/eigen3"):
            if os.path.isdir(inc):
                return [f"-I{inc}"]
        raise SofieError("BLAS 'eigen' needs Eigen 3 headers (Debian: apt-get install libeigen3-dev)")
    if blas == "none":
        return []
    raise SofieError(f"unknown BLAS '{blas}' (choose one of {', '.join(BLAS_CHOICES)})")


def _has_lib(name: str) -> bool:
    return any(os.path.exists(os.path.join(d, f"lib{name}.so"))
               for d in ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib", "/usr/local/lib"))


def run_compiler(args: list[str], what: str) -> None:
    cmd = [CXX, *args]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise SofieError(f"building {what} failed:\n$ {shlex.join(cmd)}\n{r.stderr[-4000:]}")
