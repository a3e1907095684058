"""Shared fixtures: the PyTorch reference models exported to ONNX, and onnxruntime as oracle."""

from __future__ import annotations

import os
import subprocess

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("SOFIE_CACHE_DIR", os.path.join(ROOT, ".cache", "sofie"))
os.environ.setdefault("KERAS_BACKEND", "torch")  # whichever test imports keras first: no TensorFlow here

from tests.models import MODELS, export  # noqa: E402

# A test's folder gives these markers (pyproject.toml lists them): `make test-fast` leaves out
# the folders that compile and run whole models or suites in C++.
FOLDER_MARKERS = {"e2e": "e2e", "conformance": "conformance", "rdf": "rdf", "runtime": "runtime"}


def pytest_collection_modifyitems(config, items) -> None:
    tests = os.path.join(ROOT, "tests")
    for item in items:
        folder = os.path.relpath(str(item.path), tests).split(os.sep)[0]
        if folder in FOLDER_MARKERS:
            item.add_marker(getattr(pytest.mark, FOLDER_MARKERS[folder]))


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory) -> str:
    """All reference models as .onnx files (dynamic batch, input 'x', output 'y')."""
    d = tmp_path_factory.mktemp("models")
    for name in MODELS:
        export(name, str(d))
    return str(d)


def ort_run(path: str, *xs: np.ndarray) -> list[np.ndarray]:
    import onnxruntime as ort
    s = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    return s.run(None, {i.name: x for i, x in zip(s.get_inputs(), xs)})


def native_isa() -> str:
    """The widest vector ISA g++ -march=native targets here: avx512, avx2 (with FMA) or generic,
    as the runtime's #if chains choose their kernels."""
    macros = subprocess.run(["g++", "-march=native", "-dM", "-E", "-x", "c++", "/dev/null"],
                            capture_output=True, text=True, check=True).stdout
    if "__AVX512F__" in macros:
        return "avx512"
    return "avx2" if "__AVX2__" in macros and "__FMA__" in macros else "generic"
