// Pooling over 1-3 spatial dims (ONNX MaxPool, AveragePool, LpPool and the global
// pools). Fewer spatial dims are passed as 3 with leading size-1 dims, kernel 1,
// pads 0, stride 1. Output sizes already include ceil_mode; every window is clipped
// to the padded input, so cells past the end padding never count.
#ifndef SOFIE_RT_POOL_HXX_V0_1_0
#define SOFIE_RT_POOL_HXX_V0_1_0

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>

namespace sofie {
inline namespace v0_1_0 {
namespace rt {

enum class PoolKind { max, avg, lp };

using Dims3 = std::size_t[3];

namespace detail {

// Taps [lo, hi) of a window starting at `start` (stride `dil`) that land in [0, size).
inline void tap_range(std::ptrdiff_t start, std::size_t dil, std::size_t k, std::size_t size,
                      std::size_t& lo, std::size_t& hi) {
    using I = std::ptrdiff_t;
    const I d = I(dil);
    const I first = start >= 0 ? 0 : (-start + d - 1) / d;
    const I last = I(size) - 1 - start;  // the furthest tap offset still inside
    lo = std::size_t(std::min<I>(first, I(k)));
    hi = last < 0 ? lo : std::size_t(std::max<I>(std::min<I>(last / d + 1, I(k)), I(lo)));
}

template <class T>
inline T ipow(T v, int p) {
    T r = v;
    for (int i = 1; i < p; ++i) r *= v;
    return r;
}

}  // namespace detail

// y[NC, out] = pool of x[NC, in] (3 spatial dims, see above). count_include_pad (avg):
// divide by the taps inside the padded input rather than inside the input. p: LpPool's.
template <PoolKind K, class T>
inline void pool(const T* x, T* y, std::size_t NC, const Dims3& in, const Dims3& out,
                 const Dims3& kernel, const std::size_t (&pads)[6], const Dims3& strides,
                 const Dims3& dil, bool count_include_pad = false, int p = 2) {
    using I = std::ptrdiff_t;
    const std::size_t in_size = in[0] * in[1] * in[2], out_size = out[0] * out[1] * out[2];
    for (std::size_t nc = 0; nc < NC; ++nc) {
        const T* xc = x + nc * in_size;
        T* yc = y + nc * out_size;
        for (std::size_t od = 0; od < out[0]; ++od) {
            const I d0 = I(od * strides[0]) - I(pads[0]);
            std::size_t d_lo, d_hi, dp_lo, dp_hi;
            detail::tap_range(d0, dil[0], kernel[0], in[0], d_lo, d_hi);
            detail::tap_range(d0 + I(pads[0]), dil[0], kernel[0], in[0] + pads[0] + pads[3], dp_lo, dp_hi);
            for (std::size_t oh = 0; oh < out[1]; ++oh) {
                const I h0 = I(oh * strides[1]) - I(pads[1]);
                std::size_t h_lo, h_hi, hp_lo, hp_hi;
                detail::tap_range(h0, dil[1], kernel[1], in[1], h_lo, h_hi);
                detail::tap_range(h0 + I(pads[1]), dil[1], kernel[1], in[1] + pads[1] + pads[4], hp_lo, hp_hi);
                for (std::size_t ow = 0; ow < out[2]; ++ow) {
                    const I w0 = I(ow * strides[2]) - I(pads[2]);
                    std::size_t w_lo, w_hi;
                    detail::tap_range(w0, dil[2], kernel[2], in[2], w_lo, w_hi);
                    T acc = K == PoolKind::max ? std::numeric_limits<T>::lowest() : T(0);
                    for (std::size_t kd = d_lo; kd < d_hi; ++kd) {
                        const T* xd = xc + std::size_t(d0 + I(kd * dil[0])) * in[1] * in[2];
                        for (std::size_t kh = h_lo; kh < h_hi; ++kh) {
                            const T* xr = xd + std::size_t(h0 + I(kh * dil[1])) * in[2];
                            for (std::size_t kw = w_lo; kw < w_hi; ++kw) {
                                const T v = xr[w0 + I(kw * dil[2])];
                                if constexpr (K == PoolKind::max) {
                                    acc = std::max(acc, v);
                                } else if constexpr (K == PoolKind::avg) {
                                    acc += v;
                                } else {
                                    acc += detail::ipow(std::abs(v), p);
                                }
                            }
                        }
                    }
                    if constexpr (K == PoolKind::avg) {
                        std::size_t count = (d_hi - d_lo) * (h_hi - h_lo) * (w_hi - w_lo);
                        if (count_include_pad) {
                            std::size_t wp_lo, wp_hi;
                            detail::tap_range(w0 + I(pads[2]), dil[2], kernel[2], in[2] + pads[2] + pads[5],
                                              wp_lo, wp_hi);
                            count = (dp_hi - dp_lo) * (hp_hi - hp_lo) * (wp_hi - wp_lo);
                        }
                        acc = count ? acc / T(count) : T(0);
                    } else if constexpr (K == PoolKind::lp) {
                        acc = std::pow(acc, T(1) / T(p));
                    }
                    yc[(od * out[1] + oh) * out[2] + ow] = acc;
                }
            }
        }
    }
}

// y[nc] = max or Lp norm of x[nc, 0:S] (GlobalMaxPool, GlobalLpPool).
template <PoolKind K, class T>
inline void global_pool(const T* x, T* y, std::size_t NC, std::size_t S, int p = 2) {
    for (std::size_t i = 0; i < NC; ++i) {
        const T* xi = x + i * S;
        if constexpr (K == PoolKind::max) {
            T m = std::numeric_limits<T>::lowest();
            for (std::size_t j = 0; j < S; ++j) m = std::max(m, xi[j]);
            y[i] = m;
        } else {
            T s = T(0);
            for (std::size_t j = 0; j < S; ++j) s += detail::ipow(std::abs(xi[j]), p);
            y[i] = std::pow(s, T(1) / T(p));
        }
    }
}

// 2-D forms (NCHW): OH, OW already include ceil_mode.
template <class T>
inline void maxpool2d(const T* x, T* y, std::size_t N, std::size_t C, std::size_t H,
                      std::size_t W, std::size_t kH, std::size_t kW, std::size_t pad_top,
                      std::size_t pad_left, std::size_t pad_bottom, std::size_t pad_right,
                      std::size_t stride_h, std::size_t stride_w, std::size_t dil_h,
                      std::size_t dil_w, std::size_t OH, std::size_t OW) {
    pool<PoolKind::max>(x, y, N * C, {1, H, W}, {1, OH, OW}, {1, kH, kW},
                        {0, pad_top, pad_left, 0, pad_bottom, pad_right}, {1, stride_h, stride_w},
                        {1, dil_h, dil_w});
}

// With count_include_pad the divisor counts padded cells, but (as in onnxruntime)
// not window cells hanging past the end padding under ceil_mode.
template <class T>
inline void avgpool2d(const T* x, T* y, std::size_t N, std::size_t C, std::size_t H,
                      std::size_t W, std::size_t kH, std::size_t kW, std::size_t pad_top,
                      std::size_t pad_left, std::size_t pad_bottom, std::size_t pad_right,
                      std::size_t stride_h, std::size_t stride_w, std::size_t OH,
                      std::size_t OW, bool count_include_pad) {
    pool<PoolKind::avg>(x, y, N * C, {1, H, W}, {1, OH, OW}, {1, kH, kW},
                        {0, pad_top, pad_left, 0, pad_bottom, pad_right}, {1, stride_h, stride_w},
                        {1, 1, 1}, count_include_pad);
}

}  // namespace rt
}  // namespace v0_1_0
}  // namespace sofie

#endif  // SOFIE_RT_POOL_HXX_V0_1_0
