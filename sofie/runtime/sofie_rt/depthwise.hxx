// Direct depthwise convolution (ONNX Conv with one input channel per group), NCHW.
//
// Per input channel, the zero-padded input is copied once into scratch as stride x stride
// phase planes: plane (a, b) holds padded rows a, a + s_h, ... and columns b, b + s_w, ...
// of the channel. In phase coordinates every tap (kh, kw) of every output (oh, ow) reads
// plane (kh % s_h, kw % s_w) at row oh + kh / s_h, column ow + kw / s_w: a stride-1 read. The
// planes share one row pitch Wq = OW + (kW - 1) / s_w, so the outputs are computed over the
// flat index j = oh * Wq + ow with full vectors that run across row ends (the Wq - OW
// columns past each row end are computed and dropped): no bounds checks or per-element
// branches, and a 7x7 image fills vectors as well as a 112x112 one. The epilogue (bias,
// residual, the fused activation) is applied while the rows are copied out to y.
//
// Vectors are GCC/Clang vector extensions sized for the target (64 bytes with AVX-512F, 32
// with AVX, else 16); other compilers take a scalar loop of the same shape. Dilated convs
// run depthwise_dilated (no scratch, vectorized along ow only).
#ifndef SOFIE_RT_DEPTHWISE_HXX_V0_1_0
#define SOFIE_RT_DEPTHWISE_HXX_V0_1_0

#include <algorithm>
#include <cstddef>
#include <cstring>

