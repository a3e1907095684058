"""conv2d's im2col (sofie_rt/kernels.hxx: detail::im2col and the strided row copy
detail::gather_strided, hand-vectorized for stride 2 on AVX-512 and AVX2) against a scalar
reference loop, in the three builds that pick the three code paths: -march=native (AVX-512 on
the development host), -mavx2 -mfma, and no -march. The driver (cpp/im2col_driver.cpp) sweeps
widths 1..40 (every tail of the 16- and 8-wide copies), strides 1..3, dilations 1..2, pads,
kernels 1..7 and bands of output rows, with x ending at an unreadable page so an over-read
crashes. Tolerance: none (the result is a copy and must be identical)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
RUNTIME_INCLUDE = REPO / "sofie" / "runtime"
DRIVER = Path(__file__).resolve().parent / "cpp" / "im2col_driver.cpp"

BUILDS = {"native": ["-O3", "-march=native"], "avx2": ["-O2", "-mavx2", "-mfma"], "generic": ["-O2"]}


@pytest.mark.parametrize("build", sorted(BUILDS))
def test_im2col_matches_reference(build, tmp_path):
    exe = tmp_path / f"im2col_{build}"
    cmd = ["g++", "-std=c++17", *BUILDS[build], "-Wall", "-Wextra", "-Werror", f"-I{RUNTIME_INCLUDE}",
           "-DSOFIE_BLAS_NONE", str(DRIVER), "-o", str(exe)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, f"build failed:\n{' '.join(cmd)}\n{proc.stderr}"
    run = subprocess.run([str(exe)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0 and run.stdout.startswith("OK"), run.stdout + run.stderr
    assert int(run.stdout.split()[1]) > 1000  # the sweep ran
