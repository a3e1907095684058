"""The direct conv (sofie_rt/conv_direct.hxx, conv2d_direct, and conv2d_direct_max_pool, the conv
fused with a MaxPool) against numpy, in three builds:
-march=native (on this host the AVX-512 kernel over stride-phase planes), -mavx2 -mfma (the AVX2
kernel over the planes up to kDirectMaxTapsAvx2 = 32 taps, conv2d past them) and no -march
(conv2d, im2col + GEMM, on the same operands; the fused kernel im2col's and multiplies one conv
row at a time into its ring). The e2e tests (tests/e2e/test_conv_direct.py)
only build natively.

Shapes: ResNet's and MobileNet's stems (7x7 s2 and 3x3 s2 from 3 channels), strides 1, 2, 3
and unequal, symmetric, asymmetric, one-sided and wide pads (zero rows and columns of the
planes), output rows of 32 to 100 columns (a masked last vector, a narrower last tile of 1 to
63 columns), output channel counts 1, 2, 7, 13, 64 (a partial last row tile), one input channel,
kernels 1x1 to 8x8 up to the 192-tap limit, batch 2; bias present and absent, a residual, Relu
and SiLU. Pooled cases: ResNet's stem, 2x2, 3x2, 2x3 and 5x3 windows, column strides 1 and 2,
row strides 1 to 3 (3 past a 2-row window: conv rows no window reads), pads on some sides, a
last window past the conv's rows (ceil_mode), batch 2. The scratch starts full of NaN, y is
followed by a guard the masked stores must not touch, and the scratch size must equal
sofie.ir.dialects.low's mirror.
Tolerance: atol 1e-5 * taps, rtol 1e-5 (float32 sums of at most 192 products of magnitude <= 1).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from sofie.ir.dialects.low import direct_max_pool_scratch_floats, direct_scratch_floats  # noqa: E402
from tests.conftest import native_isa  # noqa: E402

RUNTIME_INCLUDE = REPO / "sofie" / "runtime"
DRIVER = Path(__file__).resolve().parent / "cpp" / "conv_direct_driver.cpp"
BUILDS = {"native": ["-O3", "-march=native"], "avx2": ["-O2", "-mavx2", "-mfma"], "generic": ["-O2"]}

# (N, C, H, W, M, (kH, kW), (pad_top, pad_left, pad_bottom, pad_right), (s_h, s_w), bias, residual, act)
CASES = [
    (1, 3, 70, 70, 64, (7, 7), (3, 3, 3, 3), (2, 2), 1, 0, 1),     # ResNet's stem: 35 columns
    (2, 3, 67, 67, 32, (3, 3), (0, 0, 1, 1), (2, 2), 1, 1, 1),     # MobileNet's stem pads, batch 2
    (1, 3, 64, 64, 32, (3, 3), (1, 1, 1, 1), (2, 2), 1, 0, 2),     # 32 columns: one 2-vector tile
    (1, 1, 20, 100, 2, (5, 5), (0, 0, 0, 0), (1, 1), 1, 0, 0),     # conv1's shape: 96 = 64 + 32
    (1, 2, 12, 101, 1, (5, 5), (2, 1, 0, 3), (1, 1), 0, 1, 0),     # M = 1, no bias, 101 columns
    (1, 3, 17, 71, 7, (8, 8), (4, 3, 3, 4), (1, 2), 1, 0, 1),      # 192 taps, s_h != s_w
    (1, 4, 31, 50, 13, (4, 6), (1, 2, 2, 3), (3, 1), 1, 1, 2),     # s_h 3, even kernel
    (2, 5, 9, 194, 6, (2, 2), (0, 0, 0, 0), (2, 2), 1, 0, 0),      # 97 columns: a 1-column last vector
    (1, 16, 5, 48, 20, (1, 1), (0, 0, 0, 0), (1, 1), 1, 1, 1),     # 1x1: one phase, 48 columns
    (1, 3, 8, 40, 9, (3, 3), (3, 5, 4, 6), (1, 1), 1, 0, 0),       # pads wider than the kernel
    (1, 2, 6, 127, 5, (3, 3), (1, 1, 1, 1), (2, 2), 1, 0, 2),      # 64 columns exactly
    (1, 2, 6, 129, 5, (3, 3), (1, 1, 1, 1), (2, 2), 1, 1, 1),      # 65: a 1-column last tile
    (1, 2, 10, 40, 7, (4, 4), (1, 1, 2, 2), (1, 1), 1, 0, 1),      # 32 taps: AVX2's last direct
    (1, 1, 9, 45, 5, (3, 11), (1, 5, 1, 5), (1, 1), 1, 1, 0),      # 33 taps: AVX2's first conv2d
]
# conv cases fused with a MaxPool: (conv case without residual, (pool kH, kW), (pad_top, pad_left,
# pad_bottom, pad_right), (s_h, s_w), ceil_mode)
POOLED = [
    (CASES[0], (3, 3), (1, 1, 1, 1), (2, 2), 0),                                 # ResNet's stem
    ((2, 3, 40, 66, 13, (3, 3), (1, 1, 1, 1), (1, 1), 0, 0, 2), (2, 2), (0, 0, 0, 0), (2, 2), 0),
    ((1, 3, 67, 67, 10, (3, 3), (0, 0, 0, 0), (2, 2), 1, 0, 1), (3, 3), (0, 0, 0, 0), (2, 2), 1),
    ((1, 2, 21, 45, 7, (3, 3), (1, 1, 1, 1), (1, 1), 1, 0, 0), (3, 2), (1, 0, 1, 1), (1, 1), 0),
    ((1, 1, 30, 64, 20, (5, 5), (2, 2, 2, 2), (1, 1), 1, 0, 1), (5, 3), (2, 1, 2, 1), (3, 2), 0),
    # s_h 3 past a window of 2 rows: conv rows no window reads
    ((1, 2, 9, 40, 6, (3, 3), (1, 1, 1, 1), (1, 1), 1, 0, 1), (2, 3), (1, 1, 1, 1), (3, 1), 1),
]


def pool_output(size: int, k: int, lo: int, hi: int, s: int, ceil: int) -> int:
    n = size + lo + hi - k
    out = (-(-n // s) if ceil else n // s) + 1
    if ceil and (out - 1) * s >= size + lo:  # ONNX: the last window starts inside the padded input
        out -= 1
    return out


def max_pool_reference(y: np.ndarray, kernel, pads, strides, ceil: int) -> np.ndarray:
    n, m, h, w = y.shape
    ph = pool_output(h, kernel[0], pads[0], pads[2], strides[0], ceil)
    pw = pool_output(w, kernel[1], pads[1], pads[3], strides[1], ceil)
    out = np.full((n, m, ph, pw), -np.inf)
    for i in range(ph):
        for j in range(pw):
            r0, c0 = i * strides[0] - pads[0], j * strides[1] - pads[1]
            rows = slice(max(r0, 0), max(min(r0 + kernel[0], h), 0))
            cols = slice(max(c0, 0), max(min(c0 + kernel[1], w), 0))
            win = y[:, :, rows, cols]
            if win.size:
                out[:, :, i, j] = win.max(axis=(2, 3))
    return out


def reference(x, w, b, res, pads, strides, act) -> np.ndarray:
    n, c, h, wd = x.shape
    m, _, kh, kw = w.shape
    pt, pl, pb, pr = pads
    sh, sw = strides
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    oh, ow = (h + pt + pb - kh) // sh + 1, (wd + pl + pr - kw) // sw + 1
    y = np.zeros((n, m, oh, ow))
    for i in range(kh):
        for j in range(kw):
            patch = xp[:, :, i:i + sh * (oh - 1) + 1:sh, j:j + sw * (ow - 1) + 1:sw]
            y += np.einsum("nchw,mc->nmhw", patch, w[:, :, i, j].astype(np.float64))
    if b is not None:
        y += b[None, :, None, None]
    if res is not None:
        y += res
    if act == 1:
        y = np.maximum(y, 0)
    elif act == 2:
        y = y / (1 + np.exp(-y))
    return y


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict[str, dict]:
    """{build: {case id: (got, want, taps, scratch floats, guard ok, mirror)}}, each build run once."""
    directory = tmp_path_factory.mktemp("conv_direct")
    rng = np.random.default_rng(11)
    lines, want, sizes = [], {}, {}
    for i, (n, c, h, wd, m, (kh, kw), pads, (sh, sw), bias, residual, act) in enumerate(CASES):
        cid = f"c{i}"
        x = rng.uniform(-1, 1, (n, c, h, wd)).astype(np.float32)
        w = rng.uniform(-1, 1, (m, c, kh, kw)).astype(np.float32)
        oh, ow = (h + pads[0] + pads[2] - kh) // sh + 1, (wd + pads[1] + pads[3] - kw) // sw + 1
        files = {"x": x, "w": w}
        b = files["bias"] = rng.uniform(-1, 1, m).astype(np.float32) if bias else None
        r = files["res"] = rng.uniform(-1, 1, (n, m, oh, ow)).astype(np.float32) if residual else None
        for name, arr in files.items():
            if arr is not None:
                (directory / f"{cid}_{name}.bin").write_bytes(np.ascontiguousarray(arr).tobytes())
        want[cid] = (reference(x, w, b, r, pads, (sh, sw), act), c * kh * kw)
        sizes[cid] = direct_scratch_floats(c, kh, kw, sh, sw, oh, ow)
        lines.append(f"{cid} {n} {c} {h} {wd} {m} {kh} {kw} {' '.join(map(str, pads))} {sh} {sw} {oh} {ow} "
                     f"{bias} {residual} {act} 0 0 0 0 0 0 0 0")
    for i, (case, kernel, pool_pads, pool_strides, ceil) in enumerate(POOLED):
        cid = f"p{i}"
        n, c, h, wd, m, (kh, kw), pads, (sh, sw), bias, _, act = case
        x = rng.uniform(-1, 1, (n, c, h, wd)).astype(np.float32)
        w = rng.uniform(-1, 1, (m, c, kh, kw)).astype(np.float32)
        oh, ow = (h + pads[0] + pads[2] - kh) // sh + 1, (wd + pads[1] + pads[3] - kw) // sw + 1
        b = rng.uniform(-1, 1, m).astype(np.float32) if bias else None
        for name, arr in (("x", x), ("w", w), ("bias", b)):
            if arr is not None:
                (directory / f"{cid}_{name}.bin").write_bytes(np.ascontiguousarray(arr).tobytes())
        ref = max_pool_reference(reference(x, w, b, None, pads, (sh, sw), act), kernel, pool_pads, pool_strides, ceil)
        want[cid] = (ref, c * kh * kw)
        sizes[cid] = direct_max_pool_scratch_floats(c, kh, kw, sh, sw, oh, ow, m, kernel[0])
        lines.append(f"{cid} {n} {c} {h} {wd} {m} {kh} {kw} {' '.join(map(str, pads))} {sh} {sw} {oh} {ow} "
                     f"{bias} 0 {act} {kernel[0]} {kernel[1]} {pool_pads[0]} {pool_pads[1]} "
                     f"{pool_strides[0]} {pool_strides[1]} {ref.shape[2]} {ref.shape[3]}")
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
            floats, guard, planes = printed[cid]
            got[cid] = (y, ref, taps, int(floats), guard == "1", sizes[cid], planes == "1")
        out[build] = got
    return out


# every case id with its parameters: c<i> a conv case, p<i> a pooled one
CASE_IDS = {**{f"c{i}": c for i, c in enumerate(CASES)}, **{f"p{i}": c for i, c in enumerate(POOLED)}}


@pytest.mark.parametrize("build", list(BUILDS))
@pytest.mark.parametrize("cid", list(CASE_IDS))
def test_conv_direct_matches_numpy(results, build: str, cid: str) -> None:
    y, ref, taps, floats, guard, mirror, _ = results[build][cid]
    assert guard, f"case {CASE_IDS[cid]}: a store wrote past the end of y"
    assert floats == mirror, f"scratch floats: C++ {floats}, sofie.ir.dialects.low {mirror}"
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5 * taps, err_msg=f"{build} case {CASE_IDS[cid]}")


def test_conv_direct_path_by_isa(results) -> None:
    """Which convs each build runs over the phase planes: AVX-512 up to 192 taps, AVX2 up to 32
    (its 6 x 16 tile loses to conv2d on wider convs: kDirectMaxTapsAvx2), generic none."""
    limit = {"avx512": 192, "avx2": 32, "generic": 0}
    for build, isa in (("native", native_isa()), ("avx2", "avx2"), ("generic", "generic")):
        for cid, (*_, taps, _floats, _guard, _mirror, planes) in results[build].items():
            assert planes == (taps <= limit[isa]), f"{build} build, case {CASE_IDS[cid]} ({taps} taps)"
