// Depthwise convolution for small images (ONNX Conv with one input channel per group), NCHW,
// dilation 1: each output row of a channel is one vector register.
//
// conv2d_depthwise (depthwise.hxx) pays per channel for phase planes and a flat output that
// is stored again; on 14x14 and 7x7 images that overhead is most of the time. Here an output
// row is one vector accumulated in a register over its kH * kW taps (one load and one FMA
// each), the lanes past OW computed and dropped, then stored with bias and residual added;
// the fused activation follows in one vectorizable loop over the channel's outputs.
//
// The tap vectors q[ow] = padded_row[ow * s_w + kw]:
//  - AVX-512, float, s_w 1 or 2, OW <= 16: masked loads straight from x (the masked-off lanes
//    are the zero padding and never fault), the even columns of two loads by one permute for
//    stride 2; the scratch is not used.
//  - otherwise: each input row is copied into scratch, zero-padded and split into stride
//    phases (phase b holds padded columns b, b + s_w, ...), so that q is one unaligned load of
//    phase kw % s_w at kw / s_w; vectors are GCC/Clang vector extensions of L = 8, 16 or 32
//    lanes (the compiler splits them for AVX2 or SSE). Other compilers take depthwise_dilated
//    (no scratch; dilation 1 is one of its cases).
// Measured against conv2d_depthwise: sofie/lowering/conv.py, DEPTHWISE_SMALL_MAX_WIDTH.
#ifndef SOFIE_RT_DEPTHWISE_SMALL_HXX_V0_1_0
#define SOFIE_RT_DEPTHWISE_SMALL_HXX_V0_1_0

#include <algorithm>
#include <cstddef>
#include <cstring>
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

// Bounds of the small-image path: the widest vector and the fixed arrays of DwSmallRow.
inline constexpr std::size_t kDwSmallMaxWidth = 32;  // OW: lanes of the widest vector
inline constexpr std::size_t kDwSmallMaxKernel = 8;  // kW and s_w

// Floats of one phase of a split row: the padded columns it holds plus a vector of slack for
// the load at kw / s_w.
inline constexpr std::size_t dw_small_phase(std::size_t W, std::size_t pad_left, std::size_t kW,
                                            std::size_t stride_w, std::size_t lanes) {
    return (std::max(pad_left + W, kW + stride_w * lanes) + stride_w - 1) / stride_w + lanes;
}

inline constexpr std::size_t dw_small_lanes(std::size_t OW) { return OW <= 8 ? 8 : OW <= 16 ? 16 : 32; }

}  // namespace detail

// Whether conv2d_depthwise_small takes its vector path for this shape (else it runs
// depthwise_dilated, correct but slower). sofie/lowering/conv.py repeats this test.
inline constexpr bool depthwise_small_fits(std::size_t kW, std::size_t stride_w, std::size_t OW) {
    return OW >= 1 && OW <= detail::kDwSmallMaxWidth && kW >= 1 && kW <= detail::kDwSmallMaxKernel &&
           stride_w >= 1 && stride_w <= detail::kDwSmallMaxKernel;
}

// Scratch elements conv2d_depthwise_small needs: two channels of H split rows, each
// min(s_w, kW) phases of dw_small_phase floats (sofie/lowering/conv.py repeats it).
inline std::size_t conv2d_depthwise_small_scratch_floats(std::size_t H, std::size_t W,
                                                         std::size_t kW, std::size_t pad_left,
                                                         std::size_t stride_w, std::size_t OW) {
    return 2 * H * std::min(stride_w, kW) *
           detail::dw_small_phase(W, pad_left, kW, stride_w, detail::dw_small_lanes(OW));
}

