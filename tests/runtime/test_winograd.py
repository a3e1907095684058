"""sofie::rt::conv2d_winograd<m, r> (every F(m x m, r x r) the compiler has) against a float64
numpy reference, and the header's transform tables against the ones the compiler generates.

A small driver (written to tmp_path) runs one case per invocation; inputs travel as raw
float32 files. The weight transform U = G g G^T is the compiler's (sofie.lowering.winograd).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from sofie.lowering.winograd import POINTS, cook_toom, cpp_tables, transforms, winograd_weights  # noqa: E402

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

template <std::size_t Mt, std::size_t R>
int run_case(const std::string& dir, std::size_t N, std::size_t C, std::size_t H, std::size_t W,
             std::size_t M, std::size_t pt, std::size_t pl, std::size_t OH, std::size_t OW,
             std::size_t T, std::size_t has_bias, std::size_t has_res, std::size_t relu);

int main(int argc, char** argv) {
    if (argc != 16) return 2;
    auto z = [&](int i) { return std::size_t(std::strtoull(argv[i], nullptr, 10)); };
    const std::size_t N = z(2), C = z(3), H = z(4), W = z(5), M = z(6), pt = z(7), pl = z(8),
                      OH = z(9), OW = z(10), T = z(11), has_bias = z(12), has_res = z(13),
                      relu = z(14), variant = z(15);
    if (variant == 23) return run_case<2, 3>(argv[1], N, C, H, W, M, pt, pl, OH, OW, T, has_bias, has_res, relu);
    if (variant == 43) return run_case<4, 3>(argv[1], N, C, H, W, M, pt, pl, OH, OW, T, has_bias, has_res, relu);
    if (variant == 25) return run_case<2, 5>(argv[1], N, C, H, W, M, pt, pl, OH, OW, T, has_bias, has_res, relu);
    if (variant == 45) return run_case<4, 5>(argv[1], N, C, H, W, M, pt, pl, OH, OW, T, has_bias, has_res, relu);
    return 2;
}

template <std::size_t Mt, std::size_t R>
int run_case(const std::string& dir, std::size_t N, std::size_t C, std::size_t H, std::size_t W,
             std::size_t M, std::size_t pt, std::size_t pl, std::size_t OH, std::size_t OW,
             std::size_t T, std::size_t has_bias, std::size_t has_res, std::size_t relu) {
    constexpr std::size_t n = Mt + R - 1;
    auto x = load((dir + "/x.bin").c_str(), N * C * H * W);
    auto u = load((dir + "/u.bin").c_str(), n * n * M * C);
    auto b = load((dir + "/b.bin").c_str(), has_bias ? M : 0);
    auto r = load((dir + "/r.bin").c_str(), has_res ? N * M * OH * OW : 0);
    const std::size_t tiles = N * ((OH + Mt - 1) / Mt) * ((OW + Mt - 1) / Mt);
    std::vector<float> scratch(
        sofie::rt::conv2d_winograd_scratch_floats<Mt, R>(C, M, T == 0 ? tiles : T) + 1, NAN);
    std::vector<float> y(N * M * OH * OW, NAN);
    auto run = [&](auto f) {
        sofie::rt::conv2d_winograd<Mt, R>(x.data(), u.data(), has_bias ? b.data() : nullptr, y.data(),
                                   scratch.data(), N, C, H, W, M, pt, pl, OH, OW, f,
                                   has_res ? r.data() : nullptr, T);
    };
    if (relu) run([](float v) { return v > 0.0f ? v : 0.0f; });
    else run(sofie::rt::Identity{});
    if (scratch.back() == scratch.back()) return 4;  // wrote past the scratch it was given
    FILE* f = std::fopen((dir + "/y.bin").c_str(), "wb");
    std::fwrite(y.data(), sizeof(float), y.size(), f);
    std::fclose(f);
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
    r = w.shape[2]
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    n, c, h, wd = xp.shape
    oh, ow = h - r + 1, wd - r + 1
    y = np.zeros((n, w.shape[0], oh, ow))
    for i in range(r):
        for j in range(r):
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
    (2, 13, 150, 9, 5, (1, 1, 1, 1), 33, True, False, True),
]
VARIANTS = sorted(POINTS)  # (m, r)


def case_for(variant, case):
    """The 3x3 case for an r x r kernel: pads grown by r // 2 - 1 so the output keeps its size."""
    _, r = variant
    N, C, H, W, M, pads, T, has_bias, has_res, relu = case
    grow = r // 2 - 1
    return N, C, H, W, M, tuple(p + grow for p in pads), T, has_bias, has_res, relu


