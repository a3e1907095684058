// Direct depthwise convolution (ONNX Conv with one input channel per group), NCHW, dilation 1,
// read straight from x on AVX-512: no phase planes, no copy, no scratch.
//
// conv2d_depthwise (depthwise.hxx) pays per channel for phase planes and a flat output that
// is stored again; on 14x14 and 7x7 images that overhead is most of the time, and on 112x112
// the planes overflow L1. Here an output row of up to 16 floats is one zmm accumulated over its
// kH * kW taps (one masked load and one FMA each; the masked-off lanes are the zero padding and
// never fault; the even columns of two loads by one permute for stride 2), 7 rows at a time
// sharing their input rows' taps, stored with bias and residual added under the row's mask; the
// fused activation follows over blocks of 16 channels.
// Images of at most 64 outputs with stride 1 and W == OW (7x7, 8x8) run flat instead: the
// channel's outputs as up to 4 vectors across row ends (dw_flat). Wider rows run in chunks of
// 16 columns, several output rows per step (dw_wide_image below).
// Every other case (AVX2 and older builds, double, strides past 2, kW > 8) runs
// conv2d_depthwise: a split-row variant of this kernel for them measured 0.9-2.3x its time
// in the -mavx2 build, so the lowering's choice of this op costs other builds nothing; the
// scratch is conv2d_depthwise's. Measured: sofie/lowering/conv.py, takes_depthwise_small.
#ifndef SOFIE_RT_DEPTHWISE_SMALL_HXX_V0_1_0
#define SOFIE_RT_DEPTHWISE_SMALL_HXX_V0_1_0

#include <algorithm>
#include <cstddef>
#include <type_traits>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "depthwise.hxx"
#include "kernels.hxx"

