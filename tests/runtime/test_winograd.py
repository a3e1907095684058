"""sofie::rt::conv2d_winograd (F(2x2, 3x3)) against a float64 numpy reference.

A small driver (written to tmp_path) runs one case per invocation; inputs travel as raw
float32 files. The weight transform U = G g G^T is the compiler's (sofie.lowering.conv).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from sofie.lowering.conv import winograd_weights  # noqa: E402

RUNTIME_INCLUDE = REPO / "sofie" / "runtime"

DRIVER = r"""
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>
#include "sofie_rt/sofie_rt.hxx"

static std::vector<float> load(const char* path, std::size_t n) {
    std::vector<float> v(n);
    if (n == 0) return v;
    FILE* f = std::fopen(path, "rb");
    if (!f || std::fread(v.data(), sizeof(float), n, f) != n) std::exit(3);
    std::fclose(f);
    return v;
}

int main(int argc, char** argv) {
    if (argc != 16) return 2;
    auto z = [&](int i) { return std::size_t(std::strtoull(argv[i], nullptr, 10)); };
    const std::size_t N = z(2), C = z(3), H = z(4), W = z(5), M = z(6), pt = z(7), pl = z(8),
                      OH = z(9), OW = z(10), T = z(11), has_bias = z(12), has_res = z(13),
                      relu = z(14);
    const std::string dir = argv[1];
    auto x = load((dir + "/x.bin").c_str(), N * C * H * W);
    auto u = load((dir + "/u.bin").c_str(), 16 * M * C);
    auto b = load((dir + "/b.bin").c_str(), has_bias ? M : 0);
    auto r = load((dir + "/r.bin").c_str(), has_res ? N * M * OH * OW : 0);
    const std::size_t tiles = N * ((OH + 1) / 2) * ((OW + 1) / 2);
    std::vector<float> scratch(
        sofie::rt::conv2d_winograd_scratch_floats(C, M, T == 0 ? tiles : T) + 1, NAN);
    std::vector<float> y(N * M * OH * OW, NAN);
    auto run = [&](auto f) {
        sofie::rt::conv2d_winograd(x.data(), u.data(), has_bias ? b.data() : nullptr, y.data(),
                                   scratch.data(), N, C, H, W, M, pt, pl, OH, OW, f,
                                   has_res ? r.data() : nullptr, T);
    };
    if (relu) run([](float v) { return v > 0.0f ? v : 0.0f; });
    else run(sofie::rt::Identity{});
    if (scratch.back() == scratch.back()) return 4;  // wrote past the scratch it was given
    FILE* f = std::fopen((dir + "/y.bin").c_str(), "wb");
    std::fwrite(y.data(), sizeof(float), y.size(), f);
    std::fclose(f);
    (void)argv[15];
    return 0;
}
"""


def backend_flags(backend: str) -> list[str]:
    if backend == "none":
        return ["-DSOFIE_BLAS_NONE"]
    import scipy_openblas32 as ob

    lib = ob.get_lib_dir()
    return ["-DSOFIE_BLAS_OPENBLAS", f"-I{ob.get_include_dir()}", f"-L{lib}", "-lscipy_openblas",
            f"-Wl,-rpath,{lib}"]


@pytest.fixture(scope="module", params=["openblas", "none"])
def driver(request, tmp_path_factory):
    d = tmp_path_factory.mktemp(f"wino_{request.param}")
    (d / "driver.cpp").write_text(DRIVER)
    exe = d / "driver"
    subprocess.run(["g++", "-std=c++17", "-O2", "-Wall", "-Wextra", "-Werror", f"-I{RUNTIME_INCLUDE}",
                    str(d / "driver.cpp"), "-o", str(exe), *backend_flags(request.param)], check=True)
    return exe


def conv_ref(x, w, bias, res, pads, relu):
    x = x.astype(np.float64)
    pt, pl, pb, pr = pads
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    n, c, h, wd = xp.shape
    oh, ow = h - 2, wd - 2
    y = np.zeros((n, w.shape[0], oh, ow))
    for i in range(3):
        for j in range(3):
            y += np.einsum("nchw,mc->nmhw", xp[:, :, i:i + oh, j:j + ow], w[:, :, i, j].astype(np.float64))
    if bias is not None:
        y += bias.reshape(1, -1, 1, 1)
    if res is not None:
        y += res
    return np.maximum(y, 0) if relu else y


CASES = [
    # N, C, H, W, M, pads (t, l, b, r), tile_block, bias, residual, relu
    (1, 16, 8, 8, 16, (1, 1, 1, 1), 0, True, False, False),
    (2, 17, 7, 9, 19, (1, 1, 1, 1), 5, True, True, True),
    (1, 16, 9, 7, 24, (0, 0, 0, 0), 3, False, False, True),
    (3, 20, 5, 5, 16, (0, 1, 2, 0), 7, True, False, False),
    (2, 32, 11, 13, 32, (1, 1, 1, 1), 16, False, True, False),
    (1, 8, 3, 3, 4, (0, 0, 0, 0), 1, True, True, True),
    (2, 16, 14, 14, 64, (1, 1, 1, 1), 64, True, True, True),
    # tile rows longer than the kernel's 32-tile runs, blocks cutting rows and images
    (2, 16, 5, 71, 16, (1, 1, 1, 1), 50, True, True, True),
    (1, 16, 6, 80, 16, (0, 2, 1, 0), 0, False, False, False),
]


@pytest.mark.parametrize("case", CASES, ids=[f"case{i}" for i in range(len(CASES))])
def test_conv2d_winograd(driver, tmp_path, case):
    N, C, H, W, M, pads, T, has_bias, has_res, relu = case
    rng = np.random.default_rng(hash(case) % 2**32)
    OH, OW = H + pads[0] + pads[2] - 2, W + pads[1] + pads[3] - 2
    x = rng.standard_normal((N, C, H, W)).astype(np.float32)
    w = rng.standard_normal((M, C, 3, 3)).astype(np.float32)
    b = rng.standard_normal(M).astype(np.float32) if has_bias else None
    r = rng.standard_normal((N, M, OH, OW)).astype(np.float32) if has_res else None
    u = winograd_weights(w)
    assert u.shape == (16, M, C) and u.dtype == np.float32
    x.tofile(tmp_path / "x.bin")
    u.tofile(tmp_path / "u.bin")
    if b is not None:
        b.tofile(tmp_path / "b.bin")
    if r is not None:
        r.tofile(tmp_path / "r.bin")
    args = [N, C, H, W, M, pads[0], pads[1], OH, OW, T, int(has_bias), int(has_res), int(relu), 0]
    subprocess.run([str(driver), str(tmp_path), *map(str, args)], check=True)
    y = np.fromfile(tmp_path / "y.bin", dtype=np.float32).reshape(N, M, OH, OW)
    want = conv_ref(x, w, b, r, pads, relu)
    np.testing.assert_allclose(y, want, rtol=1e-4, atol=1e-5 * np.sqrt(9 * C) * 4)