@pytest.mark.parametrize("variant", VARIANTS, ids=[f"F{m}x{r}" for m, r in VARIANTS])
@pytest.mark.parametrize("case", CASES, ids=[f"case{i}" for i in range(len(CASES))])
def test_conv2d_winograd(driver, tmp_path, case, variant):
    m, r = variant
    N, C, H, W, M, pads, T, has_bias, has_res, relu = case_for(variant, case)
    rng = np.random.default_rng(hash(case) % 2**32)
    OH, OW = H + pads[0] + pads[2] - r + 1, W + pads[1] + pads[3] - r + 1
    x = rng.standard_normal((N, C, H, W)).astype(np.float32)
    w = rng.standard_normal((M, C, r, r)).astype(np.float32)
    b = rng.standard_normal(M).astype(np.float32) if has_bias else None
    res = rng.standard_normal((N, M, OH, OW)).astype(np.float32) if has_res else None
    u = winograd_weights(w, m)
    n = m + r - 1
    assert u.shape == (n * n, M, C) and u.dtype == np.float32
    x.tofile(tmp_path / "x.bin")
    u.tofile(tmp_path / "u.bin")
    if b is not None:
        b.tofile(tmp_path / "b.bin")
    if res is not None:
        res.tofile(tmp_path / "r.bin")
    args = [N, C, H, W, M, pads[0], pads[1], OH, OW, T, int(has_bias), int(has_res), int(relu), 10 * m + r]
    subprocess.run([str(driver), str(tmp_path), *map(str, args)], check=True)
    y = np.fromfile(tmp_path / "y.bin", dtype=np.float32).reshape(N, M, OH, OW)
    want = conv_ref(x, w, b, res, pads, relu)
    # float32 error grows with the sum's length (C r^2 terms of unit variance) and with the
    # transform's magnitudes (4x4 and 6x6 tiles: larger coefficients)
    np.testing.assert_allclose(y, want, rtol=1e-4, atol=1e-5 * np.sqrt(r * r * C) * 4 * n)


@pytest.mark.parametrize("variant", VARIANTS)
def test_transforms_compute_the_correlation(variant) -> None:
    """y = A^T [(G g) * (B^T d)] is the 1-D correlation of d by g, exactly (rational arithmetic)."""
    m, r = variant
    at, g, bt = transforms(m, r)
    rng = np.random.default_rng(0)
    for _ in range(5):
        d, k = rng.standard_normal(m + r - 1), rng.standard_normal(r)
        want = [d[i:i + r] @ k for i in range(m)]
        np.testing.assert_allclose(at @ ((g @ k) * (bt @ d)), want, rtol=1e-12, atol=1e-12)


def test_cook_toom_refuses_repeated_points() -> None:
    from fractions import Fraction
    with pytest.raises(ValueError, match="distinct"):
        cook_toom(2, 3, (Fraction(0), Fraction(1), Fraction(1)))
    with pytest.raises(ValueError, match="supported"):
        transforms(6, 3)


def test_header_tables_are_the_generated_ones() -> None:
    """winograd.hxx holds cpp_tables() verbatim between its BEGIN / END generated markers."""
    text = (RUNTIME_INCLUDE / "sofie_rt" / "winograd.hxx").read_text()
    begin = text.index("\n", text.index("// BEGIN generated")) + 1
    assert text[begin:text.index("// END generated")] == cpp_tables()
