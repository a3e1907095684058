// A group-1 conv with few taps per output (C * kH * kW <= kDirectMaxTaps: the 3-channel stems of
// ResNet, MobileNet and EfficientNet) over wide output rows, without im2col. The input of each
// image is laid out once as stride-phase planes in scratch: plane (c, padded row r, phase q)
// holds the padded row's columns q, q + s_w, q + 2 s_w, ... So the tap (c, ky, kx) of output
// row oy is one contiguous run of that row's outputs, at a fixed offset (the tap table) from
// the row's first plane: the GEMM micro-kernel (gemm_kernels.hxx, row_table_tile) reads B's rows
// there in place, 6 output channels (rows of the weights as stored) by up to 64 output columns
// a tile, with bias, residual and activation in its stores.
//
// im2col wrote C kH kW floats per output and the GEMM then read them back through its packing:
// ResNet's 7x7 stride-2 stem (147 taps, 112 x 112 outputs) spent 13% of its time in im2col
// and ran its GEMM at 135-151 GFLOP/s on the AVX-512 host; here the planes are about the size
// of the input, and a tile's 147 x 64 B floats (37 KB) stay in L1 across the output channels.
//
// AVX2 builds take convs of up to kDirectMaxTapsAvx2 taps the same way (a 6 x 16 tile); they
// run wider ones, and builds without AVX2, as conv2d (im2col + GEMM) on the same operands, one
// output row per band (conv2d_direct_scratch_floats covers both).
#ifndef SOFIE_RT_CONV_DIRECT_HXX_V0_1_0
#define SOFIE_RT_CONV_DIRECT_HXX_V0_1_0

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "gemm_kernels.hxx"
#include "kernels.hxx"
#include "pool.hxx"
#include "thread_pool.hxx"

