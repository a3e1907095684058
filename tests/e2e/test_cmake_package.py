"""find_package(sofie) from sofie/cmake: what a project gets told when it misuses sofie_add_model
or sofie cannot be run, the version check, and `python -m sofie`, the way to find the package."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from tests.conftest import ROOT

CMAKE_DIR = os.path.join(ROOT, "sofie", "cmake")
MODEL = os.path.join(ROOT, "tests", "cpp", "particles.onnx")


def configure(tmp_path, body: str, *args: str) -> subprocess.CompletedProcess:
    """Configures a project holding `body` (no compiler: the errors come before any build)."""
    (tmp_path / "CMakeLists.txt").write_text(f"cmake_minimum_required(VERSION 3.16)\nproject(user LANGUAGES NONE)\n"
                                             f"{body}\n")
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    cmake = shutil.which("cmake", path=env["PATH"])
    return subprocess.run([cmake, "-S", str(tmp_path), "-B", str(tmp_path / "build"), f"-Dsofie_DIR={CMAKE_DIR}",
                           *args], capture_output=True, text=True, env=env)


@pytest.mark.parametrize("call, args, message", [
    ("sofie_add_model(m NAME x)", [], "sofie_add_model(m): MODEL <file> is required"),
    ("sofie_add_model(m MODEL nope.onnx)", [], "sofie_add_model(m): MODEL file '{tmp}/nope.onnx' does not exist"),
    ("sofie_add_model(m MODEL {model} BLAS none --dim P=3)", [], "unexpected arguments '--dim;P=3'"),
    ("sofie_add_model(m MODEL {model})", ["-DSOFIE_PYTHON_EXECUTABLE=/no/such/python"],
     "sofie: no sofie compiler found: no Python imports the sofie package of"),
])
def test_misuse_stops_configuration_with_a_clear_message(tmp_path, call: str, args: list[str], message: str) -> None:
    r = configure(tmp_path, "find_package(sofie CONFIG REQUIRED)\n" + call.format(model=MODEL), *args)
    assert r.returncode != 0
    flat = " ".join(r.stderr.split())  # CMake wraps long messages
    assert message.format(tmp=tmp_path) in flat, r.stderr
    if args:
        assert "/no/such/python" in r.stderr and "-DSOFIE_PYTHON_EXECUTABLE" in flat


def test_runtime_target_needs_no_python(tmp_path) -> None:
    """A project using only the runtime headers configures even when no Python runs sofie."""
    r = configure(tmp_path, "find_package(sofie CONFIG REQUIRED)\n"
                            "get_target_property(inc sofie::runtime INTERFACE_INCLUDE_DIRECTORIES)\n"
                            "message(STATUS \"runtime include: ${inc}\")",
                  "-DSOFIE_PYTHON_EXECUTABLE=/no/such/python")
    assert r.returncode == 0, r.stderr
    inc = r.stdout.split("runtime include: ", 1)[1].splitlines()[0]
    assert os.path.isfile(os.path.join(inc, "sofie_rt", "session.hxx"))


@pytest.mark.parametrize("request_, found", [("0.1", True), ("0.1.0 EXACT", True), ("0", False),
                                             ("0.2", False), ("1.0", False)])
def test_version_follows_version_py(tmp_path, request_: str, found: bool) -> None:
    """0.x: the same minor version (a bare "0" means 0.0), as CMake's SameMinorVersion."""
    r = configure(tmp_path, f"find_package(sofie {request_} CONFIG)\nmessage(STATUS \"found=${{sofie_FOUND}} "
                            "version=${sofie_VERSION}\")")
    assert r.returncode == 0, r.stderr
    assert f"found={1 if found else 0}" in r.stdout
    if found:
        assert "version=0.1.0" in r.stdout


def python_m_sofie(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sofie", *args], capture_output=True, text=True, cwd=ROOT)


def test_python_m_sofie_prints_the_package_folders() -> None:
    r = python_m_sofie("--cmakedir")
    assert r.returncode == 0 and r.stdout == CMAKE_DIR + "\n"
    assert os.path.isfile(os.path.join(r.stdout.strip(), "sofieConfig.cmake"))
    r = python_m_sofie("--includedir")
    assert r.returncode == 0 and os.path.isfile(os.path.join(r.stdout.strip(), "sofie_rt", "sofie_rt.hxx"))
    assert python_m_sofie("--default-blas").stdout.strip() in ("openblas", "none")


def test_python_m_sofie_help_and_bad_flags() -> None:
    r = python_m_sofie()
    assert r.returncode == 0 and "--cmakedir" in r.stdout and "find_package(sofie" in r.stdout
    r = python_m_sofie("--cmake-dir")
    assert r.returncode == 2 and "unrecognized arguments: --cmake-dir" in r.stderr
