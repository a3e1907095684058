"""The package's public names and how its top-level modules depend on each other."""

from __future__ import annotations

import os
import subprocess
import sys

import sofie


def test_public_names() -> None:
    from sofie.compiled import CompiledModel
    from sofie.errors import SofieError
    from sofie.jit import compile
    assert sofie.compile is compile and sofie.CompiledModel is CompiledModel and sofie.SofieError is SofieError
    # sofie.api became driver, jit and compiled (a file test: an editable install of another
    # checkout may still answer find_spec)
    assert not os.path.exists(os.path.join(os.path.dirname(sofie.__file__), "api.py"))


def loaded_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print(' '.join(sorted(sys.modules)))"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(r.stdout.split())


def test_loading_a_compiled_model_needs_no_build_machinery() -> None:
    """CompiledModel opens a cached build: the frontends, passes, backend and pybind11 stay out."""
    build = {"sofie.driver", "sofie.jit", "sofie.backend_cpp", "sofie.frontends", "sofie.passes", "pybind11"}
    assert not build & loaded_after("import sofie")
    assert not build & loaded_after("from sofie import CompiledModel")
    assert {"sofie.driver", "sofie.jit"} <= loaded_after("from sofie import compile")
