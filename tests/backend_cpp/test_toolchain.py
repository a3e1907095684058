"""The default BLAS follows what is installed: OpenBLAS from the scipy-openblas32 wheel (the
`blas` extra) when it is there, else the built-in kernels, said once; asking for openblas
without the wheel is a user error naming the extra."""

from __future__ import annotations

import importlib.util
import sys

import pytest

from sofie.backend_cpp import toolchain
from sofie.errors import SofieError


def test_default_is_openblas_with_the_wheel(capsys) -> None:
    assert importlib.util.find_spec("scipy_openblas32") is not None  # a test dependency
    assert toolchain.default_blas() == "openblas"
    assert capsys.readouterr().err == ""


def test_default_is_none_without_the_wheel_noted_once(monkeypatch, capsys) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "scipy_openblas32"
                        else real(name, *a))
    monkeypatch.setattr(toolchain, "_noted_fallback", False)
    assert toolchain.default_blas() == "none"
    assert toolchain.default_blas() == "none"
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "BLAS 'none'" in err and "pip install 'sofie[blas]'" in err


def test_openblas_without_the_wheel_names_the_extra(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "scipy_openblas32", None)  # makes the import fail
    with pytest.raises(SofieError, match=r"needs the scipy-openblas32 wheel \(pip install 'sofie\[blas\]'"):
        toolchain.blas_flags("openblas")
