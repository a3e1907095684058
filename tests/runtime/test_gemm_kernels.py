"""The built-in GEMM's micro-kernels (sofie_rt/gemm_kernels.hxx) and driver (blas.hxx)
against numpy, in the three builds that choose the three kernels: -march=native (AVX-512 on
the development host), -mavx2 -mfma, and no -march (the generic vector-extension kernel).

Shapes cover M, N and K of 1, every row tail (M mod 6) and every column tail of the widest
tile (N mod 64 for AVX-512, so also mod 16 and mod 8), several K blocks (K > 256) and N blocks
(N > 192), K blocks of 4 KiB-multiple rows (the B buffer's panels then skewed by a line), both
transposes, padded leading dimensions, alpha/beta including beta = 0 over a C full of NaN (C
must not be read), and the epilogue: bias per row or per column, a residual,
ReLU or tanh. A float B as stored is read in place: by every row tile for up to 6 rows of A,
else by the first row tile, whose kernel packs it for the others (run_block_in_place), both
covered, with B's narrow last tile packed before. B or A packed ahead of time (pack_b +
gemm_packed_b, pack_a + gemm_packed_a) run the same cases, and the packed bytes must equal
sofie.lowering.gemm_pack's packed_b and packed_a, the compile-time packers. One row against
B packed ahead of time (gemv_packed on AVX-512 and AVX2) runs over 1 to 63 panels (GEMV_PACKED).
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

from sofie.lowering.gemm_pack import packed_a, packed_b  # noqa: E402
from tests.conftest import native_isa  # noqa: E402

RUNTIME_INCLUDE = REPO / "sofie" / "runtime"
CPP = Path(__file__).resolve().parent / "cpp"

BUILDS = {  # build -> (flags, the kernel the build must pick)
    "native": (["-O3", "-march=native"], None),  # whichever the host has: AVX-512 here
    "avx2": (["-O2", "-mavx2", "-mfma"], "avx2 6x16"),
    "generic": (["-O2"], "generic"),
}


def host_kernel() -> str:
    return {"avx512": "avx512 6x64", "avx2": "avx2 6x16", "generic": "generic"}[native_isa()]


@pytest.fixture(scope="module")
def driver(tmp_path_factory):
    out = tmp_path_factory.mktemp("gemm")
    built: dict[str, Path] = {}

    def build(name: str) -> Path:
        if name not in built:
            exe = out / f"gemm_{name}"
            cmd = ["g++", "-std=c++17", *BUILDS[name][0], "-Wall", "-Wextra", "-Werror",
                   f"-I{RUNTIME_INCLUDE}", "-DSOFIE_BLAS_NONE", str(CPP / "gemm_driver.cpp"), "-o", str(exe)]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            assert proc.returncode == 0, f"build failed:\n{' '.join(cmd)}\n{proc.stderr}"
            built[name] = exe
        return built[name]

    return build


def shapes() -> list[tuple[int, int, int]]:
    out = [(7, n, 5) for n in range(1, 66)]            # every column tail of a 64-wide tile
    out += [(m, 19, 9) for m in range(1, 14)]           # every row tail, twice
    out += [(1, 1, 1), (1, 200, 200), (3, 1, 17), (13, 400, 3), (14, 70, 600), (6, 257, 513),
            (32, 50, 50), (20, 193, 257), (2, 130, 1),   # K and N blocks, batch-1 rows
            (9, 1700, 64), (5, 2000, 40),  # short K: wider N blocks (768, 1216 columns) and their tails
            # many row tiles after the one that reads B as stored and packs it
            (197, 70, 30), (200, 130, 20), (193, 65, 300), (250, 200, 7),
            # 1 and 2 rows in all: two accumulator sets over alternate k (odd and even K)
            (1, 130, 257), (2, 70, 301), (1, 64, 2), (2, 200, 200), (1, 17, 1000), (2, 3, 33),
            # K blocks of 64, 128, 192, 256 rows (4 KiB multiples): the B buffer's panels skewed
            (13, 200, 512), (20, 150, 128), (8, 70, 192), (31, 90, 64)]
    return [(m, n, k, None) for m, n, k in out] + [(1, n, k, 1) for n, k in GEMV_PACKED]


# One row against B packed ahead of time (gemv_packed): 1 to 13 panels of 16 columns
# in registers at once, and past 13 panels groups of near-equal size (14 -> 7 + 7, 27 -> 9 x 3)
# whose bias and residual start at the group's column; K under kSplitKMinK (one accumulator
# set) and over it, odd and even (two sets over alternate k).
GEMV_PACKED = [(n, k) for n in (1, 15, 16, 17, 40, 64, 100, 129, 200, 208) for k in (7, 128, 201)] + [
    (209, 200), (224, 130), (300, 64), (417, 257), (1000, 33)]


def act(kind: int, x: np.ndarray) -> np.ndarray:
    return {0: x, 1: np.maximum(x, 0), 2: np.tanh(x), 3: np.maximum(x, 0), 4: np.clip(x, -0.5, 0.7)}[kind]


def make_cases(directory: Path, rng: np.random.Generator) -> dict[str, tuple]:
    """Writes inputs and cases.txt; returns id -> (expected C, K, packed-B reference or None)."""
    lines, expect = [], {}
    for i, (m, n, k, force_packed) in enumerate(shapes()):
        # vary the options deterministically across cases so that every combination of
        # transposes, beta, epilogue and packing meets several shapes
        ta, tb = i % 2, (i // 2) % 2
        alpha, beta = [(1.0, 0.0), (0.5, 1.0), (-1.25, 0.75), (1.0, 0.0)][(i // 4) % 4]
        bias_kind, residual, kind, packed = i % 3, (i // 3) % 2, (i // 5) % 5, (i // 7) % 3
        if force_packed is not None:
            packed = force_packed
        if packed == 2:
            tb = 0  # gemm_packed_a takes B as stored
        lda, ldb, ldc = (m if ta else k) + 3, (k if tb else n) + 1, n + 2
        a = rng.uniform(-1, 1, (k if ta else m, lda)).astype(np.float32)
        b = rng.uniform(-1, 1, (n if tb else k, ldb)).astype(np.float32)
        c = rng.uniform(-1, 1, (m, ldc)).astype(np.float32)
        if beta == 0.0:
            c[:] = np.nan  # must not be read
        op_a = (a[:, :m].T if ta else a[:, :k]).astype(np.float64)
        op_b = (b[:, :k].T if tb else b[:, :n]).astype(np.float64)
        y = alpha * op_a @ op_b + (beta * c[:, :n] if beta else 0.0)
        cid = f"c{i}"
        files = {"A": a, "B": b, "C": c}
        if bias_kind:
            bias = rng.uniform(-1, 1, m if bias_kind == 1 else n).astype(np.float32)
            y = y + (bias[:, None] if bias_kind == 1 else bias[None, :])
            files["bias"] = bias
        if residual:
            res = rng.uniform(-1, 1, (m, ldc)).astype(np.float32)
            y = y + res[:, :n]
            files["res"] = res
        want = c.astype(np.float64).copy()
        want[:, :n] = act(kind, y)  # the padding columns stay as they were (NaN when beta == 0)
        for name, arr in files.items():
            (directory / f"{cid}_{name}.bin").write_bytes(np.ascontiguousarray(arr).tobytes())
        lines.append(f"{cid} {ta} {tb} {m} {n} {k} {alpha} {beta} {lda} {ldb} {ldc} {bias_kind} "
                     f"{residual} {kind} {packed}")
        ref_pack = None
        if packed == 1:
            ref_pack = packed_b(b[:, :k] if tb else b[:, :n], bool(tb))
        elif packed == 2:
            ref_pack = packed_a(a[:, :m] if ta else a[:, :k], bool(ta))
        expect[cid] = (want, k, ref_pack, lines[-1])
    (directory / "cases.txt").write_text("\n".join(lines) + "\n")
    return expect


@pytest.mark.parametrize("build", list(BUILDS))
def test_gemm_kernel(build, driver, tmp_path):
    expect = make_cases(tmp_path, np.random.default_rng(15))
    proc = subprocess.run([str(driver(build)), str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.splitlines()
    assert out[0] == (BUILDS[build][1] or host_kernel()), f"{build} build chose kernel {out[0]!r}"
    assert len(out) == 1 + len(expect), proc.stdout
    failures = []
    for cid, (want, k, ref_pack, line) in expect.items():
        got = np.fromfile(tmp_path / f"{cid}_out.bin", np.float32).reshape(want.shape)
        if not np.allclose(got, want, rtol=1e-5, atol=4e-5 * np.sqrt(k), equal_nan=True):
            failures.append(f"{line}: max abs err {np.nanmax(np.abs(got - want))}, "
                            f"NaN where not expected: {int(np.isnan(got).sum() - np.isnan(want).sum())}")
        if ref_pack is not None:
            packed = np.fromfile(tmp_path / f"{cid}_packed.bin", np.float32)
            if not np.array_equal(packed, ref_pack.ravel()):
                failures.append(f"{line}: the packed operand differs from sofie.lowering.gemm_pack's")
    assert not failures, "\n".join(failures[:20])
