// Winograd F(2x2, 3x3) convolution for 3x3, stride-1, dilation-1, group-1 Conv.
// The weights come pre-transformed (U = G g G^T, laid out [16][M][C], computed at
// compile time); per block of `tile_block` 2x2 output tiles (numbered across the
// whole batch, so small late-layer images still give wide GEMMs):
//   V[16][C][T] = B^T d B   (4x4 input tiles, zero outside the image)
//   Mo[16][M][T] = U[k] V[k] (16 GEMMs through the BLAS shim)
//   y = act(A^T Mo A + bias + residual), clipped at the image's right/bottom edge.
// Scratch comes from the caller: conv2d_winograd_scratch_floats(C, M, tile_block).
#ifndef SOFIE_RT_WINOGRAD_HXX_V0_1_0
#define SOFIE_RT_WINOGRAD_HXX_V0_1_0

#include <algorithm>
#include <cstddef>

#include "blas.hxx"
#include "kernels.hxx"

namespace sofie {
inline namespace v0_1_0 {
namespace rt {

namespace detail {

// Floats between consecutive V[k] (rows = C) or Mo[k] (rows = M) matrices: rounded up to 4 KB
// plus one cache line, so the 16 streams the transforms write or read at once fall in
// different L1 sets instead of thrashing one (a stride of a multiple of 4 KB would).
inline std::size_t wino_matrix_stride(std::size_t rows, std::size_t tiles) {
    return (rows * tiles + 1023) / 1024 * 1024 + 16;
}

}  // namespace detail

// Scratch floats conv2d_winograd needs for blocks of `tile_block` tiles (the compiler's
// Conv.scratch_bytes mirrors this formula).
inline std::size_t conv2d_winograd_scratch_floats(std::size_t C, std::size_t M,
                                                  std::size_t tile_block) {
    return 16 * (detail::wino_matrix_stride(C, tile_block) + detail::wino_matrix_stride(M, tile_block));
}

namespace detail {

// Position of a tile in the batch: image n, tile row ti, tile column tj.
struct WinoTilePos {
    std::size_t n, ti, tj;
    std::size_t TH, TW;
};

inline WinoTilePos wino_tile_pos(std::size_t t, std::size_t TH, std::size_t TW) {
    const std::size_t per_image = TH * TW, r = t % per_image;
    return {t / per_image, r / TW, r % TW, TH, TW};
}

// Tiles are transformed in runs of consecutive tiles of one tile row (at most kWinoRun),
// so both passes of each transform are loops over contiguous columns the compiler vectorizes.
inline constexpr std::size_t kWinoRun = 32;

// Number of tiles from p to the end of its tile row, of the block, and of a run.
inline std::size_t wino_run_length(const WinoTilePos& p, std::size_t left) {
    return std::min(std::min(kWinoRun, p.TW - p.tj), left);
}

inline void wino_advance(WinoTilePos& p, std::size_t len) {
    p.tj += len;
    if (p.tj == p.TW) {
        p.tj = 0;
        if (++p.ti == p.TH) {
            p.ti = 0;
            ++p.n;
        }
    }
}

// V[k][c][j] for the tiles t0 .. t0+nt of the batch (k = 4*row + col of B^T d B).
inline void wino_input_transform(const float* x, float* SOFIE_RESTRICT V, std::size_t C,
                                 std::size_t H, std::size_t W, std::size_t pad_top,
                                 std::size_t pad_left, std::size_t TH, std::size_t TW,
                                 std::size_t t0, std::size_t nt) {
    using I = std::ptrdiff_t;
    constexpr std::size_t Q = 2 * kWinoRun + 2;  // input columns of a run
    const std::size_t kstride = wino_matrix_stride(C, nt);
    float d[4][Q], e[4][Q];
    for (std::size_t c = 0; c < C; ++c) {
        float* SOFIE_RESTRICT vc = V + c * nt;
        WinoTilePos p = wino_tile_pos(t0, TH, TW);
        for (std::size_t j = 0; j < nt;) {
            const std::size_t len = wino_run_length(p, nt - j), ncol = 2 * len + 2;
            const float* xc = x + (p.n * C + c) * H * W;
            const I ih0 = I(2 * p.ti) - I(pad_top), iw0 = I(2 * p.tj) - I(pad_left);
            // the 4 input rows of the run, zero outside the image
            I lo, hi;
            valid_span(iw0, 1, I(W), I(ncol), lo, hi);
            for (int r = 0; r < 4; ++r) {
                const I ih = ih0 + r;
                if (ih < 0 || ih >= I(H)) {
                    std::fill(d[r], d[r] + ncol, 0.0f);
                    continue;
                }
                const float* src = xc + ih * I(W) + iw0;
                std::fill(d[r], d[r] + lo, 0.0f);
                for (I q = lo; q < hi; ++q) d[r][q] = src[q];
                std::fill(d[r] + hi, d[r] + ncol, 0.0f);
            }
            // B^T d over rows (B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1])
            for (std::size_t q = 0; q < ncol; ++q) {
                e[0][q] = d[0][q] - d[2][q];
                e[1][q] = d[1][q] + d[2][q];
                e[2][q] = d[2][q] - d[1][q];
                e[3][q] = d[1][q] - d[3][q];
            }
            // (B^T d) B over the columns of each tile
            for (int r = 0; r < 4; ++r) {
                const float* er = e[r];
                float* SOFIE_RESTRICT o0 = vc + std::size_t(4 * r) * kstride + j;
                float* SOFIE_RESTRICT o1 = o0 + kstride;
                float* SOFIE_RESTRICT o2 = o1 + kstride;
                float* SOFIE_RESTRICT o3 = o2 + kstride;
                for (std::size_t jj = 0; jj < len; ++jj) {
                    const float a0 = er[2 * jj], a1 = er[2 * jj + 1], a2 = er[2 * jj + 2],
                                a3 = er[2 * jj + 3];
                    o0[jj] = a0 - a2;
                    o1[jj] = a1 + a2;
                    o2[jj] = a2 - a1;
                    o3[jj] = a1 - a3;
                }
            }
            wino_advance(p, len);
            j += len;
        }
    }
}

// y tiles t0 .. t0+nt from Mo[k][m][j]: y = f(A^T Mo A + bias[m] + residual).
template <class F>
inline void wino_output_transform(const float* Mo, float* y, const float* bias,
                                  const float* residual, std::size_t M, std::size_t OH,
                                  std::size_t OW, std::size_t TH, std::size_t TW, std::size_t t0,
                                  std::size_t nt, F f) {
    const std::size_t kstride = wino_matrix_stride(M, nt), P = OH * OW;
    float o[2][2 * kWinoRun];  // the run's two output rows
    for (std::size_t m = 0; m < M; ++m) {
        const float* mm = Mo + m * nt;
        const float b = bias ? bias[m] : 0.0f;
        WinoTilePos p = wino_tile_pos(t0, TH, TW);
        for (std::size_t j = 0; j < nt;) {
            const std::size_t len = wino_run_length(p, nt - j);
            // A^T = [1 1 1 0; 0 1 -1 -1]: rows (k = 4*row + col), then columns
            float r0[4][kWinoRun], r1[4][kWinoRun];
            for (int s = 0; s < 4; ++s) {
                const float* v0 = mm + std::size_t(s) * kstride + j;
                const float* v1 = v0 + 4 * kstride;
                const float* v2 = v1 + 4 * kstride;
                const float* v3 = v2 + 4 * kstride;
                for (std::size_t jj = 0; jj < len; ++jj) {
                    r0[s][jj] = v0[jj] + v1[jj] + v2[jj];
                    r1[s][jj] = v1[jj] - v2[jj] - v3[jj];
                }
            }
            for (std::size_t jj = 0; jj < len; ++jj) {
                o[0][2 * jj] = r0[0][jj] + r0[1][jj] + r0[2][jj] + b;
                o[0][2 * jj + 1] = r0[1][jj] - r0[2][jj] - r0[3][jj] + b;
                o[1][2 * jj] = r1[0][jj] + r1[1][jj] + r1[2][jj] + b;
                o[1][2 * jj + 1] = r1[1][jj] - r1[2][jj] - r1[3][jj] + b;
            }
            const std::size_t oh = 2 * p.ti, ow = 2 * p.tj;
            const std::size_t nr = std::min<std::size_t>(2, OH - oh);
            const std::size_t ncol = std::min(2 * len, OW - ow);  // the row's last tile may be partial
            for (std::size_t r = 0; r < nr; ++r) {
                const std::size_t base = (p.n * M + m) * P + (oh + r) * OW + ow;
                float* SOFIE_RESTRICT yr = y + base;
                const float* orow = o[r];
                if (residual) {
                    const float* zr = residual + base;
                    for (std::size_t q = 0; q < ncol; ++q) yr[q] = f(orow[q] + zr[q]);
                } else {
                    for (std::size_t q = 0; q < ncol; ++q) yr[q] = f(orow[q]);
                }
            }
            wino_advance(p, len);
            j += len;
        }
    }
}

}  // namespace detail

// y[N, M, OH, OW] = act(conv3x3(x[N, C, H, W]) + bias + residual) with stride 1,
// dilation 1, group 1 and any pads (OH = H + pad_top + pad_bottom - 2). u is the
// transformed weight [16][M][C]. tile_block = 0 means all tiles at once.
template <class F = Identity>
inline void conv2d_winograd(const float* x, const float* u, const float* bias, float* y,
                            float* scratch, std::size_t N, std::size_t C, std::size_t H,
                            std::size_t W, std::size_t M, std::size_t pad_top,
                            std::size_t pad_left, std::size_t OH, std::size_t OW, F f,
                            const float* residual, std::size_t tile_block) {
    const std::size_t TH = (OH + 1) / 2, TW = (OW + 1) / 2, total = N * TH * TW;
    if (total == 0) return;
    const std::size_t T = tile_block == 0 ? total : tile_block;
    {
        for (std::size_t t0 = 0; t0 < total; t0 += T) {
            const std::size_t nt = std::min(T, total - t0);
            const std::size_t vs = detail::wino_matrix_stride(C, nt);
            const std::size_t ms = detail::wino_matrix_stride(M, nt);
            float* V = scratch;
            float* Mo = scratch + 16 * vs;
            detail::wino_input_transform(x, V, C, H, W, pad_top, pad_left, TH, TW, t0, nt);
            for (std::size_t k = 0; k < 16; ++k)
                sgemm(false, false, M, nt, C, 1.0f, u + k * M * C, C, V + k * vs, nt, 0.0f,
                      Mo + k * ms, nt);
            detail::wino_output_transform(Mo, y, bias, residual, M, OH, OW, TH, TW, t0, nt, f);
        }
    }
}

}  // namespace rt
}  // namespace v0_1_0
}  // namespace sofie

#endif  // SOFIE_RT_WINOGRAD_HXX_V0_1_0
