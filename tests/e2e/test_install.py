"""sofie installed like any Python package, then used from C++ alone: a wheel built from the
package sources goes into a fresh venv with only its core dependencies, and a CMake project outside
the repository finds it with find_package(sofie), compiles a model, and runs it.

Nothing of the repository is importable from the venv (no PYTHONPATH, another working directory),
so this checks the package data (CMake config, runtime headers) and the core dependency list."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import ROOT, ort_run

EXTRAS = ("torch", "onnxruntime", "h5py", "keras", "uproot", "ROOT", "dask", "scipy_openblas32", "onnxscript")

PROJECT = """cmake_minimum_required(VERSION 3.16)
project(user LANGUAGES CXX)
find_package(sofie 0.1 CONFIG REQUIRED)
sofie_add_model(particles_model MODEL particles.onnx OPTIONS --dim P=32)
add_executable(app main.cpp)
target_link_libraries(app PRIVATE particles_model)
"""

MAIN = r"""
#include "particles.hxx"
#include <cstdio>
#include <vector>
int main(int, char** argv) {
  std::vector<float> x(4 * 20 * 4);  // 4 events of 20 particles (at most 32: OPTIONS --dim P=32)
  std::FILE* f = std::fopen(argv[1], "rb");
  if (!f || std::fread(x.data(), sizeof(float), x.size(), f) != x.size()) return 1;
  std::fclose(f);
  TMVA_SOFIE_particles::Session s;  // the weights path comes from sofie_add_model
  std::vector<float> y(4 * 2);
  s.infer(4, 20, x.data(), y.data());
  for (float v : y) std::printf("%.9g\n", v);
}
"""


class Venv:
    def __init__(self, root: Path, wheel: Path) -> None:
        self.root, self.wheel = root, wheel
        self.bin = root / "venv" / "bin"
        # the repository must not leak in: no PYTHONPATH, and commands run outside it
        self.env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        self.env["PATH"] = f"{self.bin}{os.pathsep}/usr/bin{os.pathsep}/bin"

    def run(self, *cmd: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(list(cmd), capture_output=True, text=True, env=self.env, cwd=cwd or self.root)


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> Venv:
    """A wheel of pyproject.toml + sofie/ (copied: building in a tree writes into it), installed
    with its core dependencies into a fresh venv."""
    root = tmp_path_factory.mktemp("install")
    src = root / "src"
    shutil.copytree(os.path.join(ROOT, "sofie"), src / "sofie", ignore=shutil.ignore_patterns("__pycache__", "*.so"))
    shutil.copy(os.path.join(ROOT, "pyproject.toml"), src)
    # cheap but real: the test environment's pip (and setuptools, for the wheel) serve the venv,
    # which gets no pip of its own; its packages are the wheel and what the wheel requires
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root / "venv")], check=True)
    v = Venv(root, root / "dist" / "sofie-0.1.0-py3-none-any.whl")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    for cmd in ([*pip, "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(root / "dist"), str(src)],
                [*pip, "--python", str(v.bin / "python"), "install", "-q", "--no-compile", str(v.wheel)]):
        r = v.run(*cmd)
        assert r.returncode == 0, r.stderr[-3000:]
    return v


def test_wheel_carries_cmake_package_headers_and_core_dependencies(venv: Venv) -> None:
    with zipfile.ZipFile(venv.wheel) as z:
        names = set(z.namelist())
        metadata = z.read("sofie-0.1.0.dist-info/METADATA").decode()
    for f in ("sofie/cmake/sofieConfig.cmake", "sofie/cmake/sofieConfigVersion.cmake", "sofie/__main__.py",
              "sofie/runtime/sofie_rt/session.hxx", "sofie/runtime/sofie_rt/sofie_rt.hxx"):
        assert f in names
    requires = [line.split(": ", 1)[1] for line in metadata.splitlines() if line.startswith("Requires-Dist: ")]
    core = sorted(r.split(">")[0].split("=")[0] for r in requires if "extra ==" not in r)
    assert core == ["lark", "ml_dtypes", "networkx", "numpy", "onnx", "pybind11"]  # ml_dtypes: onnx needs it too
    demo = [r for r in requires if "extra == \"demo\"" in r]
    assert [r.split(">")[0] for r in demo] == ["onnxruntime"]
    assert any(r.startswith("scipy-openblas32") and "extra == \"blas\"" in r for r in requires)


def test_core_install_imports_no_extra(venv: Venv) -> None:
    """Every module of the package imports with the core dependencies alone, and loads no extra:
    frontends and tools import torch, h5py, uproot, ROOT... only when used."""
    code = ("import importlib, pkgutil, sys, sofie\n"
            "for m in pkgutil.walk_packages(sofie.__path__, 'sofie.'):\n"
            "    importlib.import_module(m.name)\n"
            "print(sofie.__file__, len(sys.modules))\n"
            f"print(sorted(m for m in {EXTRAS!r} if m in sys.modules))")
    r = venv.run(str(venv.bin / "python"), "-c", code)
    assert r.returncode == 0, r.stderr
    where, loaded = r.stdout.splitlines()
    assert where.startswith(str(venv.root / "venv")) and loaded == "[]"


def test_default_blas_without_the_wheel_is_none_and_openblas_is_refused(venv: Venv) -> None:
    r = venv.run(str(venv.bin / "sofie-compile"), "--print-flags")
    assert r.returncode == 0 and r.stdout.strip() == "", r.stderr
    assert r.stderr.count("\n") == 1 and "BLAS 'none'" in r.stderr and "sofie[blas]" in r.stderr
    r = venv.run(str(venv.bin / "sofie-compile"), os.path.join(ROOT, "examples", "lenet.onnx"), "-o",
                 str(venv.root / "out"), "--blas", "openblas")
    assert r.returncode == 2
    assert r.stderr.startswith("sofie-compile: error: BLAS 'openblas' needs the scipy-openblas32 wheel")
    assert "Traceback" not in r.stderr


CMAKE = shutil.which("cmake", path=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])


def configure_and_build(venv: Venv, project: Path, build: Path, cmake_dir: str) -> None:
    for cmd in ([CMAKE, "-S", str(project), "-B", str(build), f"-Dsofie_DIR={cmake_dir}", "-DCMAKE_BUILD_TYPE=Release"],
                [CMAKE, "--build", str(build), "-j2"]):
        r = venv.run(*cmd)
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]


@pytest.fixture(scope="module")
def project(venv: Venv, tmp_path_factory) -> Path:
    """A user's project, outside the repository, found sofie through `python -m sofie --cmakedir`."""
    r = venv.run(str(venv.bin / "python"), "-m", "sofie", "--cmakedir")
    assert r.returncode == 0
    cmake_dir = r.stdout.strip()
    assert cmake_dir.startswith(str(venv.root / "venv")) and not cmake_dir.startswith(ROOT)
    project = tmp_path_factory.mktemp("project")
    (project / "CMakeLists.txt").write_text(PROJECT)
    (project / "main.cpp").write_text(MAIN)
    shutil.copy(os.path.join(ROOT, "tests", "cpp", "particles.onnx"), project)
    configure_and_build(venv, project, project / "build", cmake_dir)
    return project


