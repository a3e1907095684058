"""The direct depthwise conv (sofie_rt/depthwise_small.hxx, conv2d_depthwise_small) against
numpy, in three builds: -march=native (on this host the AVX-512 paths: rows of up to 16 columns
one zmm, wider rows in chunks of 16 columns with several output rows per step, s_w 1 or 2 and
kW <= 8; the phase-plane kernel for the rest), -mavx2 -mfma and no -march (the phase-plane kernel
it hands every case to). The e2e tests (tests/e2e/test_depthwise.py) only build natively.

Shapes: flat images of up to 64 outputs (stride 1, W == OW: 1 to 4 vectors, one or two
channels at a time), rows of 1, 7, 8, 9, 14, 16 (the one-register path and its edge), then the
wide path: 17, 20, 31, 32, 33, 35, 56, 57, 66 -> 31, 112, 113 -> 57 and every width from 39 to
48 (full and masked chunks, a last chunk of 1 to 16 columns), 3x3 / 5x5 and kW 1..8 with
kH != kW, strides 1, 2, 3, (2, 1), (1, 2), (3, 1), zero, symmetric, asymmetric (0/1/2) pads and
pads wider than a chunk, channel multipliers 1 and 2, channel counts not a multiple of 16,
batch 2, fewer output rows than a step (and counts not a multiple of it); bias present and
absent, a residual, Relu6 and SiLU epilogues. The scratch starts full of NaN, y is followed by
a guard the row stores must not touch, and the scratch size must equal sofie.lowering.conv's
mirror.
Tolerance: atol 1e-5 * taps, rtol 1e-5 (float32 sums of at most 49 products of magnitude <= 1).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from sofie.lowering.conv import depthwise_scratch_elements  # noqa: E402

RUNTIME_INCLUDE = REPO / "sofie" / "runtime"
DRIVER = Path(__file__).resolve().parent / "cpp" / "depthwise_small_driver.cpp"
BUILDS = {"native": ["-O3", "-march=native"], "avx2": ["-O2", "-mavx2", "-mfma"], "generic": ["-O2"]}

# (N, C, H, W, mult, (kH, kW), (pad_top, pad_left, pad_bottom, pad_right), (s_h, s_w), bias, residual, act)
CASES = [
    (1, 20, 7, 7, 1, (3, 3), (1, 1, 1, 1), (1, 1), 1, 0, 1),
    (2, 17, 14, 14, 1, (3, 3), (1, 1, 1, 1), (1, 1), 1, 1, 0),
    (1, 19, 14, 14, 1, (3, 3), (0, 0, 1, 1), (2, 2), 1, 0, 1),  # MobileNet's stride-2 pads
    (1, 18, 14, 14, 1, (5, 5), (2, 2, 2, 2), (1, 1), 1, 0, 2),
    (1, 21, 14, 14, 1, (5, 5), (1, 1, 2, 2), (2, 2), 1, 0, 2),  # EfficientNet's stride-2 pads
    (1, 16, 7, 7, 1, (5, 5), (2, 2, 2, 2), (1, 1), 0, 1, 1),
    (2, 5, 9, 11, 1, (3, 3), (2, 0, 1, 3), (1, 1), 1, 0, 0),    # asymmetric pads
    (1, 6, 16, 16, 1, (3, 3), (1, 1, 1, 1), (1, 1), 1, 0, 1),   # 16 outputs: a full zmm
    (1, 6, 9, 9, 1, (3, 3), (1, 1, 1, 1), (1, 1), 1, 0, 0),     # 9 outputs: past the ymm
    (1, 6, 8, 8, 1, (3, 3), (1, 1, 1, 1), (1, 1), 1, 0, 0),     # 8 outputs: one ymm
    (1, 4, 33, 32, 1, (3, 3), (1, 1, 1, 1), (1, 2), 1, 1, 1),   # 16 outputs from 32 columns
    (1, 4, 31, 31, 1, (3, 3), (1, 1, 1, 1), (1, 1), 1, 0, 1),   # 31 outputs: two chunks
    (1, 3, 17, 17, 1, (3, 3), (1, 1, 1, 1), (1, 1), 1, 0, 0),   # 17 outputs: past 16 lanes
    (1, 4, 13, 11, 1, (3, 3), (1, 1, 1, 1), (3, 3), 1, 0, 0),   # stride 3: the split path
    (1, 4, 13, 11, 1, (3, 3), (1, 1, 1, 1), (2, 1), 1, 0, 0),
    (1, 4, 11, 10, 1, (2, 4), (1, 2, 0, 1), (1, 1), 1, 0, 2),   # a generic kernel width
    (1, 3, 12, 12, 1, (7, 7), (3, 3, 3, 3), (1, 1), 1, 1, 0),
    (1, 4, 7, 7, 1, (3, 3), (3, 4, 3, 2), (1, 1), 1, 0, 0),     # pads wider than the kernel
    (1, 4, 7, 7, 2, (3, 3), (1, 1, 1, 1), (2, 2), 1, 0, 1),     # two outputs per channel
    (1, 3, 1, 29, 1, (1, 5), (0, 2, 0, 1), (1, 2), 1, 0, 0),    # a 1-D conv as height 1
    (1, 5, 6, 1, 1, (3, 1), (1, 0, 1, 0), (1, 1), 0, 0, 0),     # one output column
    (1, 4, 9, 9, 1, (1, 1), (0, 0, 0, 0), (2, 2), 1, 0, 0),     # stride > kernel: one phase
    # rows of up to 16 outputs take 7 rows per step, then 4, 2, 1: every remainder
    (1, 5, 13, 12, 1, (3, 3), (1, 1, 1, 1), (1, 1), 1, 1, 1),   # 13 rows: 7 + 4 + 2
    (1, 4, 12, 15, 1, (3, 3), (1, 1, 1, 1), (1, 1), 1, 0, 2),   # 12: 7 + 4 + 1
    (1, 3, 30, 10, 1, (3, 3), (1, 1, 1, 1), (1, 1), 0, 1, 0),   # 30: 4 x 7 + 2
    (1, 4, 5, 16, 1, (5, 5), (2, 2, 2, 2), (1, 1), 1, 1, 1),    # 5: 4 + 1, 5x5
    (1, 3, 11, 16, 1, (5, 5), (2, 2, 2, 2), (1, 1), 1, 0, 2),   # 11: 7 + 4
    (1, 3, 12, 12, 1, (5, 5), (2, 2, 2, 2), (2, 2), 1, 1, 1),   # 5x5 s2, 6 rows: 4 + 2
    (1, 3, 29, 9, 1, (3, 3), (1, 1, 1, 1), (2, 2), 1, 1, 0),    # 3x3 s2, 15 rows: 2 x 7 + 1
    (1, 2, 6, 6, 1, (3, 3), (1, 1, 1, 1), (2, 2), 1, 0, 0),     # 3 rows: 2 + 1
    # the flat path (stride 1, W == OW, at most 64 outputs): 1 to 4 vectors, odd channel counts
    (1, 7, 5, 9, 1, (3, 5), (1, 2, 1, 2), (1, 1), 1, 0, 2),     # 45 outputs, H != W
    (2, 5, 4, 4, 2, (3, 3), (0, 0, 2, 2), (1, 1), 1, 1, 1),     # 16: one vector, pads on one side
    (1, 3, 3, 9, 1, (2, 2), (1, 0, 0, 1), (1, 1), 0, 1, 0),     # 27, even kernel
    (1, 9, 8, 8, 1, (7, 7), (3, 3, 3, 3), (1, 1), 1, 0, 2),     # 64 outputs, 49 taps
    # rows of more than 16 outputs: the AVX-512 wide path (chunks of 16 columns, R rows per step)
    (1, 5, 17, 17, 1, (3, 3), (1, 1, 1, 1), (1, 1), 1, 0, 1),   # 17: one full chunk + 1 column
    (2, 3, 31, 31, 1, (3, 3), (1, 1, 1, 1), (1, 1), 1, 1, 1),   # 31, batch 2, residual
    (1, 4, 32, 32, 1, (3, 3), (1, 1, 1, 1), (1, 1), 0, 0, 0),   # 32: two full chunks, no bias
    (1, 3, 33, 33, 1, (5, 5), (2, 2, 2, 2), (1, 1), 1, 0, 2),   # 33, 5x5
    (1, 3, 18, 56, 1, (3, 3), (1, 1, 1, 1), (1, 1), 1, 1, 1),   # 56: the interior chunks unmasked
    (1, 3, 11, 57, 1, (5, 5), (2, 2, 2, 2), (1, 1), 1, 1, 2),
    (1, 2, 10, 112, 1, (3, 3), (1, 1, 1, 1), (1, 1), 1, 0, 1),
    (1, 3, 23, 112, 1, (3, 3), (0, 0, 1, 1), (2, 2), 1, 0, 1),  # 112 -> 56, MobileNet's s2 pads
    (1, 3, 23, 113, 1, (3, 3), (1, 1, 1, 1), (2, 2), 1, 1, 0),  # 113 -> 57
    (1, 3, 21, 66, 1, (5, 5), (1, 1, 2, 2), (2, 2), 1, 0, 2),   # 5x5 s2, EfficientNet's pads
    (2, 3, 19, 69, 1, (5, 5), (2, 2, 2, 2), (2, 2), 0, 1, 1),   # 69 -> 35, batch 2, residual
    (1, 3, 14, 40, 1, (3, 3), (1, 1, 1, 1), (2, 2), 1, 0, 0),   # 40 -> 20
    (1, 3, 9, 37, 1, (3, 3), (2, 0, 1, 2), (1, 1), 1, 0, 0),    # asymmetric pads 0/1/2
    (1, 3, 9, 37, 1, (3, 3), (0, 2, 2, 1), (2, 2), 1, 1, 0),
    (1, 3, 11, 35, 2, (3, 3), (1, 1, 1, 1), (1, 1), 1, 1, 1),   # M = 2C
    (1, 3, 11, 70, 2, (5, 5), (2, 2, 2, 2), (2, 2), 1, 0, 0),   # M = 2C, stride 2
    (1, 2, 6, 40, 1, (1, 1), (0, 0, 0, 0), (1, 1), 1, 0, 0),    # kW 1..8, kH != kW
    (1, 2, 6, 41, 1, (2, 2), (1, 0, 0, 1), (1, 1), 1, 1, 0),
    (1, 2, 6, 42, 1, (3, 4), (1, 2, 1, 1), (1, 1), 1, 0, 1),
    (1, 2, 7, 43, 1, (2, 5), (0, 2, 1, 2), (2, 2), 1, 0, 0),
    (1, 2, 8, 44, 1, (4, 6), (2, 3, 1, 2), (1, 1), 0, 0, 2),
    (1, 2, 9, 45, 1, (7, 7), (3, 3, 3, 3), (2, 2), 1, 1, 0),
    (1, 2, 9, 46, 1, (5, 8), (2, 4, 2, 3), (1, 1), 1, 0, 0),
    (1, 2, 9, 47, 1, (3, 8), (1, 3, 1, 4), (2, 2), 1, 0, 1),
    (1, 2, 9, 48, 1, (1, 3), (0, 1, 0, 1), (2, 2), 1, 0, 0),
    (1, 2, 9, 39, 1, (3, 3), (1, 1, 1, 1), (2, 1), 1, 0, 0),    # s_h != s_w: the one-row steps
    (1, 2, 12, 39, 1, (5, 5), (2, 2, 2, 2), (1, 2), 1, 1, 1),
    (1, 2, 12, 39, 1, (3, 3), (1, 1, 1, 1), (3, 1), 1, 0, 0),   # s_h 3
    (1, 2, 7, 50, 1, (3, 3), (1, 1, 1, 1), (3, 3), 1, 0, 0),    # s_w 3: the phase-plane kernel
    (1, 2, 5, 40, 1, (3, 3), (4, 18, 3, 20), (1, 1), 1, 0, 0),  # pads past a chunk
    (1, 2, 3, 100, 1, (3, 3), (1, 1, 1, 1), (1, 1), 1, 0, 1),   # fewer rows than a step
]


def reference(x, w, b, res, pads, strides, act, mult) -> np.ndarray:
    n, c, h, wd = x.shape
    kh, kw = w.shape[2:]
    pt, pl, pb, pr = pads
    sh, sw = strides
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    oh, ow = (h + pt + pb - kh) // sh + 1, (wd + pl + pr - kw) // sw + 1
    y = np.zeros((n, c * mult, oh, ow))
    for m in range(c * mult):
        for i in range(kh):
            for j in range(kw):
                y[:, m] += w[m, 0, i, j] * xp[:, m // mult, i:i + sh * (oh - 1) + 1:sh, j:j + sw * (ow - 1) + 1:sw]
    if b is not None:
        y += b[None, :, None, None]
    if res is not None:
        y += res
    if act == 1:
        y = np.clip(y, 0, 6)
    elif act == 2:
        y = y / (1 + np.exp(-y))
    return y


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict[str, dict]:
    """{build: {case id: (got, want, scratch floats, guard ok)}} for every case, each build run once."""
    directory = tmp_path_factory.mktemp("dw_small")
    rng = np.random.default_rng(7)
    lines, want, sizes = [], {}, {}
    for i, (n, c, h, wd, mult, (kh, kw), pads, (sh, sw), bias, residual, act) in enumerate(CASES):
        cid = f"c{i}"
        x = rng.uniform(-1, 1, (n, c, h, wd)).astype(np.float32)
        w = rng.uniform(-1, 1, (c * mult, 1, kh, kw)).astype(np.float32)
        oh, ow = (h + pads[0] + pads[2] - kh) // sh + 1, (wd + pads[1] + pads[3] - kw) // sw + 1
        files = {"x": x, "w": w}
        b = files["bias"] = rng.uniform(-1, 1, c * mult).astype(np.float32) if bias else None
        r = files["res"] = rng.uniform(-1, 1, (n, c * mult, oh, ow)).astype(np.float32) if residual else None
        for name, arr in files.items():
            if arr is not None:
                (directory / f"{cid}_{name}.bin").write_bytes(np.ascontiguousarray(arr).tobytes())
        want[cid] = (reference(x, w, b, r, pads, (sh, sw), act, mult), kh * kw)
        sizes[cid] = depthwise_scratch_elements(kh, kw, sh, sw, oh, ow)
        lines.append(f"{cid} {n} {c} {h} {wd} {c * mult} {kh} {kw} {pads[0]} {pads[1]} {sh} {sw} {oh} {ow} "
                     f"{bias} {residual} {act}")
    (directory / "cases.txt").write_text("\n".join(lines) + "\n")
    out = {}
    for build, flags in BUILDS.items():
        exe = directory / f"driver_{build}"
        cmd = ["g++", "-std=c++17", *flags, "-Wall", "-Wextra", "-Werror", f"-I{RUNTIME_INCLUDE}",
               "-DSOFIE_BLAS_NONE", str(DRIVER), "-o", str(exe)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        assert proc.returncode == 0, f"build failed:\n{' '.join(cmd)}\n{proc.stderr}"
        run = subprocess.run([str(exe), str(directory)], capture_output=True, text=True, check=True)
        printed = {line.split()[0]: line.split()[1:] for line in run.stdout.splitlines()}
        got = {}
        for cid, (ref, taps) in want.items():
            y = np.fromfile(directory / f"{cid}_out.bin", dtype=np.float32).reshape(ref.shape)
            floats, guard = printed[cid]
            got[cid] = (y, ref, taps, int(floats), guard == "1", sizes[cid])
        out[build] = got
    return out


@pytest.mark.parametrize("build", list(BUILDS))
@pytest.mark.parametrize("case", range(len(CASES)))
def test_depthwise_small_matches_numpy(results, build: str, case: int) -> None:
    y, ref, taps, floats, guard, mirror = results[build][f"c{case}"]
    assert guard, f"case {CASES[case]}: a row store wrote past the end of y"
    assert floats == mirror, f"scratch floats: C++ {floats}, sofie.lowering.conv {mirror}"
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5 * taps, err_msg=f"{build} case {CASES[case]}")
