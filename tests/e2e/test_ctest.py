"""The C++ tests of tests/cpp, through the repository's own CMakeLists.txt and ctest: models
consumed with sofie_add_model, Sessions default-constructed away from their weights."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import ROOT
from tests.cpp import reference


@pytest.mark.parametrize("name", sorted(reference.MODELS))
def test_stored_references_are_onnxruntime_outputs(name: str) -> None:
    """The .ref files the C++ tests compare with are what onnxruntime gives today."""
    np.testing.assert_allclose(reference.read_reference(name), reference.ort_outputs(name).ravel(),
                               rtol=1e-6, atol=1e-7)


def test_ctest_runs_the_cpp_tests(tmp_path) -> None:
    build = tmp_path / "build"
    # cmake and the Python that compiles the models come from the test environment
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    cmake = shutil.which("cmake", path=env["PATH"])
    for cmd in ([cmake, "-S", ROOT, "-B", str(build), "-DCMAKE_BUILD_TYPE=Release"],
                [cmake, "--build", str(build), "-j2"]):
        r = subprocess.run(cmd, capture_output=True, text=True, env=env)
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    r = subprocess.run([os.path.join(os.path.dirname(cmake), "ctest"), "--output-on-failure"],
                       capture_output=True, text=True, cwd=build, env=env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    passed = re.findall(r"Test +#\d+: (\S+) \.+ +Passed", r.stdout)
    assert sorted(passed) == ["lenet_matches_onnxruntime", "particles_matches_onnxruntime",
                              "weights_error_names_absolute_path"], r.stdout