namespace detail {

// Where each input row goes in its split row, computed once per image (no division per
// element): phase b holds input columns k * s_w + b - pad_left for k in [lo[b], hi[b]); the
// vector of kernel column kw starts at tap[kw].
struct DwSmallRow {
    std::size_t phases, phase;  // phases used (min(s_w, kW)) and the floats of each
    std::ptrdiff_t lo[kDwSmallMaxKernel], hi[kDwSmallMaxKernel];
    std::size_t tap[kDwSmallMaxKernel];
};

inline DwSmallRow dw_small_row(std::size_t W, std::size_t kW, std::size_t pad_left,
                               std::size_t stride_w, std::size_t lanes) {
    using I = std::ptrdiff_t;
    DwSmallRow r;
    r.phases = std::min(stride_w, kW);
    r.phase = dw_small_phase(W, pad_left, kW, stride_w, lanes);
    for (std::size_t b = 0; b < r.phases; ++b)
        valid_span(I(b) - I(pad_left), I(stride_w), I(W), I(r.phase), r.lo[b], r.hi[b]);
    for (std::size_t kw = 0; kw < kW; ++kw) r.tap[kw] = (kw % stride_w) * r.phase + kw / stride_w;
    return r;
}

// The input row xr into its phases of buf (the stride-1 and 2 loops spelled out so that
// they vectorize).
template <class T>
inline void dw_small_split(const T* xr, T* SOFIE_RESTRICT buf, const DwSmallRow& r,
                           std::size_t pad_left, std::size_t stride_w) {
    using I = std::ptrdiff_t;
    for (std::size_t b = 0; b < r.phases; ++b) {
        T* SOFIE_RESTRICT dst = buf + b * r.phase;
        const T* src = xr + (I(b) - I(pad_left));
        const I lo = r.lo[b], hi = r.hi[b];
        if (stride_w == 1) {
            for (I k = lo; k < hi; ++k) dst[k] = src[k];
        } else if (stride_w == 2) {
            for (I k = lo; k < hi; ++k) dst[k] = src[2 * k];
        } else {
            for (I k = lo; k < hi; ++k) dst[k] = src[k * I(stride_w)];
        }
    }
}

#if defined(__AVX512F__)
// The AVX-512 path for float rows of up to 16 output columns: no scratch and no copy. The
// taps are masked loads straight from x (masked-off lanes read as zero and never fault, so
// they are the padding). Stride 1: lane ow of kernel column kw reads column ow + kw - pad_left.
// Stride 2: two masked loads cover columns 2 ow + kw - pad_left for ow < 16 and one permute
// keeps the even ones. Bias and residual are added to the accumulator, stored with the row's
// mask; the activation follows over the channel's outputs.
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

template <std::size_t S, int KW, class F>
inline void dw_avx512_channel(const float* xc, const float* wm, float b, const float* residual,
                              float* y, const DwAvx512Row& r, std::size_t H, std::size_t W,
                              std::size_t kH, std::size_t kW_rt, std::size_t pad_top,
                              std::size_t stride_h, std::size_t OH, std::size_t OW, F f) {
    const std::size_t kW = KW > 0 ? std::size_t(KW) : kW_rt;
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    for (std::size_t oh = 0; oh < OH; ++oh) {
        const std::size_t top = oh * stride_h;
        const std::size_t kh_lo = pad_top > top ? pad_top - top : 0;
        const std::size_t kh_hi = std::min(kH, H + pad_top - top);
        __m512 a = _mm512_set1_ps(b);
        for (std::size_t kh = kh_lo; kh < kh_hi; ++kh) {
            const float* row = xc + (top + kh - pad_top) * W;
            const float* wr = wm + kh * kW;
            for (std::size_t kw = 0; kw < kW; ++kw) {
                __m512 v = _mm512_maskz_loadu_ps(r.lo[kw], row + r.off[kw]);
                if (S == 2) {
                    const __m512 v2 = _mm512_maskz_loadu_ps(r.hi[kw], row + r.off[kw] + 16);
                    v = _mm512_permutex2var_ps(v, even, v2);
                }
                a = _mm512_fmadd_ps(_mm512_set1_ps(wr[kw]), v, a);
            }
        }
        if (residual) a = _mm512_add_ps(a, _mm512_maskz_loadu_ps(r.out, residual + oh * OW));
        _mm512_mask_storeu_ps(y + oh * OW, r.out, a);
    }
    // the activation over the channel's contiguous outputs, still in L1: a loop the compiler
    // vectorizes (applied per row on the register, f ran lane by lane: measured 4x slower)
    float* SOFIE_RESTRICT yc = y;
    for (std::size_t j = 0, P = OH * OW; j < P; ++j) yc[j] = f(yc[j]);
}

// Whether the AVX-512 path takes this conv: float, rows of up to 16 outputs, stride 1 or 2
// along a row (two loads cover 32 input columns), kW <= 8.
template <class T>
inline bool dw_avx512_fits(std::size_t stride_w, std::size_t OW) {
    return std::is_same<T, float>::value && OW <= 16 && (stride_w == 1 || stride_w == 2);
}

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
        // the kernel width known at compile time for 3x3 and 5x5: the tap loop unrolled
        if (stride_w == 1 && kW == 3) {
            dw_avx512_channel<1, 3>(xc, wm, b, rm, ym, r, H, W, kH, kW, pad_top, stride_h, OH, OW, f);
        } else if (stride_w == 1 && kW == 5) {
            dw_avx512_channel<1, 5>(xc, wm, b, rm, ym, r, H, W, kH, kW, pad_top, stride_h, OH, OW, f);
        } else if (stride_w == 1) {
            dw_avx512_channel<1, 0>(xc, wm, b, rm, ym, r, H, W, kH, kW, pad_top, stride_h, OH, OW, f);
        } else if (kW == 3) {
            dw_avx512_channel<2, 3>(xc, wm, b, rm, ym, r, H, W, kH, kW, pad_top, stride_h, OH, OW, f);
        } else if (kW == 5) {
            dw_avx512_channel<2, 5>(xc, wm, b, rm, ym, r, H, W, kH, kW, pad_top, stride_h, OH, OW, f);
        } else {
            dw_avx512_channel<2, 0>(xc, wm, b, rm, ym, r, H, W, kH, kW, pad_top, stride_h, OH, OW, f);
        }
    }
}
#endif

