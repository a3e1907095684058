// Depthwise convolution for small images (ONNX Conv with one input channel per group), NCHW,
// dilation 1: on AVX-512, each output row of a channel is one vector register.
//
// conv2d_depthwise (depthwise.hxx) pays per channel for phase planes and a flat output that
// is stored again; on 14x14 and 7x7 images that overhead is most of the time. Here an output
// row of up to 16 floats is one zmm accumulated over its kH * kW taps (one masked load and
// one FMA each; the masked-off lanes are the zero padding and never fault; the even columns of
// two loads by one permute for stride 2), stored with bias and residual added under the row's
// mask; the fused activation follows in one vectorizable loop over the channel's outputs. No
// copy, no scratch.
// Every other case (AVX2 and older builds, double, wider rows, strides past 2) runs
// conv2d_depthwise: a split-row variant of this kernel for them measured 0.9-2.3x its time
// in the -mavx2 build, so the lowering's choice of this op costs other builds nothing; the
// scratch is conv2d_depthwise's. Measured: sofie/lowering/conv.py, DEPTHWISE_SMALL_MAX_WIDTH.
#ifndef SOFIE_RT_DEPTHWISE_SMALL_HXX_V0_1_0
#define SOFIE_RT_DEPTHWISE_SMALL_HXX_V0_1_0

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
            if (kW <= detail::kDwSmallMaxKernel && detail::dw_avx512_fits<T>(stride_w, OW)) {
                detail::dw_avx512_image(xn, w, bias, rn, yn, C, H, W, M, kH, kW, pad_top, pad_left,
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