def test_find_package_project_outside_the_repository_runs_the_model(venv: Venv, project: Path, tmp_path) -> None:
    build = project / "build"
    cache = (build / "CMakeCache.txt").read_text()
    assert f"SOFIE_PYTHON_EXECUTABLE:FILEPATH={venv.bin / 'python3'}" in cache  # the venv's, found by itself
    x = np.random.default_rng(3).standard_normal((4, 20, 4)).astype(np.float32)
    elsewhere = tmp_path / "elsewhere"  # no particles.dat here
    elsewhere.mkdir()
    x.tofile(elsewhere / "x.bin")
    r = venv.run(str(build / "app"), "x.bin", cwd=elsewhere)
    assert r.returncode == 0, r.stderr
    got = np.array(r.stdout.split(), np.float32).reshape(4, 2)
    np.testing.assert_allclose(got, ort_run(str(project / "particles.onnx"), x)[0], rtol=1e-4, atol=1e-5)


def test_model_is_regenerated_when_it_or_the_installed_sofie_changes(venv: Venv, project: Path) -> None:
    def rebuild() -> bool:
        r = venv.run(CMAKE, "--build", str(project / "build"))
        assert r.returncode == 0, r.stdout[-3000:]
        return "sofie: compiling particles.onnx" in r.stdout

    assert not rebuild()
    os.utime(project / "particles.onnx")  # now: later than what the build wrote (ns timestamps)
    assert rebuild() and not rebuild()
    site = next((venv.root / "venv" / "lib").glob("python3*/site-packages/sofie"))
    os.utime(site / "passes" / "cse.py")  # as an upgrade of sofie would
    assert rebuild() and not rebuild()


def test_a_blas_the_venv_lacks_stops_configuration(venv: Venv, tmp_path) -> None:
    (tmp_path / "CMakeLists.txt").write_text("cmake_minimum_required(VERSION 3.16)\nproject(user LANGUAGES NONE)\n"
                                             "find_package(sofie CONFIG REQUIRED)\n"
                                             "sofie_add_model(m MODEL m.onnx BLAS openblas)\n")
    shutil.copy(os.path.join(ROOT, "tests", "cpp", "particles.onnx"), tmp_path / "m.onnx")
    cmake_dir = venv.run(str(venv.bin / "python"), "-m", "sofie", "--cmakedir").stdout.strip()
    r = venv.run(CMAKE, "-S", str(tmp_path), "-B", str(tmp_path / "build"), f"-Dsofie_DIR={cmake_dir}")
    assert r.returncode != 0
    assert ("sofie_add_model(m): BLAS 'openblas': sofie-compile: error: BLAS 'openblas' needs the scipy-openblas32 "
            "wheel (pip install 'sofie[blas]'") in " ".join(r.stderr.split())