namespace sofie {
inline namespace v0_1_0 {
namespace rt {

namespace detail {
inline constexpr std::size_t kDwSmallMaxKernel = 8;  // kW: the fixed arrays of DwAvx512Row

#if defined(__AVX512F__)
// The AVX-512 path for float rows of up to 16 output columns: no scratch and no copy. The
// taps are masked loads straight from x (masked-off lanes read as zero and never fault, so
// they are the padding). Stride 1: lane ow of kernel column kw reads column ow + kw - pad_left.
// Stride 2: two masked loads cover columns 2 ow + kw - pad_left for ow < 16 and one permute
// keeps the even ones. Bias and residual are added to the accumulator, stored with the row's
// mask; the activation follows over the channel's outputs.
#if defined(__GNUC__)
#define SOFIE_DW_INLINE inline __attribute__((always_inline))
#else
#define SOFIE_DW_INLINE inline
#endif

struct DwAvx512Row {
    std::ptrdiff_t off[kDwSmallMaxKernel];          // first column read by kernel column kw
    __mmask16 lo[kDwSmallMaxKernel], hi[kDwSmallMaxKernel];  // valid lanes of the 1 or 2 loads
    __mmask16 out;                                  // the OW lanes stored
};

inline __mmask16 dw_lanes(std::ptrdiff_t from, std::ptrdiff_t to) {  // lanes [from, to) of 16
    from = std::max<std::ptrdiff_t>(0, std::min<std::ptrdiff_t>(16, from));
    to = std::max(from, std::min<std::ptrdiff_t>(16, to));
    return __mmask16(((1u << to) - 1u) & ~((1u << from) - 1u));
}

inline DwAvx512Row dw_avx512_row(std::size_t W, std::size_t kW, std::size_t pad_left,
                                 std::size_t OW) {
    using I = std::ptrdiff_t;
    DwAvx512Row r;
    for (std::size_t kw = 0; kw < kW; ++kw) {
        r.off[kw] = I(kw) - I(pad_left);  // lane l of load j reads column off + 16 j + l
        r.lo[kw] = dw_lanes(-r.off[kw], I(W) - r.off[kw]);
        r.hi[kw] = dw_lanes(-r.off[kw] - 16, I(W) - r.off[kw] - 16);
    }
    r.out = dw_lanes(0, I(OW));
    return r;
}

// The activation runs over blocks of 16 channels' outputs, still in L1: 16 P elements are
// whole vectors for any P, where a channel's 49 left a scalar tail (a SiLU tail cost as much
// as the 3 vectors before it; f applied on the accumulator registers ran lane by lane, 4x
// slower). Kept out of line and flattened (SOFIE_ACTIVATION_PASS): inlined into the channel
// loops, GCC 12 leaves it scalar ("no vectype").
inline constexpr std::size_t kDwActivationChannels = 16;

template <class F>
SOFIE_ACTIVATION_PASS void dw_activate(float* SOFIE_RESTRICT y, std::size_t n, F f) {
    for (std::size_t j = 0; j < n; ++j) y[j] = f(y[j]);
}

// After channel m of M: the activation over the block of 16 channels m closes.
template <class F>
inline void dw_activate_block(float* y, std::size_t m, std::size_t M, std::size_t P, F f) {
    if ((m + 1) % kDwActivationChannels == 0 || m + 1 == M) {
        const std::size_t m0 = m / kDwActivationChannels * kDwActivationChannels;
        dw_activate(y + m0 * P, (m + 1 - m0) * P, f);
    }
}

// Tap t's weight in every lane: the channel's broadcast registers when the kernel's size is
// known at compile time, else a broadcast load.
template <int KH, int KW>
SOFIE_DW_INLINE __m512 dw_weight(const float* wm, const __m512* wv, std::size_t t) {
    if (KH > 0 && KW > 0) return wv[t];
    return _mm512_set1_ps(wm[t]);
}

// Kernel column kw of input row i (of a step's rows) into each of the R output rows that
// reads it: output row q takes it as kernel row i - q * sh.
template <int KH, int KW, int R>
SOFIE_DW_INLINE void dw_feed_rows(__m512 (&acc)[R], __m512 tap, const float* wm, const __m512* wv, std::size_t i,
                                  std::size_t kw, std::size_t sh, std::size_t kH, std::size_t kW) {
#pragma GCC unroll 8
    for (int q = 0; q < R; ++q) {
        const std::size_t kh = i - std::size_t(q) * sh;  // wraps when negative
        if (i >= std::size_t(q) * sh && kh < kH) acc[q] = _mm512_fmadd_ps(dw_weight<KH, KW>(wm, wv, kh * kW + kw), tap, acc[q]);
    }
}

// R output rows from oh0 of one channel (rows of up to 16 columns): R accumulators, each tap
// vector (one masked load, two and a permute for stride 2) of an input row feeding every one of
// the R rows that reads it. One row at a time, a row was a chain of kH * kW dependent FMAs:
// latency-bound (5x5 on 14x14, 672 channels: 1.5x ORT's time). S (s_w), SH, KH, KW, R are
// template parameters; 0 for SH / KH / KW: known at run time, then R is 1.
template <std::size_t S, int SH, int KH, int KW, int R>
SOFIE_DW_INLINE void dw_avx512_rows(const float* xc, const float* wm, const __m512* wv, float b,
                                    const float* residual, float* y, const DwAvx512Row& r,
                                    std::ptrdiff_t H, std::size_t W, std::size_t kH_rt, std::size_t kW_rt,
                                    std::size_t pad_top, std::size_t sh_rt, std::size_t oh0, std::size_t OW) {
    static_assert(R == 1 || (SH > 0 && KH > 0), "several rows per step need the row stride and kH");
    const std::size_t kH = KH > 0 ? std::size_t(KH) : kH_rt, kW = KW > 0 ? std::size_t(KW) : kW_rt;
    const std::size_t sh = SH > 0 ? std::size_t(SH) : sh_rt;
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    __m512 acc[R];
#pragma GCC unroll 8
    for (int q = 0; q < R; ++q) acc[q] = _mm512_set1_ps(b);
    const std::ptrdiff_t ih0 = std::ptrdiff_t(oh0 * sh) - std::ptrdiff_t(pad_top);
    const std::size_t rows_in = (R - 1) * sh + kH;
#pragma GCC unroll 16
    for (std::size_t i = 0; i < rows_in; ++i) {
        const std::ptrdiff_t ih = ih0 + std::ptrdiff_t(i);
        if (ih < 0 || ih >= H) continue;  // padding rows
        const float* row = xc + std::size_t(ih) * W;
#pragma GCC unroll 8
        for (std::size_t kw = 0; kw < kW; ++kw) {
            __m512 v = _mm512_maskz_loadu_ps(r.lo[kw], row + r.off[kw]);
            if (S == 2) {
                const __m512 v2 = _mm512_maskz_loadu_ps(r.hi[kw], row + r.off[kw] + 16);
                v = _mm512_permutex2var_ps(v, even, v2);
            }
            dw_feed_rows<KH, KW, R>(acc, v, wm, wv, i, kw, sh, kH, kW);
        }
    }
#pragma GCC unroll 8
    for (int q = 0; q < R; ++q) {
        const std::size_t oh = oh0 + std::size_t(q);
        if (residual) acc[q] = _mm512_add_ps(acc[q], _mm512_maskz_loadu_ps(r.out, residual + oh * OW));
        _mm512_mask_storeu_ps(y + oh * OW, r.out, acc[q]);
    }
}

// One channel: steps of R rows, the last OH % R rows in steps of 4, 2 and 1.
template <std::size_t S, int SH, int KH, int KW, int R>
inline void dw_avx512_channel(const float* xc, const float* wm, float b, const float* residual, float* y,
                              const DwAvx512Row& r, std::size_t H, std::size_t W, std::size_t kH,
                              std::size_t kW, std::size_t pad_top, std::size_t sh, std::size_t OH,
                              std::size_t OW) {
    // the weights broadcast once per channel when the kernel's size is known (9 or 25 zmm)
    __m512 wv[KH > 0 && KW > 0 ? KH * KW : 1];
    if (KH > 0 && KW > 0) {
        for (int t = 0; t < KH * KW; ++t) wv[t] = _mm512_set1_ps(wm[t]);
    }
    const std::ptrdiff_t h = std::ptrdiff_t(H);
    std::size_t oh = 0;
    for (; oh + R <= OH; oh += R)
        dw_avx512_rows<S, SH, KH, KW, R>(xc, wm, wv, b, residual, y, r, h, W, kH, kW, pad_top, sh, oh, OW);
    if constexpr (R > 4) {
        if (oh + 4 <= OH) {
            dw_avx512_rows<S, SH, KH, KW, 4>(xc, wm, wv, b, residual, y, r, h, W, kH, kW, pad_top, sh, oh, OW);
            oh += 4;
        }
    }
    if constexpr (R > 2) {
        if (oh + 2 <= OH) {
            dw_avx512_rows<S, SH, KH, KW, 2>(xc, wm, wv, b, residual, y, r, h, W, kH, kW, pad_top, sh, oh, OW);
            oh += 2;
        }
    }
    for (; oh < OH; ++oh)
        dw_avx512_rows<S, SH, KH, KW, 1>(xc, wm, wv, b, residual, y, r, h, W, kH, kW, pad_top, sh, oh, OW);
}

// Images of at most 64 outputs whose rows keep their width (stride 1, W == OW): output p =
// oh * OW + ow reads x at p + (kh - pad_top) * W + kw - pad_left for every p, so a channel's
// outputs are ceil(P / 16) flat vectors, each tap one masked load per vector (the masks drop
// the padding). A 7x7 image takes 4 vectors where the row path takes 7 of 16 lanes with 7
// used; two channels at a time give 2 NV independent FMA chains. Measured alone (SiLU
// epilogue off, inputs out of L2), time / the row path's: 5x5 on 7x7 C=1152 0.46-0.58, 3x3 on
// 7x7 C=960 0.44-0.60 (the row path ran EfficientNet's 7x7 layers at 2.3x ORT's time).
inline constexpr std::size_t kDwFlatMax = 64, kDwFlatMaxTaps = 64;

struct DwFlat {
    std::size_t nv, taps;
    std::ptrdiff_t off[kDwFlatMaxTaps];             // x offset of tap t from the output index
    __mmask16 in[kDwFlatMax / 16][kDwFlatMaxTaps];  // the lanes of vector v tap t reads
    __mmask16 out[kDwFlatMax / 16];                 // the lanes of vector v that are outputs
};

inline bool dw_flat_fits(std::size_t H, std::size_t W, std::size_t kH, std::size_t kW,
                         std::size_t stride_h, std::size_t stride_w, std::size_t OH, std::size_t OW) {
    return stride_h == 1 && stride_w == 1 && W == OW && H == OH && OH * OW <= kDwFlatMax &&
           kH * kW <= kDwFlatMaxTaps;
}

inline void dw_flat_geometry(DwFlat& g, std::size_t H, std::size_t W, std::size_t kH, std::size_t kW,
                             std::size_t pad_top, std::size_t pad_left) {
    using I = std::ptrdiff_t;
    const std::size_t P = H * W;
    g.nv = std::min<std::size_t>((P + 15) / 16, kDwFlatMax / 16);  // (dw_flat_fits: P <= kDwFlatMax; the min tells GCC)
    g.taps = kH * kW;
    for (std::size_t v = 0; v < g.nv; ++v) g.out[v] = dw_lanes(0, I(P) - I(16 * v));
    for (std::size_t kh = 0; kh < kH; ++kh) {
        for (std::size_t kw = 0; kw < kW; ++kw) {
            const std::size_t t = kh * kW + kw;
            const I dh = I(kh) - I(pad_top), dw = I(kw) - I(pad_left);
            g.off[t] = dh * I(W) + dw;
            for (std::size_t v = 0; v < g.nv; ++v) {
                unsigned m = 0;
                for (std::size_t l = 0; l < 16 && 16 * v + l < P; ++l) {
                    const I oh = I((16 * v + l) / W), ow = I((16 * v + l) % W);
                    if (oh + dh >= 0 && oh + dh < I(H) && ow + dw >= 0 && ow + dw < I(W)) m |= 1u << l;
                }
                g.in[v][t] = __mmask16(m);
            }
        }
    }
}

// CH channels (1 or 2) of NV vectors each: y[c] = sum over taps of w[c][t] * x[c] shifted.
// Every loop over c and v is unrolled: left rolled, GCC kept the accumulators in a stack
// array and stored all 2 NV of them at every tap (5x5 on 7x7, C=1152: 1.25x the time).
template <std::size_t NV, std::size_t CH>
inline void dw_flat_channels(const float* const* xc, const float* const* wm, const float* b,
                             const float* const* res, float* const* y, const DwFlat& g) {
    __m512 a[CH][NV];
#pragma GCC unroll 2
    for (std::size_t c = 0; c < CH; ++c)
#pragma GCC unroll 4
        for (std::size_t v = 0; v < NV; ++v) a[c][v] = _mm512_set1_ps(b[c]);
    for (std::size_t t = 0; t < g.taps; ++t) {
#pragma GCC unroll 2
        for (std::size_t c = 0; c < CH; ++c) {
            const __m512 wv = _mm512_set1_ps(wm[c][t]);
            const float* src = xc[c] + g.off[t];
#pragma GCC unroll 4
            for (std::size_t v = 0; v < NV; ++v)
                a[c][v] = _mm512_fmadd_ps(wv, _mm512_maskz_loadu_ps(g.in[v][t], src + 16 * v), a[c][v]);
        }
    }
#pragma GCC unroll 2
    for (std::size_t c = 0; c < CH; ++c) {
        if (res[c]) {
#pragma GCC unroll 4
            for (std::size_t v = 0; v < NV; ++v)
                a[c][v] = _mm512_add_ps(a[c][v], _mm512_maskz_loadu_ps(g.out[v], res[c] + 16 * v));
        }
#pragma GCC unroll 4
        for (std::size_t v = 0; v < NV; ++v) _mm512_mask_storeu_ps(y[c] + 16 * v, g.out[v], a[c][v]);
    }
}

template <std::size_t NV, class F>
inline void dw_flat_image(const float* x, const float* w, const float* bias, const float* residual,
                          float* y, std::size_t C, std::size_t M, std::size_t P, const DwFlat& g, F f) {
    const std::size_t per_channel = M / C;
    for (std::size_t m = 0; m < M; m += 2) {
        const std::size_t ch = std::min<std::size_t>(2, M - m);
        const float* xc[2];
        const float* wm[2];
        const float* res[2] = {nullptr, nullptr};
        float* yc[2];
        float b[2] = {0.f, 0.f};
        for (std::size_t c = 0; c < ch; ++c) {
            xc[c] = x + ((m + c) / per_channel) * P;
            wm[c] = w + (m + c) * g.taps;
            if (bias) b[c] = bias[m + c];
            if (residual) res[c] = residual + (m + c) * P;
            yc[c] = y + (m + c) * P;
        }
        if (ch == 2) {
            dw_flat_channels<NV, 2>(xc, wm, b, res, yc, g);
        } else {
            dw_flat_channels<NV, 1>(xc, wm, b, res, yc, g);
        }
        dw_activate_block(y, m + ch - 1, M, P, f);
    }
}

template <class F>
inline void dw_flat(const float* x, const float* w, const float* bias, const float* residual, float* y,
                    std::size_t C, std::size_t H, std::size_t W, std::size_t M, std::size_t kH,
                    std::size_t kW, std::size_t pad_top, std::size_t pad_left, F f) {
    DwFlat g;
    dw_flat_geometry(g, H, W, kH, kW, pad_top, pad_left);
    const std::size_t P = H * W;
    switch (g.nv) {
        case 1: dw_flat_image<1>(x, w, bias, residual, y, C, M, P, g, f); break;
        case 2: dw_flat_image<2>(x, w, bias, residual, y, C, M, P, g, f); break;
        case 3: dw_flat_image<3>(x, w, bias, residual, y, C, M, P, g, f); break;
        default: dw_flat_image<4>(x, w, bias, residual, y, C, M, P, g, f); break;
    }
}

// Whether the AVX-512 path takes this conv: float, rows of up to 16 outputs, stride 1 or 2
// along a row (two loads cover 32 input columns), kW <= 8.
template <class T>
inline bool dw_avx512_fits(std::size_t stride_w, std::size_t OW) {
    return std::is_same<T, float>::value && OW <= 16 && (stride_w == 1 || stride_w == 2);
}

// Output rows per step of the row path's 3x3 and 5x5 (stride 1 and 2): 7, half of a 14-row
// image. Measured on MobileNet's and EfficientNet's 14x14 shapes (bench/probes/depthwise_wide.cpp,
// inputs out of L2), time / one row per step: 7 rows 0.66-0.76, 4 rows 0.80-0.86, 2 rows 0.84-0.93.
inline constexpr int kDwRows = 7;

template <class F>
inline void dw_avx512_image(const float* x, const float* w, const float* bias,
                            const float* residual, float* y, std::size_t C, std::size_t H,
                            std::size_t W, std::size_t M, std::size_t kH, std::size_t kW,
                            std::size_t pad_top, std::size_t pad_left, std::size_t stride_h,
                            std::size_t stride_w, std::size_t OH, std::size_t OW, F f) {
    const DwAvx512Row r = dw_avx512_row(W, kW, pad_left, OW);
    const std::size_t per_channel = M / C, P = OH * OW;
    for (std::size_t m = 0; m < M; ++m) {
        const float* xc = x + (m / per_channel) * H * W;
        const float* wm = w + m * kH * kW;
        const float b = bias ? bias[m] : 0.f;
        const float* rm = residual ? residual + m * P : nullptr;
        float* ym = y + m * P;
        // 3x3 and 5x5 with s_h = s_w: the kernel's size known, kDwRows rows per step
        const bool sq3 = kH == 3 && kW == 3, sq5 = kH == 5 && kW == 5;
        if (stride_w == 1) {
            if (stride_h == 1 && sq3) {
                dw_avx512_channel<1, 1, 3, 3, kDwRows>(xc, wm, b, rm, ym, r, H, W, kH, kW, pad_top, 1, OH, OW);
            } else if (stride_h == 1 && sq5) {
                dw_avx512_channel<1, 1, 5, 5, kDwRows>(xc, wm, b, rm, ym, r, H, W, kH, kW, pad_top, 1, OH, OW);
            } else {
                dw_avx512_channel<1, 0, 0, 0, 1>(xc, wm, b, rm, ym, r, H, W, kH, kW, pad_top, stride_h, OH, OW);
            }
        } else {
            if (stride_h == 2 && sq3) {
                dw_avx512_channel<2, 2, 3, 3, kDwRows>(xc, wm, b, rm, ym, r, H, W, kH, kW, pad_top, 2, OH, OW);
            } else if (stride_h == 2 && sq5) {
                dw_avx512_channel<2, 2, 5, 5, kDwRows>(xc, wm, b, rm, ym, r, H, W, kH, kW, pad_top, 2, OH, OW);
            } else {
                dw_avx512_channel<2, 0, 0, 0, 1>(xc, wm, b, rm, ym, r, H, W, kH, kW, pad_top, stride_h, OH, OW);
            }
        }
        dw_activate_block(y, m, M, P, f);
    }
}



// The AVX-512 path for float rows wider than 16 outputs: each output row in chunks of 16
// columns, R output rows per step sharing their input rows (3x3 s1, R = 4: each of 6 input
// rows feeds up to 3 of the 4 accumulators), straight from x: full loads inside the image,
// masked ones (masked-off lanes read as zero and never fault: the padding) only in the chunks
// that reach past an edge. Per input row and chunk, stride 1 loads 2 vectors A, B (columns
// [base, base + 32)) and forms kernel column kw as the lanes kw.. of A:B (valignd); stride 2
// loads 3 (A, B, C: 48 columns), de-interleaves A:B into the even and odd columns (two
// permutes), and forms kernel column 2e + p (e > 0) as the even (p 0) or odd (p 1) columns
// shifted by e lanes, continued from C (one permute): no phase planes, no copy, no scratch.
// Each loaded vector stays in a register for every tap and row that reads it (an FMA per use
// with a memory operand doubled the loads: 1.6x the time). Bias is the accumulators' start,
// the residual is added before the store, the activation runs over the step's R output rows
// (contiguous, in L1). S (s_w), SH, KH, KW, R are template parameters; 0 for SH / KH / KW:
// known at run time, then R is 1.

// Keeps v in a register: GCC otherwise folds a load into each FMA or permute that reads it.
SOFIE_DW_INLINE __m512 dw_pin(__m512 v) {
#if defined(__GNUC__)
    __asm__("" : "+v"(v));
#endif
    return v;
}

// Lanes kw.. of A:B (kw < 16).
SOFIE_DW_INLINE __m512 dw_shift(__m512 a, __m512 b, std::size_t kw) {
    const __m512i ai = _mm512_castps_si512(a), bi = _mm512_castps_si512(b);
    const __mmask16 all = 0xFFFF;  // maskz: GCC 12's unmasked valignd warns of its undefined source
    switch (kw) {
        case 0: return a;
        case 1: return _mm512_castsi512_ps(_mm512_maskz_alignr_epi32(all, bi, ai, 1));
        case 2: return _mm512_castsi512_ps(_mm512_maskz_alignr_epi32(all, bi, ai, 2));
        case 3: return _mm512_castsi512_ps(_mm512_maskz_alignr_epi32(all, bi, ai, 3));
        case 4: return _mm512_castsi512_ps(_mm512_maskz_alignr_epi32(all, bi, ai, 4));
        case 5: return _mm512_castsi512_ps(_mm512_maskz_alignr_epi32(all, bi, ai, 5));
        case 6: return _mm512_castsi512_ps(_mm512_maskz_alignr_epi32(all, bi, ai, 6));
        default: return _mm512_castsi512_ps(_mm512_maskz_alignr_epi32(all, bi, ai, 7));
    }
}

// Stride 2, kernel column kw = 2e + p of 32 columns A:B continued by C: lane l is column
// 2 l + kw, i.e. lane l + e of the even (p 0) or odd (p 1) columns of A:B, past 15 column
// 2 (l + e - 16) + p of C.
SOFIE_DW_INLINE __m512 dw_s2_tap(__m512 ev, __m512 od, __m512 c, std::size_t kw) {
    switch (kw) {
        case 0: return ev;
        case 1: return od;
        case 2: return _mm512_permutex2var_ps(ev, _mm512_setr_epi32(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16), c);
        case 3: return _mm512_permutex2var_ps(od, _mm512_setr_epi32(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 17), c);
        case 4: return _mm512_permutex2var_ps(ev, _mm512_setr_epi32(2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 18), c);
        case 5: return _mm512_permutex2var_ps(od, _mm512_setr_epi32(2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 17, 19), c);
        case 6: return _mm512_permutex2var_ps(ev, _mm512_setr_epi32(3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 18, 20), c);
        default: return _mm512_permutex2var_ps(od, _mm512_setr_epi32(3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 17, 19, 21), c);
    }
}


// Vectors loaded per input row and chunk: 16 columns each from the chunk's first input column.
inline constexpr std::size_t dw_wide_loads(std::size_t S, std::size_t kW) {
    return S == 1 ? (kW > 1 ? 2 : 1) : (kW > 2 ? 3 : 2);
}

// One chunk of 16 output columns in R rows: y[r * OW + l] for r < R, l < 16 (omask's lanes
// when partial). The input rows from ih0, the chunk's input columns from base; msk: the
// loads' valid lanes when EDGE.
template <int S, int SH, int KH, int KW, int R, bool EDGE, bool RES>
SOFIE_DW_INLINE void dw_wide_chunk(const float* xc, const float* wm, const __m512* wv, float b,
                                   const float* res, float* y, std::ptrdiff_t H, std::ptrdiff_t W,
                                   std::size_t kH_rt, std::size_t kW_rt, std::size_t sh_rt,
                                   std::ptrdiff_t ih0, std::ptrdiff_t base, const __mmask16* msk,
                                   __mmask16 omask, bool partial, std::size_t OW) {
    static_assert(R == 1 || (SH > 0 && KH > 0), "several rows per step need the row stride and kH");
    const std::size_t kH = KH > 0 ? std::size_t(KH) : kH_rt, kW = KW > 0 ? std::size_t(KW) : kW_rt;
    const std::size_t sh = SH > 0 ? std::size_t(SH) : sh_rt;
    const std::size_t rows_in = (R - 1) * sh + kH, loads = dw_wide_loads(S, kW);
    __m512 acc[R];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) acc[r] = _mm512_set1_ps(b);
#pragma GCC unroll 16
    for (std::size_t i = 0; i < rows_in; ++i) {
        const std::ptrdiff_t ih = ih0 + std::ptrdiff_t(i);
        if (ih < 0 || ih >= H) continue;  // padding rows
        const float* row = xc + ih * W + base;
        __m512 v[3] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};  // unused ones: no reads
#pragma GCC unroll 3
        for (std::size_t q = 0; q < loads; ++q)
            v[q] = dw_pin(EDGE ? _mm512_maskz_loadu_ps(msk[q], row + 16 * q) : _mm512_loadu_ps(row + 16 * q));
        __m512 ev = v[0], od = v[0];
        if (S == 2) {
            ev = dw_pin(_mm512_permutex2var_ps(
                v[0], _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30), v[1]));
            if (kW > 1)
                od = dw_pin(_mm512_permutex2var_ps(
                    v[0], _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31), v[1]));
        }
#pragma GCC unroll 8
        for (std::size_t kw = 0; kw < kW; ++kw) {
            const __m512 tap = S == 1 ? dw_shift(v[0], v[1], kw) : dw_s2_tap(ev, od, v[2], kw);
            dw_feed_rows<KH, KW, R>(acc, tap, wm, wv, i, kw, sh, kH, kW);
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
        __m512 o = acc[r];
        if (partial) {
            if (RES) o = _mm512_add_ps(o, _mm512_maskz_loadu_ps(omask, res + r * OW));
            _mm512_mask_storeu_ps(y + r * OW, omask, o);
        } else {
            if (RES) o = _mm512_add_ps(o, _mm512_loadu_ps(res + r * OW));
            _mm512_storeu_ps(y + r * OW, o);
        }
    }
}

// R output rows from oh0 of one channel, every chunk of 16 columns, then the activation.
template <int S, int SH, int KH, int KW, int R, bool RES, class F>
SOFIE_DW_INLINE void dw_wide_rows(const float* xc, const float* wm, const __m512* wv, float b,
                                  const float* res, float* y, std::size_t H, std::size_t W,
                                  std::size_t kH, std::size_t kW, std::size_t pad_top,
                                  std::size_t pad_left, std::size_t sh, std::size_t oh0,
                                  std::size_t OW, F f) {
    using I = std::ptrdiff_t;
    const std::size_t loads = dw_wide_loads(S, KW > 0 ? std::size_t(KW) : kW);
    const I reach = I(16 * loads);  // columns read from a chunk's base
    const I ih0 = I(oh0 * (SH > 0 ? std::size_t(SH) : sh)) - I(pad_top);
    const float* rr = RES ? res + oh0 * OW : nullptr;
    float* yr = y + oh0 * OW;
    for (std::size_t ow = 0; ow < OW; ow += 16) {
        const I base = I(ow * S) - I(pad_left);
        const bool partial = ow + 16 > OW;
        const __mmask16 omask = dw_lanes(0, I(OW - ow));
        if (R > 1) {  // the next step's new input rows, this chunk's lines: into L1 a step ahead
            const std::size_t sh_n = SH > 0 ? std::size_t(SH) : 1, kh_n = KH > 0 ? std::size_t(KH) : kH;
            const std::size_t step_in = R * sh_n;  // rows past this step's (R - 1) s_h + kH
            const float* pf = xc + (ih0 + I((R - 1) * sh_n + kh_n)) * I(W) + base;
            for (std::size_t k = 0; k < step_in; ++k)
                for (int l = 0; l < S; ++l) _mm_prefetch(reinterpret_cast<const char*>(pf + k * W + 16 * l), _MM_HINT_T0);
        }
        if (base >= 0 && base + reach <= I(W)) {
            dw_wide_chunk<S, SH, KH, KW, R, false, RES>(xc, wm, wv, b, RES ? rr + ow : nullptr, yr + ow, I(H),
                                                        I(W), kH, kW, sh, ih0, base, nullptr, omask, partial, OW);
        } else {  // the chunk reaches past an edge: each load's valid lanes
            __mmask16 msk[3];
            for (std::size_t q = 0; q < loads; ++q) msk[q] = dw_lanes(-(base + I(16 * q)), I(W) - base - I(16 * q));
            dw_wide_chunk<S, SH, KH, KW, R, true, RES>(xc, wm, wv, b, RES ? rr + ow : nullptr, yr + ow, I(H),
                                                       I(W), kH, kW, sh, ih0, base, msk, omask, partial, OW);
        }
    }
    dw_activate(yr, R * OW, f);  // while the rows are in L1; out of line, so it vectorizes
}

// One channel: steps of R rows, the last OH % R rows one at a time.
template <int S, int SH, int KH, int KW, int R, bool RES, class F>
inline void dw_wide_channel(const float* xc, const float* wm, float b, const float* res, float* y,
                            std::size_t H, std::size_t W, std::size_t kH, std::size_t kW,
                            std::size_t pad_top, std::size_t pad_left, std::size_t sh,
                            std::size_t OH, std::size_t OW, F f) {
    // the weights broadcast once per channel when the kernel's size is known (9 or 25 zmm)
    __m512 wv[KH > 0 && KW > 0 ? KH * KW : 1];
    if (KH > 0 && KW > 0) {
        for (int t = 0; t < KH * KW; ++t) wv[t] = _mm512_set1_ps(wm[t]);
    }
    std::size_t oh = 0;
    for (; oh + R <= OH; oh += R)
        dw_wide_rows<S, SH, KH, KW, R, RES>(xc, wm, wv, b, res, y, H, W, kH, kW, pad_top, pad_left, sh, oh, OW, f);
    for (; oh < OH; ++oh)
        dw_wide_rows<S, SH, KH, KW, 1, RES>(xc, wm, wv, b, res, y, H, W, kH, kW, pad_top, pad_left, sh, oh, OW, f);
}

template <int S, int SH, int KH, int KW, int R, class F>
inline void dw_wide_all(const float* x, const float* w, const float* bias, const float* residual,
                        float* y, std::size_t C, std::size_t H, std::size_t W, std::size_t M,
                        std::size_t kH, std::size_t kW, std::size_t pad_top, std::size_t pad_left,
                        std::size_t sh, std::size_t OH, std::size_t OW, F f) {
    const std::size_t per_channel = M / C, P = OH * OW;
    for (std::size_t m = 0; m < M; ++m) {
        const float* xc = x + (m / per_channel) * H * W;
        const float* wm = w + m * kH * kW;
        const float b = bias ? bias[m] : 0.f;
        if (residual) {
            dw_wide_channel<S, SH, KH, KW, R, true>(xc, wm, b, residual + m * P, y + m * P, H, W, kH, kW,
                                                    pad_top, pad_left, sh, OH, OW, f);
        } else {
            dw_wide_channel<S, SH, KH, KW, R, false>(xc, wm, b, nullptr, y + m * P, H, W, kH, kW, pad_top,
                                                     pad_left, sh, OH, OW, f);
        }
    }
}

// Output rows per step of the 3x3 and 5x5 wide paths: stride 1 4 (6 input rows for 4 output
// rows of 3x3), stride 2 2. Measured (before the prefetch) on MobileNet's and EfficientNet's
// wide shapes (bench/probes/depthwise_wide.cpp), minimum of 3 x 5 rounds on the loaded host
// (noise up to 2x), time / these: s1 2 rows 0.6-1.7 (below 1 on 112 C=32 and 28 C=192 only),
// s2 3 rows 1.5-3.9, 4 rows 1.1-3.3.
// On the Intel host, stride 1 on rows of up to 64 outputs takes 7 rows per step: time / 4 rows
// 0.87-0.91 (28x28: 3x3 C=192, 5x5 C=240), 0.94 (56x56 3x3 C=144 SiLU), but 1.08-1.35 on 112x112.
inline constexpr int kDwWideRows1 = 4, kDwWideRows2 = 2, kDwWideRows1Narrow = 7;
inline constexpr std::size_t kDwWideNarrowMaxOW = 64;

// Rows of more than 16 outputs, s_w 1 or 2, kW <= 8: 3x3 and 5x5 with s_h = s_w take R
// output rows per step (kDwWideRows), the rest one row at a time with the kernel's size and
// the row stride known at run time.
template <class F>
inline void dw_wide_image(const float* x, const float* w, const float* bias, const float* residual,
                          float* y, std::size_t C, std::size_t H, std::size_t W, std::size_t M,
                          std::size_t kH, std::size_t kW, std::size_t pad_top, std::size_t pad_left,
                          std::size_t stride_h, std::size_t stride_w, std::size_t OH, std::size_t OW,
                          F f) {
    const bool sq3 = kH == 3 && kW == 3, sq5 = kH == 5 && kW == 5;
    if (stride_w == 1) {
        const bool narrow = OW <= kDwWideNarrowMaxOW;
        if (stride_h == 1 && sq3 && narrow) {
            dw_wide_all<1, 1, 3, 3, kDwWideRows1Narrow>(x, w, bias, residual, y, C, H, W, M, kH, kW, pad_top, pad_left, 1, OH, OW, f);
        } else if (stride_h == 1 && sq3) {
            dw_wide_all<1, 1, 3, 3, kDwWideRows1>(x, w, bias, residual, y, C, H, W, M, kH, kW, pad_top, pad_left, 1, OH, OW, f);
        } else if (stride_h == 1 && sq5 && narrow) {
            dw_wide_all<1, 1, 5, 5, kDwWideRows1Narrow>(x, w, bias, residual, y, C, H, W, M, kH, kW, pad_top, pad_left, 1, OH, OW, f);
        } else if (stride_h == 1 && sq5) {
            dw_wide_all<1, 1, 5, 5, kDwWideRows1>(x, w, bias, residual, y, C, H, W, M, kH, kW, pad_top, pad_left, 1, OH, OW, f);
        } else {
            dw_wide_all<1, 0, 0, 0, 1>(x, w, bias, residual, y, C, H, W, M, kH, kW, pad_top, pad_left, stride_h, OH, OW, f);
        }
    } else {
        if (stride_h == 2 && sq3) {
            dw_wide_all<2, 2, 3, 3, kDwWideRows2>(x, w, bias, residual, y, C, H, W, M, kH, kW, pad_top, pad_left, 2, OH, OW, f);
        } else if (stride_h == 2 && sq5) {
            dw_wide_all<2, 2, 5, 5, kDwWideRows2>(x, w, bias, residual, y, C, H, W, M, kH, kW, pad_top, pad_left, 2, OH, OW, f);
        } else {
            dw_wide_all<2, 0, 0, 0, 1>(x, w, bias, residual, y, C, H, W, M, kH, kW, pad_top, pad_left, stride_h, OH, OW, f);
        }
    }
}
#endif

}  // namespace detail