#if defined(__GNUC__)
// One channel from its split rows in buf (row pitch `pitch`): y[OH, OW] = f(conv + b +
// residual). Each output row is one vector accumulated in a register over its kH * kW taps,
// each tap one unaligned load and one FMA; the lanes past OW are dropped at the store.
template <std::size_t L, class T, class F>
inline void dw_small_channel(const T* buf, std::size_t pitch, const DwSmallRow& row_map,
                             const T* wm, T b, const T* residual, T* y, std::size_t H,
                             std::size_t kH, std::size_t kW, std::size_t pad_top,
                             std::size_t stride_h, std::size_t OH, std::size_t OW, F f) {
    typedef T vec __attribute__((vector_size(L * sizeof(T))));
    for (std::size_t oh = 0; oh < OH; ++oh) {
        // input row ih = oh * s_h + kh - pad_top for the kernel rows kh in [kh_lo, kh_hi)
        const std::size_t top = oh * stride_h;
        const std::size_t kh_lo = pad_top > top ? pad_top - top : 0;
        const std::size_t kh_hi = std::min(kH, H + pad_top - top);
        vec a = vec{} + b;
        for (std::size_t kh = kh_lo; kh < kh_hi; ++kh) {
            const T* row = buf + (top + kh - pad_top) * pitch;
            const T* wr = wm + kh * kW;
            for (std::size_t kw = 0; kw < kW; ++kw) {
                vec v;
                std::memcpy(&v, row + row_map.tap[kw], sizeof v);  // an unaligned vector load
                a += wr[kw] * v;
            }
        }
        T out[L];
        std::memcpy(out, &a, sizeof out);
        T* yr = y + oh * OW;
        if (residual) {
            const T* r = residual + oh * OW;
            for (std::size_t ow = 0; ow < OW; ++ow) yr[ow] = out[ow] + r[ow];
        } else {
            std::memcpy(yr, out, OW * sizeof(T));
        }
    }
    T* SOFIE_RESTRICT yc = y;  // the activation in one vectorizable loop, as in dw_avx512_channel
    for (std::size_t j = 0, P = OH * OW; j < P; ++j) yc[j] = f(yc[j]);
}

