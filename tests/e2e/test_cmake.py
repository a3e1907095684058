"""A CMake project consumes a model through sofie_add_model() and runs it."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import ROOT, ort_run

PROJECT = """cmake_minimum_required(VERSION 3.16)
project(user LANGUAGES CXX)
add_subdirectory({root} sofie)
sofie_add_model(mlp_model MODEL {model} NAME mlp BLAS {blas})
add_executable(app main.cpp)
target_link_libraries(app PRIVATE mlp_model)
"""

MAIN = r"""
#include "mlp.hxx"
#include <cstdio>
int main(int, char** argv) {
  TMVA_SOFIE_mlp::Session s(argv[1]);
  std::vector<float> x(50);
  for (int i = 0; i < 50; ++i) x[i] = 0.02f * i - 0.5f;
  for (float v : s.infer(x.data())) std::printf("%.9g\n", v);
}
"""


@pytest.mark.parametrize("blas", ["none", "openblas"])
def test_cmake_project_builds_and_runs(model_dir: str, tmp_path, blas: str) -> None:
    model = os.path.join(model_dir, "linear_10x50.onnx")
    (tmp_path / "CMakeLists.txt").write_text(PROJECT.format(root=ROOT, model=model, blas=blas))
    (tmp_path / "main.cpp").write_text(MAIN)
    build = tmp_path / "build"
    # cmake and sofie-compile come from the test environment (cmake is a test dependency)
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    for cmd in (["cmake", "-S", str(tmp_path), "-B", str(build), "-DCMAKE_BUILD_TYPE=Release"],
                ["cmake", "--build", str(build), "-j2"]):
        r = subprocess.run(cmd, capture_output=True, text=True, env=env)
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    r = subprocess.run([str(build / "app"), str(build / "sofie_mlp" / "mlp.dat")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    x = (0.02 * np.arange(50, dtype=np.float32) - 0.5).astype(np.float32)[None]
    np.testing.assert_allclose(np.array(r.stdout.split(), np.float32), ort_run(model, x)[0][0], rtol=1e-4, atol=1e-5)
