"""The C++ path without Python: sofie-compile, a user program built with g++, the .dat checks."""

from __future__ import annotations

import os
import subprocess

import numpy as np
import pytest

from tests.conftest import ort_run
from tests.e2e.cpp import BIN, build_program, sh

MAIN = r'''
#include "mlp.hxx"
#include <cstdio>
#include <exception>
#include <vector>
int main(int argc, char** argv) {
  if (argc != 5) return 1;
  try {
    TMVA_SOFIE_mlp::Session s(argv[1], 8);
    const std::size_t batch = std::stoul(argv[4]);
    std::vector<float> x(batch * 200), y(batch * 200);
    std::FILE* f = std::fopen(argv[2], "rb");
    if (std::fread(x.data(), 4, x.size(), f) != x.size()) return 4;
    std::fclose(f);
    if (batch == 1) y = s.infer(x.data());            // the SOFIE-compatible form
    else s.infer(batch, x.data(), y.data());          // batched, chunked above max_batch = 8
    f = std::fopen(argv[3], "wb");
    std::fwrite(y.data(), 4, y.size(), f);
    std::fclose(f);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 3;
  }
  return 0;
}
'''


def build(model: str, out: str, blas: str) -> str:
    return build_program(model, out, "mlp", blas, MAIN, "-Wall", "-Wextra", "-Werror")


@pytest.mark.parametrize("blas", ["none", "openblas",
                                  pytest.param("cblas", marks=pytest.mark.needs_system_blas),
                                  pytest.param("eigen", marks=pytest.mark.needs_system_blas)])
def test_program_matches_onnxruntime(model_dir: str, tmp_path, blas: str) -> None:
    model = os.path.join(model_dir, "mlp_5x200.onnx")
    exe = build(model, str(tmp_path), blas)
    for batch in (1, 20):
        x = np.random.default_rng(batch).standard_normal((batch, 200)).astype(np.float32)
        x.tofile(tmp_path / "x.bin")
        r = sh(exe, str(tmp_path / "mlp.dat"), str(tmp_path / "x.bin"), str(tmp_path / "y.bin"), str(batch))
        assert r.returncode == 0, r.stderr
        y = np.fromfile(tmp_path / "y.bin", np.float32).reshape(batch, 200)
        # float32 sums in another order than onnxruntime's
        np.testing.assert_allclose(y, ort_run(model, x)[0], rtol=1e-4, atol=1e-5)


def test_output_folder_is_self_contained(model_dir: str, tmp_path) -> None:
    """With --blas none the folder builds with nothing but -I DIR, even after being moved."""
    out = tmp_path / "gen"
    build(os.path.join(model_dir, "mlp_5x200.onnx"), str(out), "none")
    moved = tmp_path / "elsewhere"
    os.rename(out, moved)
    r = sh("g++", "-std=c++17", "-O2", "-I", str(moved), str(moved / "main.cpp"), "-o", str(moved / "m2"))
    assert r.returncode == 0, r.stderr
    assert not any(n.endswith((".py", ".onnx")) for n in os.listdir(moved))


@pytest.fixture(scope="module")
def program(model_dir: str, tmp_path_factory) -> tuple[str, str]:
    out = tmp_path_factory.mktemp("dat")
    exe = build(os.path.join(model_dir, "mlp_5x200.onnx"), str(out), "none")
    np.zeros((1, 200), np.float32).tofile(out / "x.bin")
    return exe, str(out)


def run_with(program: tuple[str, str], dat: str) -> subprocess.CompletedProcess:
    exe, out = program
    return sh(exe, dat, f"{out}/x.bin", f"{out}/y.bin", "1")


def test_missing_weights_file(program) -> None:
    r = run_with(program, "/nonexistent/mlp.dat")
    assert r.returncode == 3 and "/nonexistent/mlp.dat" in r.stderr


@pytest.mark.parametrize("damage", ["zeroed", "flipped", "truncated", "header", "empty", "appended"])
def test_damaged_weights_file_is_refused(program, tmp_path, damage: str) -> None:
    data = bytearray(open(f"{program[1]}/mlp.dat", "rb").read())
    mid = len(data) // 2
    if damage == "zeroed":
        data[mid:mid + 64] = bytes(64)
    elif damage == "flipped":
        data[mid] ^= 0x01
    elif damage == "truncated":
        data = data[: len(data) - 100]
    elif damage == "header":
        data[0:8] = b"NOTSOFIE"
    elif damage == "empty":
        data = bytearray()
    else:
        data += b"\0" * 64
    bad = tmp_path / "bad.dat"
    bad.write_bytes(bytes(data))
    r = run_with(program, str(bad))
    assert r.returncode == 3, r.stderr
    assert str(bad) in r.stderr


def test_weights_of_another_model_are_refused(program, model_dir: str, tmp_path) -> None:
    """Same layout, other numbers: the fingerprint catches it."""
    import onnx
    from onnx import numpy_helper
    m = onnx.load(os.path.join(model_dir, "mlp_5x200.onnx"))
    t = m.graph.initializer[0]
    t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(t) * 2, t.name))
    onnx.save(m, tmp_path / "other.onnx")
    r = sh(f"{BIN}/sofie-compile", str(tmp_path / "other.onnx"), "-o", str(tmp_path), "--name", "mlp",
           "--blas", "none")
    assert r.returncode == 0, r.stderr
    r = run_with(program, str(tmp_path / "mlp.dat"))
    assert r.returncode == 3 and "different model" in r.stderr