namespace sofie {
inline namespace v0_1_0 {
namespace rt {

// Most taps (C * kH * kW) conv2d_direct takes: its tap table lives on the stack, and a tile's
// taps x 64 floats of B should fit in L1 next to the weights' rows.
inline constexpr std::size_t kDirectMaxTaps = 192;

// Most taps the AVX2 build runs directly; it runs wider convs as conv2d. Its 6 x 16 tile spends
// the table lookup and two unaligned loads on 12 FMAs a k (AVX-512's 6 x 64 tile on 24). Alone,
// built for AVX2 on the AVX-512 host, time / conv2d: conv1's 25 taps 0.39, MobileNet's 3x3 s2
// stem (27) 0.86-0.90, 72 taps 0.85-1.08, 100 to 147 taps (ResNet's stem) 1.04-1.17.
inline constexpr std::size_t kDirectMaxTapsAvx2 = 32;

namespace detail::direct {

// Whether this build runs a conv of `taps` taps over the phase planes (else as conv2d): the
// register kernels' kRows mode reads B's rows through the tap table.
inline constexpr bool takes(std::size_t taps) {
#if defined(__AVX512F__)
    return taps <= kDirectMaxTaps;
#elif defined(SOFIE_RT_REGISTER_KERNELS)
    return taps <= kDirectMaxTapsAvx2;
#else
    (void)taps;
    return false;
#endif
}

// The geometry of the phase planes of one image.
struct Planes {
    std::size_t rows;   // padded rows the output reads: (OH - 1) s_h + kH
    std::size_t width;  // floats per plane row: OW + (kW - 1) / s_w, and a vector of slack
                        // for the last tile's whole-vector loads
    std::size_t phases; // s_w
    std::size_t floats() const { return rows * phases * width; }
};

inline Planes planes_for(std::size_t kH, std::size_t kW, std::size_t sh, std::size_t sw, std::size_t OH,
                         std::size_t OW) {
    return {(OH - 1) * sh + kH, (OW + (kW - 1) / sw + 16 + 15) / 16 * 16, sw};
}

// The stride-phase planes of one image x[C][H][W] into p: padded row r (input row r - pad_top),
// phase q, column j holds the input column j s_w + q - pad_left, zero outside the image.
inline void build_planes(const float* x, float* SOFIE_RESTRICT p, std::size_t C, std::size_t H, std::size_t W,
                         std::size_t pad_top, std::size_t pad_left, const Planes& g) {
    using I = std::ptrdiff_t;
    const std::size_t sw = g.phases;
    for (std::size_t c = 0; c < C; ++c) {
        for (std::size_t r = 0; r < g.rows; ++r) {
            float* row = p + (c * g.rows + r) * sw * g.width;
            const I ih = I(r) - I(pad_top);
            if (ih < 0 || ih >= I(H)) {
                std::fill(row, row + sw * g.width, 0.0f);
                continue;
            }
            const float* xr = x + (c * H + std::size_t(ih)) * W;
            for (std::size_t q = 0; q < sw; ++q) {
                float* dst = row + q * g.width;
                // columns j with 0 <= j sw + q - pad_left < W
                const I first = I(q) - I(pad_left);
                const I lo = first >= 0 ? 0 : (-first + I(sw) - 1) / I(sw);
                const I hi = std::clamp<I>((I(W) - first + I(sw) - 1) / I(sw), lo, I(g.width));
                std::fill(dst, dst + lo, 0.0f);
                const float* src = xr + (first + lo * I(sw));
                if (sw == 1) {
                    std::memcpy(dst + lo, src, std::size_t(hi - lo) * sizeof(float));
                } else {
                    for (I j = lo; j < hi; ++j) dst[j] = src[(j - lo) * I(sw)];
                }
                std::fill(dst + hi, dst + g.width, 0.0f);
            }
        }
    }
}

// Tap k = (c kH + ky) kW + kx of output row 0: its offset in the planes.
inline void tap_table(std::int32_t* taps, std::size_t C, std::size_t kH, std::size_t kW, const Planes& g) {
    for (std::size_t c = 0; c < C; ++c)
        for (std::size_t ky = 0; ky < kH; ++ky)
            for (std::size_t kx = 0; kx < kW; ++kx)
                taps[(c * kH + ky) * kW + kx] = std::int32_t(((c * g.rows + ky) * g.phases + kx % g.phases) * g.width +
                                                             kx / g.phases);
}

// One conv's plane geometry and tap table (C kH kW <= kDirectMaxTaps).
struct Layout {
    Planes g;
    std::int32_t taps[kDirectMaxTaps];
    Layout(std::size_t C, std::size_t kH, std::size_t kW, std::size_t sh, std::size_t sw, std::size_t OH,
           std::size_t OW)
        : g(planes_for(kH, kW, sh, sw, OH, OW)) {
        tap_table(taps, C, kH, kW, g);
    }
};

#if defined(SOFIE_RT_REGISTER_KERNELS)
// One output row oy of one image into y_row (channel 0 of the row; channels ldc apart): tiles
// of up to NR_FLOAT columns (64 on AVX-512, 16 on AVX2), each by every 6 output channels in
// turn (the tile's B floats stay in L1 while the weights' rows pass). res_row: the residual at
// the row, the same layout, or nullptr.
template <class F>
inline void row(const float* planes, const std::int32_t* taps, const float* w, const float* bias, float* y_row,
                const float* res_row, std::size_t ldc, std::size_t K, std::size_t M, std::size_t OW,
                std::size_t oy, std::size_t sh, const Planes& g, const F& f) {
    using gemm::MR;
    gemm::Epilogue<float, F> e{1.0f, 0.0f, true, true, nullptr, true, nullptr, f};
    const float* b = planes + oy * sh * g.phases * g.width;
    for (std::size_t ox = 0; ox < OW; ox += gemm::NR_FLOAT) {
        const std::size_t nr = std::min(gemm::NR_FLOAT, OW - ox);
        for (std::size_t i = 0; i < M; i += MR) {
            e.bias = bias ? bias + i : nullptr;
            e.residual = res_row ? res_row + i * ldc + ox : nullptr;
            gemm::row_table_tile(K, std::min(MR, M - i), nr, w + i * K, K, 1, b + ox, taps, y_row + i * ldc + ox,
                                 ldc, e);
        }
    }
}

// conv2d_direct over the phase planes (OH, OW > 0): each image's planes, then its output rows,
// shared out over the intra-op threads.
template <class F>
inline void conv(const float* x, const float* w, const float* bias, float* y, float* scratch, std::size_t N,
                 std::size_t C, std::size_t H, std::size_t W, std::size_t M, std::size_t kH, std::size_t kW,
                 std::size_t pad_top, std::size_t pad_left, std::size_t sh, std::size_t sw, std::size_t OH,
                 std::size_t OW, const F& f, const float* residual) {
    const std::size_t K = C * kH * kW, P = OH * OW;
    const Layout l(C, kH, kW, sh, sw, OH, OW);
    ThreadPool* pool = intra_op_pool();
    for (std::size_t n = 0; n < N; ++n) {
        build_planes(x + n * C * H * W, scratch, C, H, W, pad_top, pad_left, l.g);
        float* yn = y + n * M * P;
        const float* rn = residual ? residual + n * M * P : nullptr;
        auto rows = [&](std::size_t r0, std::size_t r1) {
            for (std::size_t oy = r0; oy < r1; ++oy)
                row(scratch, l.taps, w, bias, yn + oy * OW, rn ? rn + oy * OW : nullptr, P, K, M, OW, oy, sh, l.g, f);
        };
        if (pool != nullptr && OH >= pool->size() && M * K * P >= kMinSplitMacs) {
            pool->run(pool->size(), [&](std::size_t p, std::size_t) {
                std::size_t r0, r1;
                split_range(OH, pool->size(), p, 1, r0, r1);
                rows(r0, r1);
            });
        } else {
            rows(0, OH);
        }
    }
}
#endif

}  // namespace detail::direct

// Scratch floats conv2d_direct needs (sofie.lowering.conv.direct_scratch_bytes mirrors it): the
// phase planes of one image, or where the build runs it as conv2d, the im2col of one output row.
inline std::size_t conv2d_direct_scratch_floats(std::size_t C, std::size_t kH, std::size_t kW, std::size_t sh,
                                                std::size_t sw, std::size_t OH, std::size_t OW) {
    return std::max(C * detail::direct::planes_for(kH, kW, sh, sw, OH, OW).floats(), C * kH * kW * OW);
}

// y[N, M, OH, OW] = f(conv(x[N, C, H, W], w[M, C, kH, kW]) + bias + residual), group 1, dilation
// 1, C kH kW <= kDirectMaxTaps; bias per output channel (nullptr for none), residual in y's
// layout (nullptr for none). With intra-op threads (thread_pool.hxx), output rows are shared out
// after the planes are built.
template <class F = Identity>
inline void conv2d_direct(const float* x, const float* w, const float* bias, float* y, float* scratch,
                          std::size_t N, std::size_t C, std::size_t H, std::size_t W, std::size_t M,
                          std::size_t kH, std::size_t kW, std::size_t pad_top, std::size_t pad_left,
                          std::size_t pad_bottom, std::size_t pad_right, std::size_t sh, std::size_t sw,
                          std::size_t OH, std::size_t OW, F f, const float* residual) {
    if (OH == 0 || OW == 0) return;
#if defined(SOFIE_RT_REGISTER_KERNELS)
    if (detail::direct::takes(C * kH * kW)) {
        detail::direct::conv(x, w, bias, y, scratch, N, C, H, W, M, kH, kW, pad_top, pad_left, sh, sw, OH, OW, f,
                             residual);
        return;
    }
#endif
    conv2d<float>(x, w, bias, y, scratch, N, C, H, W, M, 1, kH, kW, pad_top, pad_left, pad_bottom, pad_right, sh,
                  sw, 1, 1, OH, OW, f, residual, 1);
}

// Scratch floats conv2d_direct_max_pool needs (sofie.ir.dialects.low mirrors it): the scratch
// of conv2d_direct (phase planes, or one output row's im2col), then a ring of pool_kH conv rows
// of all M channels.
inline std::size_t conv2d_direct_max_pool_scratch_floats(std::size_t C, std::size_t kH, std::size_t kW,
                                                         std::size_t sh, std::size_t sw, std::size_t OH,
                                                         std::size_t OW, std::size_t M, std::size_t pool_kH) {
    return conv2d_direct_scratch_floats(C, kH, kW, sh, sw, OH, OW) + M * pool_kH * OW;
}

// y[N, M, PH, PW] = MaxPool(f(conv(x) + bias)), the conv as conv2d_direct, the pool's window
// pool_kH x pool_kW (kW 2 or 3) at strides (pool_sh, pool_sw) (s_w 1 or 2), dilation 1,
// starting at (p pool_sh - pool_pad_top, q pool_sw - pool_pad_left): each conv row is computed
// once into a ring of pool_kH rows in scratch and pooled from there, so the conv's output never
// goes through memory (ResNet's stem: 3.2 MB written and read back by the MaxPool). With
// intra-op threads, output channels (whole register tiles) are shared out after the planes are
// built; each thread computes and pools its channels' rows.
template <class F = Identity>
inline void conv2d_direct_max_pool(const float* x, const float* w, const float* bias, float* y, float* scratch,
                                   std::size_t N, std::size_t C, std::size_t H, std::size_t W, std::size_t M,
                                   std::size_t kH, std::size_t kW, std::size_t pad_top, std::size_t pad_left,
                                   std::size_t pad_bottom, std::size_t pad_right, std::size_t sh, std::size_t sw,
                                   std::size_t OH, std::size_t OW, F f, std::size_t pool_kH, std::size_t pool_kW,
                                   std::size_t pool_pad_top, std::size_t pool_pad_left, std::size_t pool_sh,
                                   std::size_t pool_sw, std::size_t PH, std::size_t PW) {
    using I = std::ptrdiff_t;
    const std::size_t K = C * kH * kW;
    const detail::MaxPoolRow<float> max_row = detail::max_pool_row_for<float>(pool_kW, pool_sw, 1);
    if (OH == 0 || OW == 0 || PH == 0 || PW == 0 || max_row == nullptr) return;
    float* ring = scratch + conv2d_direct_scratch_floats(C, kH, kW, sh, sw, OH, OW);
    const std::size_t slot = M * OW;  // one conv row of every channel
    // Over the phase planes (detail::direct::takes), else one output row's im2col at a time
    const bool direct = detail::direct::takes(K);
    const detail::direct::Layout l(C, kH, kW, sh, sw, OH, OW);
    (void)pad_bottom;  // the planes and im2col clip at the image; the output sizes hold these
    (void)pad_right;
    // Conv row `r` of output channels [m0, m1) of image xn into dst.
    auto conv_row = [&](const float* xn, float* dst, std::size_t r, std::size_t m0, std::size_t m1) {
#if defined(SOFIE_RT_REGISTER_KERNELS)
        if (direct) {
            detail::direct::row(scratch, l.taps, w + m0 * K, bias ? bias + m0 : nullptr, dst, nullptr, OW, K, m1 - m0,
                                OW, r, sh, l.g, f);
            return;
        }
#endif
        detail::im2col(xn, scratch, C, H, W, kH, kW, pad_top, pad_left, sh, sw, 1, 1, r, r + 1, OW);
        gemm_fused<float>(false, false, m1 - m0, OW, K, 1.0f, w + m0 * K, K, scratch, OW, 0.0f, dst, OW,
                          bias ? bias + m0 : nullptr, true, nullptr, f);
    };
    // Output channels [m0, m1) of image n: conv rows into the ring as the pooled rows need them.
    auto channels = [&](const float* xn, float* yn, std::size_t m0, std::size_t m1) {
        std::size_t next = 0;  // the next conv row to compute
        for (std::size_t p = 0; p < PH; ++p) {
            const I h0 = I(p * pool_sh) - I(pool_pad_top);
            std::size_t lo, hi;
            detail::tap_range(h0, 1, pool_kH, OH, lo, hi);
            for (; I(next) < h0 + I(hi); ++next) conv_row(xn, ring + (next % pool_kH) * slot + m0 * OW, next, m0, m1);
            const float* rows[detail::kMaxPoolRows];
            for (std::size_t m = m0; m < m1; ++m) {
                for (std::size_t i = lo; i < hi; ++i)
                    rows[i - lo] = ring + (std::size_t(h0) + i) % pool_kH * slot + m * OW;
                max_row(yn + (m * PH + p) * PW, rows, hi - lo, pool_pad_left, OW, PW);
            }
        }
    };
    ThreadPool* pool = intra_op_pool();
    for (std::size_t n = 0; n < N; ++n) {
        const float* xn = x + n * C * H * W;
        float* yn = y + n * M * PH * PW;
        if (!direct) {
            channels(xn, yn, 0, M);
            continue;
        }
        // the planes are shared; each thread writes its own channels of the ring
        detail::direct::build_planes(xn, scratch, C, H, W, pad_top, pad_left, l.g);
        if (pool != nullptr && M >= pool->size() * detail::gemm::MR && M * K * OH * OW >= detail::kMinSplitMacs) {
            pool->run(pool->size(), [&](std::size_t part, std::size_t) {
                std::size_t m0, m1;
                detail::split_range(M, pool->size(), part, detail::gemm::MR, m0, m1);
                if (m0 < m1) channels(xn, yn, m0, m1);
            });
            continue;
        }
        channels(xn, yn, 0, M);
    }
}

}  // namespace rt
}  // namespace v0_1_0
}  // namespace sofie

#endif  // SOFIE_RT_CONV_DIRECT_HXX_V0_1_0