// One image. Channel m + 1 is split into one half of the scratch before channel m is computed
// from the other, so that the vector loads never wait on the split's scalar stores (a load
// overlapping stores still in flight cannot be forwarded: measured 3x slower).
template <std::size_t L, class T, class F>
inline void dw_small_image(const T* x, const T* w, const T* bias, const T* residual, T* y,
                           T* scratch, std::size_t C, std::size_t H, std::size_t W, std::size_t M,
                           std::size_t kH, std::size_t kW, std::size_t pad_top,
                           std::size_t pad_left, std::size_t stride_h, std::size_t stride_w,
                           std::size_t OH, std::size_t OW, F f) {
    const DwSmallRow row_map = dw_small_row(W, kW, pad_left, stride_w, L);
    const std::size_t pitch = row_map.phases * row_map.phase, half = H * pitch;
    const std::size_t per_channel = M / C, P = OH * OW;
    std::fill(scratch, scratch + 2 * half, T(0));  // the padding: never written after this
    auto split = [&](std::size_t m) {
        const T* xc = x + (m / per_channel) * H * W;
        T* buf = scratch + (m % 2) * half;
        for (std::size_t ih = 0; ih < H; ++ih)
            dw_small_split(xc + ih * W, buf + ih * pitch, row_map, pad_left, stride_w);
    };
    split(0);
    for (std::size_t m = 0; m < M; ++m) {
        if (m + 1 < M) split(m + 1);
        dw_small_channel<L>(scratch + (m % 2) * half, pitch, row_map, w + m * kH * kW,
                            bias ? bias[m] : T(0), residual ? residual + m * P : nullptr, y + m * P,
                            H, kH, kW, pad_top, stride_h, OH, OW, f);
    }
}
#endif

}  // namespace detail

// y[N, M, OH, OW] = f(depthwise conv(x[N, C, H, W], w[M, 1, kH, kW]) + bias + residual),
// dilation 1, M a multiple of C, for small images (depthwise_small_fits); scratch holds
// conv2d_depthwise_small_scratch_floats(H, W, kW, pad_left, stride_w, OW) elements.
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
#if defined(__GNUC__)
#if defined(__AVX512F__)
        if constexpr (std::is_same<T, float>::value) {
            if (depthwise_small_fits(kW, stride_w, OW) && detail::dw_avx512_fits<T>(stride_w, OW)) {
                detail::dw_avx512_image(xn, w, bias, rn, yn, C, H, W, M, kH, kW, pad_top, pad_left,
                                        stride_h, stride_w, OH, OW, f);
                continue;
            }
        }
#endif
        if (depthwise_small_fits(kW, stride_w, OW)) {
            const std::size_t lanes = detail::dw_small_lanes(OW);
            if (lanes == 8) {
                detail::dw_small_image<8>(xn, w, bias, rn, yn, scratch, C, H, W, M, kH, kW, pad_top,
                                          pad_left, stride_h, stride_w, OH, OW, f);
            } else if (lanes == 16) {
                detail::dw_small_image<16>(xn, w, bias, rn, yn, scratch, C, H, W, M, kH, kW, pad_top,
                                           pad_left, stride_h, stride_w, OH, OW, f);
            } else {
                detail::dw_small_image<32>(xn, w, bias, rn, yn, scratch, C, H, W, M, kH, kW, pad_top,
                                           pad_left, stride_h, stride_w, OH, OW, f);
            }
            continue;
        }
#else
        (void)scratch;
#endif
        depthwise_dilated(xn, w, bias, rn, yn, C, H, W, M, kH, kW, pad_top, pad_left, stride_h,
                          stride_w, 1, 1, OH, OW, f);
    }
}

}  // namespace rt
}  // namespace v0_1_0
}  // namespace sofie

#endif  // SOFIE_RT_DEPTHWISE_SMALL_HXX_V0_1_0