namespace sofie {
inline namespace v0_1_0 {
namespace rt {

namespace detail {

// First output index o in [0, n_out) with o*stride + offset >= 0, and the end
// of the run with o*stride + offset < limit: the span needing no bounds check.
inline void valid_span(std::ptrdiff_t offset, std::ptrdiff_t stride, std::ptrdiff_t limit,
                       std::ptrdiff_t n_out, std::ptrdiff_t& lo, std::ptrdiff_t& hi) {
    lo = offset >= 0 ? 0 : (-offset + stride - 1) / stride;
    hi = limit - offset <= 0 ? 0 : (limit - offset + stride - 1) / stride;
    lo = std::min(lo, n_out);
    hi = std::max(std::min(hi, n_out), lo);
}

#if defined(__AVX512F__)
inline constexpr std::size_t kDwVectorBytes = 64;
#elif defined(__AVX__)
inline constexpr std::size_t kDwVectorBytes = 32;
#else
inline constexpr std::size_t kDwVectorBytes = 16;
#endif

// Geometry of the phase planes of one channel.
struct DwPlanes {
    std::size_t rows_phases, cols_phases;  // phase planes used: min(stride, kernel) per axis
    std::size_t Hq, Wq;                    // rows and row pitch of each plane
    std::size_t plane;                     // elements per plane, with a vector of slack
    std::size_t out;                       // elements of the flat output, rounded to vectors
};

// Elements past the end of each plane and of the flat output: the flat output runs
// (kW - 1) / s_w elements past the last real one and is rounded up to whole vectors, 4 at
// most past the end. Fixed at 4 AVX-512 vectors of floats whatever the target, so that the
// size does not depend on the compiler flags (sofie/lowering/conv.py repeats it).
inline constexpr std::size_t dw_slack(std::size_t kW) { return 64 + kW; }

inline DwPlanes dw_planes(std::size_t kH, std::size_t kW, std::size_t stride_h,
                          std::size_t stride_w, std::size_t OH, std::size_t OW) {
    const std::size_t slack = dw_slack(kW);
    DwPlanes p;
    p.rows_phases = std::min(stride_h, kH);
    p.cols_phases = std::min(stride_w, kW);
    p.Hq = OH + (kH - 1) / stride_h;
    p.Wq = OW + (kW - 1) / stride_w;
    p.out = OH * p.Wq + slack;
    p.plane = p.Hq * p.Wq + slack;
    return p;
}

}  // namespace detail

// Scratch elements conv2d_depthwise needs (dilation 1): the phase planes and the flat output.
inline std::size_t conv2d_depthwise_scratch_floats(std::size_t kH, std::size_t kW,
                                                   std::size_t stride_h, std::size_t stride_w,
                                                   std::size_t OH, std::size_t OW) {
    const detail::DwPlanes p = detail::dw_planes(kH, kW, stride_h, stride_w, OH, OW);
    return p.rows_phases * p.cols_phases * p.plane + p.out;
}

namespace detail {

// Copies channel xc [H, W] into the phase planes. Only the elements taken from x are
// written: dw_zero_planes zeroed the padding (the same elements for every channel) once.
template <class T>
inline void dw_pack(const T* xc, T* SOFIE_RESTRICT planes, const DwPlanes& p, std::size_t H,
                    std::size_t W, std::size_t pad_top, std::size_t pad_left,
                    std::size_t stride_h, std::size_t stride_w) {
    using I = std::ptrdiff_t;
    for (std::size_t a = 0; a < p.rows_phases; ++a) {
        // Plane row i is input row i * s_h + a - pad_top: the valid i span.
        I i_lo, i_hi;
        valid_span(I(a) - I(pad_top), I(stride_h), I(H), I(p.Hq), i_lo, i_hi);
        for (std::size_t b = 0; b < p.cols_phases; ++b) {
            T* q = planes + (a * p.cols_phases + b) * p.plane;
            const I off = I(b) - I(pad_left);
            I k_lo, k_hi;
            valid_span(off, I(stride_w), I(W), I(p.Wq), k_lo, k_hi);
            const std::size_t n = std::size_t(k_hi - k_lo);
            for (I i = i_lo; i < i_hi; ++i) {
                const T* src = xc + (i * I(stride_h) + I(a) - I(pad_top)) * I(W) + off + k_lo * I(stride_w);
                T* SOFIE_RESTRICT dst = q + i * I(p.Wq) + k_lo;
                if (stride_w == 1) {
                    for (std::size_t k = 0; k < n; ++k) dst[k] = src[k];
                } else if (stride_w == 2) {
                    for (std::size_t k = 0; k < n; ++k) dst[k] = src[2 * k];
                } else {
                    for (std::size_t k = 0; k < n; ++k) dst[k] = src[k * stride_w];
                }
            }
        }
    }
}

#if defined(__GNUC__)
// out[j + u L] for u < U: one block of U vectors of L lanes (U independent accumulators).
template <std::size_t U, int KT, class T>
inline void dw_block(T* SOFIE_RESTRICT out, const T* const* tap_ptr, const T* w, std::size_t nt,
                     std::size_t j) {
    constexpr std::size_t L = kDwVectorBytes / sizeof(T);
    typedef T vec __attribute__((vector_size(kDwVectorBytes)));
    vec acc[U] = {};
    for (std::size_t t = 0; t < (KT > 0 ? std::size_t(KT) : nt); ++t) {
        const T wt = w[t];
        const T* src = tap_ptr[t] + j;
        for (std::size_t u = 0; u < U; ++u) {
            vec v;
            std::memcpy(&v, src + u * L, sizeof v);  // an unaligned vector load
            acc[u] += wt * v;
        }
    }
    std::memcpy(out + j, acc, sizeof acc);
}
#endif

// out[j] = sum over taps t of w[t] * tap_ptr[t][j] for j in [0, n), n rounded up to whole
// vectors (the slack). KT > 0: the tap count known at compile time.
template <int KT, class T>
inline void dw_taps(T* SOFIE_RESTRICT out, const T* const* tap_ptr, const T* w, std::size_t taps,
                    std::size_t n) {
#if defined(__GNUC__)
    constexpr std::size_t L = kDwVectorBytes / sizeof(T), U = 4;
    std::size_t j = 0;
    for (; j + U * L <= n; j += U * L) dw_block<U, KT>(out, tap_ptr, w, taps, j);
    for (; j < n; j += L) dw_block<1, KT>(out, tap_ptr, w, taps, j);  // the last few vectors
#else
    const std::size_t nt = KT > 0 ? std::size_t(KT) : taps;
    for (std::size_t j = 0; j < n; ++j) {
        T acc = T(0);
        for (std::size_t t = 0; t < nt; ++t) acc += w[t] * tap_ptr[t][j];
        out[j] = acc;
    }
#endif
}

// Rows at least this wide are stored by dw_store's row loop (f fused into the copy), narrower
// ones by f over the flat rows and then a memcpy per row. Measured on MobileNet's 3x3 shapes
// with a Relu6 epilogue, the whole conv: 112 and 56 wide rows 0.84-0.91x the time of the old
// flat store + scalar row copy in the row loop (one pass over the output, not three), 28 wide
// ones 1.03-1.05x (so they stay flat), 14 and 7 wide 0.87-0.95x with the memcpy.
inline constexpr std::size_t kDwRowStoreMinWidth = 32;

// y[oh, ow] = f(out[oh * Wq + ow] + b + residual[oh, ow]).
template <class T, class F>
inline void dw_store(T* y, T* out, std::size_t Wq, T b, const T* residual,
                     std::size_t OH, std::size_t OW, F f) {
    if (!residual && Wq != OW && OW < kDwRowStoreMinWidth) {
        T* SOFIE_RESTRICT o = out;
        for (std::size_t j = 0, n = OH * Wq; j < n; ++j) o[j] = f(o[j] + b);
        for (std::size_t oh = 0; oh < OH; ++oh) std::memcpy(y + oh * OW, out + oh * Wq, OW * sizeof(T));
        return;
    }
    for (std::size_t oh = 0; oh < OH; ++oh) {
        const T* o = out + oh * Wq;  // y itself for depthwise_dilated: no restrict
        T* yr = y + oh * OW;
        if (residual) {
            const T* r = residual + oh * OW;
            for (std::size_t ow = 0; ow < OW; ++ow) yr[ow] = f(o[ow] + b + r[ow]);
        } else {
            for (std::size_t ow = 0; ow < OW; ++ow) yr[ow] = f(o[ow] + b);
        }
    }
}

// The taps' first elements, kh-major, and their count.
template <class T>
inline std::size_t dw_tap_pointers(const T** tap_ptr, const T* planes, const DwPlanes& p,
                                   std::size_t kH, std::size_t kW, std::size_t stride_h,
                                   std::size_t stride_w) {
    std::size_t t = 0;
    for (std::size_t kh = 0; kh < kH; ++kh) {
        for (std::size_t kw = 0; kw < kW; ++kw) {
            const T* q = planes + ((kh % stride_h) * p.cols_phases + kw % stride_w) * p.plane;
            tap_ptr[t++] = q + (kh / stride_h) * p.Wq + kw / stride_w;
        }
    }
    return t;
}

// yr[ow] += sum over the row's taps of w[kw] * x at the tap, for ow in [0, OW).
template <class T>
inline void dilated_row(T* SOFIE_RESTRICT yr, const T* xr, const T* wr, std::size_t kW,
                        std::ptrdiff_t pad_left, std::size_t W, std::size_t OW, std::size_t stride,
                        std::size_t dil) {
    using I = std::ptrdiff_t;
    for (std::size_t kw = 0; kw < kW; ++kw) {
        const I off = I(kw * dil) - pad_left;
        const I lo = off >= 0 ? 0 : std::min<I>(I(OW), (-off + I(stride) - 1) / I(stride));
        const I hi = std::max(lo, std::min<I>(I(OW), (I(W) - off + I(stride) - 1) / I(stride)));
        const T wv = wr[kw];
        for (I ow = lo; ow < hi; ++ow) yr[ow] += wv * xr[ow * I(stride) + off];
    }
}

}  // namespace detail

// Depthwise conv with dilation > 1: per output channel, a sum of kH*kW shifted rows of the
// input, then the epilogue.
template <class T, class F>
inline void depthwise_dilated(const T* x, const T* w, const T* bias, const T* residual, T* y,
                              std::size_t C, std::size_t H, std::size_t W, std::size_t M,
                              std::size_t kH, std::size_t kW, std::size_t pad_top,
                              std::size_t pad_left, std::size_t stride_h, std::size_t stride_w,
                              std::size_t dil_h, std::size_t dil_w, std::size_t OH,
                              std::size_t OW, F f) {
    using I = std::ptrdiff_t;
    const std::size_t per_channel = M / C, P = OH * OW;
    for (std::size_t m = 0; m < M; ++m) {
        const T* xc = x + (m / per_channel) * H * W;
        const T* wm = w + m * kH * kW;
        T* ym = y + m * P;
        std::fill(ym, ym + P, T(0));
        for (std::size_t oh = 0; oh < OH; ++oh) {
            for (std::size_t kh = 0; kh < kH; ++kh) {
                const I ih = I(oh * stride_h + kh * dil_h) - I(pad_top);
                if (ih < 0 || ih >= I(H)) continue;
                detail::dilated_row(ym + oh * OW, xc + ih * I(W), wm + kh * kW, kW, I(pad_left),
                                    W, OW, stride_w, dil_w);
            }
        }
        detail::dw_store(ym, ym, OW, bias ? bias[m] : T(0), residual ? residual + m * P : nullptr,
                         OH, OW, f);
    }
}

// y[M, OH, OW] = f(depthwise conv(x[C, H, W], w[M, 1, kH, kW]) + bias + residual) for one
// image, M a multiple of C (M / C outputs per input channel), dilation 1. scratch holds
// conv2d_depthwise_scratch_floats(kH, kW, stride_h, stride_w, OH, OW) elements.
template <class T, class F>
inline void conv2d_depthwise(const T* x, const T* w, const T* bias, const T* residual, T* y,
                             T* scratch, std::size_t C, std::size_t H, std::size_t W,
                             std::size_t M, std::size_t kH, std::size_t kW, std::size_t pad_top,
                             std::size_t pad_left, std::size_t stride_h, std::size_t stride_w,
                             std::size_t OH, std::size_t OW, F f) {
    const detail::DwPlanes p = detail::dw_planes(kH, kW, stride_h, stride_w, OH, OW);
    T* planes = scratch;
    T* out = scratch + p.rows_phases * p.cols_phases * p.plane;
    const std::size_t per_channel = M / C, P = OH * OW, taps = kH * kW;
    const std::size_t n = OH * p.Wq;  // flat outputs, the dropped row ends included
    constexpr std::size_t kMaxTaps = 64;
    const T* tap_small[kMaxTaps];
    if (taps <= kMaxTaps) detail::dw_tap_pointers(tap_small, planes, p, kH, kW, stride_h, stride_w);
    std::fill(planes, out, T(0));  // the padding, the same for every channel
    for (std::size_t c = 0; c < C; ++c) {
        detail::dw_pack(x + c * H * W, planes, p, H, W, pad_top, pad_left, stride_h, stride_w);
        for (std::size_t m = c * per_channel; m < (c + 1) * per_channel; ++m) {
            const T* wm = w + m * taps;
            if (taps <= kMaxTaps) {
                if (taps == 9) {
                    detail::dw_taps<9>(out, tap_small, wm, taps, n);
                } else if (taps == 25) {
                    detail::dw_taps<25>(out, tap_small, wm, taps, n);
                } else {
                    detail::dw_taps<0>(out, tap_small, wm, taps, n);
                }
            } else {  // a kernel larger than 8x8: one kernel row of taps at a time
                std::fill(out, out + n, T(0));
                for (std::size_t kh = 0; kh < kH; ++kh) {
                    const T* q = planes + (kh % stride_h) * p.cols_phases * p.plane +
                                 (kh / stride_h) * p.Wq;
                    for (std::size_t kw = 0; kw < kW; ++kw) {
                        const T* src = q + (kw % stride_w) * p.plane + kw / stride_w;
                        const T wv = wm[kh * kW + kw];
                        for (std::size_t j = 0; j < n; ++j) out[j] += wv * src[j];
                    }
                }
            }
            detail::dw_store(y + m * P, out, p.Wq, bias ? bias[m] : T(0),
                             residual ? residual + m * P : nullptr, OH, OW, f);
        }
    }
}

}  // namespace rt
}  // namespace v0_1_0
}  // namespace sofie

#endif  // SOFIE_RT_DEPTHWISE_HXX_V0_1_0