// Scratch elements conv2d_depthwise_small needs: conv2d_depthwise's, for the builds and shapes
// that run it (sofie/lowering/conv.py sizes it the same way).
inline std::size_t conv2d_depthwise_small_scratch_floats(std::size_t kH, std::size_t kW,
                                                         std::size_t stride_h, std::size_t stride_w,
                                                         std::size_t OH, std::size_t OW) {
    return conv2d_depthwise_scratch_floats(kH, kW, stride_h, stride_w, OH, OW);
}

// y[N, M, OH, OW] = f(depthwise conv(x[N, C, H, W], w[M, 1, kH, kW]) + bias + residual),
// dilation 1, M a multiple of C; scratch holds conv2d_depthwise_small_scratch_floats elements.
template <class T, class F = Identity>
inline void conv2d_depthwise_small(const T* x, const T* w, const detail::same<T>* bias, T* y,
                                   detail::same<T>* scratch, std::size_t N, std::size_t C,
                                   std::size_t H, std::size_t W, std::size_t M, std::size_t kH,
                                   std::size_t kW, std::size_t pad_top, std::size_t pad_left,
                                   std::size_t stride_h, std::size_t stride_w, std::size_t OH,
                                   std::size_t OW, F f, const detail::same<T>* residual) {
    const std::size_t in = C * H * W, out = M * OH * OW;
    for (std::size_t n = 0; n < N; ++n) {
        const T* xn = x + n * in;
        const T* rn = residual ? residual + n * out : nullptr;
        T* yn = y + n * out;
#if defined(__AVX512F__)
        if constexpr (std::is_same<T, float>::value) {
            if (detail::dw_flat_fits(H, W, kH, kW, stride_h, stride_w, OH, OW)) {
                detail::dw_flat(xn, w, bias, rn, yn, C, H, W, M, kH, kW, pad_top, pad_left, f);
                continue;
            }
            if (kW <= detail::kDwSmallMaxKernel && detail::dw_avx512_fits<T>(stride_w, OW)) {
                detail::dw_avx512_image(xn, w, bias, rn, yn, C, H, W, M, kH, kW, pad_top, pad_left,
                                        stride_h, stride_w, OH, OW, f);
                continue;
            }
            if (kW <= detail::kDwSmallMaxKernel && (stride_w == 1 || stride_w == 2)) {
                detail::dw_wide_image(xn, w, bias, rn, yn, C, H, W, M, kH, kW, pad_top, pad_left,
                                      stride_h, stride_w, OH, OW, f);
                continue;
            }
        }
#endif
        conv2d_depthwise(xn, w, bias, rn, yn, scratch, C, H, W, M, kH, kW, pad_top, pad_left,
                         stride_h, stride_w, OH, OW, f);
    }
}

}  // namespace rt
}  // namespace v0_1_0
}  // namespace sofie

#endif  // SOFIE_RT_DEPTHWISE_SMALL_HXX_V0_1_0
