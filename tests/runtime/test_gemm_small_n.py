"""gemm_small_n (sofie_rt/gemm_small_n.hxx, the GEMM for few columns that vectorizes over rows)
against numpy, in the builds that choose its two kernels: -march=native (AVX-512 on the
development host), -mavx2 -mfma and no -march (both the portable loop).

Shapes cover every row tail of the 48-row panel and of its 16-row vectors (M = 1, 15, 16, 17,
47, 48, 49, 100), every column count of a tile (N = 1..8) and uneven splits into tiles (9, 49,
63), K of 0 (C = f(bias + residual)), 1, and over one block (1025, 2100: partial sums stored,
read back and added to), padded leading dimensions of B and C (C's padding must stay
untouched), and the epilogue: bias per row, residual, ReLU. A is packed by the compile-time
packer, sofie.lowering.gemm_pack.packed_a_columns.
Tolerance: atol 4e-5 sqrt(K) (float32 sums of K terms of magnitude <= 1), rtol 1e-5.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from sofie.lowering.gemm_pack import packed_a_columns  # noqa: E402

CPP = Path(__file__).resolve().parent / "cpp"
BUILDS = {"native": ["-O3", "-march=native"], "avx2": ["-O2", "-mavx2", "-mfma"], "generic": ["-O2"]}
SENTINEL = 12345.0

# (M, N, K, ldb pad, ldc pad, bias, residual, relu)
CASES = [(m, 7, 33, 0, 0, 1, 0, 1) for m in (1, 15, 16, 17, 47, 48, 49, 100)]
CASES += [(50, n, 40, 0, 0, 0, 1, 0) for n in range(1, 10)]
CASES += [(96, 49, 300, 3, 5, 1, 1, 1), (64, 63, 64, 0, 0, 1, 0, 0), (20, 16, 1025, 0, 0, 1, 1, 1),
          (33, 5, 2100, 2, 0, 0, 0, 1), (10, 6, 1, 0, 0, 1, 0, 0), (10, 6, 0, 0, 1, 1, 1, 1)]


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict[str, dict[int, np.ndarray]]:
    out = tmp_path_factory.mktemp("small_n")
    rng = np.random.default_rng(5)
    lines = []
    for i, (m, n, k, pb, pc, bias, res, relu) in enumerate(CASES):
        a = rng.uniform(-1, 1, (m, k)).astype(np.float32)
        packed_a_columns(a).tofile(out / f"{i}_a.bin")
        rng.uniform(-1, 1, (k, n + pb)).astype(np.float32).tofile(out / f"{i}_b.bin")
        rng.uniform(-1, 1, m).astype(np.float32).tofile(out / f"{i}_bias.bin")
        rng.uniform(-1, 1, (m, n + pc)).astype(np.float32).tofile(out / f"{i}_res.bin")
        lines.append(f"{i} {m} {n} {k} {n + pb} {n + pc} {bias} {res} {relu}")
    (out / "cases.txt").write_text("\n".join(lines) + "\n")
    got = {}
    for build, flags in BUILDS.items():
        exe = out / f"driver_{build}"
        cmd = ["g++", "-std=c++17", *flags, "-Wall", "-Wextra", "-Werror", f"-I{REPO / 'sofie' / 'runtime'}",
               str(CPP / "small_n_driver.cpp"), "-o", str(exe)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        assert proc.returncode == 0, f"build failed:\n{' '.join(cmd)}\n{proc.stderr}"
        subprocess.run([str(exe), str(out)], check=True, capture_output=True)
        got[build] = {i: np.fromfile(out / f"{i}_out.bin", np.float32) for i in range(len(CASES))}
    got["dir"] = out
    return got


def reference(out: Path, i: int) -> np.ndarray:
    m, n, k, pb, pc, bias, res, relu = CASES[i]
    rng_files = {name: np.fromfile(out / f"{i}_{name}.bin", np.float32) for name in ("b", "bias", "res")}
    panels = -(-m // 48)
    packed = np.fromfile(out / f"{i}_a.bin", np.float32).reshape(panels, k, 48)
    a = packed.transpose(0, 2, 1).reshape(panels * 48, k)[:m]
    b = rng_files["b"].reshape(k, n + pb)[:, :n]
    c = a.astype(np.float64) @ b.astype(np.float64)
    if bias:
        c += rng_files["bias"][:, None]
    if res:
        c += rng_files["res"].reshape(m, n + pc)[:, :n]
    return np.maximum(c, 0) if relu else c


@pytest.mark.parametrize("build", BUILDS)
@pytest.mark.parametrize("i", range(len(CASES)), ids=[f"M{c[0]}_N{c[1]}_K{c[2]}" for c in CASES])
def test_gemm_small_n_matches_numpy(results, build: str, i: int) -> None:
    m, n, k, _, pc, *_ = CASES[i]
    got = results[build][i].reshape(m, n + pc)
    np.testing.assert_allclose(got[:, :n], reference(results["dir"], i), rtol=1e-5, atol=4e-5 * np.sqrt(max(k, 1)))
    assert (got[:, n:] == SENTINEL).all(), "C's padding columns were written"
