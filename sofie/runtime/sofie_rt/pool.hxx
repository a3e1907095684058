// Pooling over 1-3 spatial dims (ONNX MaxPool, AveragePool, LpPool and the global
// pools). Fewer spatial dims are passed as 3 with leading size-1 dims, kernel 1,
// pads 0, stride 1. Output sizes already include ceil_mode; every window is clipped
// to the padded input, so cells past the end padding never count.
#ifndef SOFIE_RT_POOL_HXX_V0_1_0
#define SOFIE_RT_POOL_HXX_V0_1_0

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>

#include "blas.hxx"  // SOFIE_RESTRICT
#include "reduce.hxx"  // lane_sum, row_max

namespace sofie {
inline namespace v0_1_0 {
namespace rt {

enum class PoolKind { max, avg, lp };

using Dims3 = std::size_t[3];

namespace detail {

// Where a max starts: -inf for floats (a window of -inf taps is -inf), else the lowest value.
template <class T>
constexpr T max_identity() {
    return std::numeric_limits<T>::has_infinity ? -std::numeric_limits<T>::infinity()
                                                : std::numeric_limits<T>::lowest();
}

// Taps [lo, hi) of a window starting at `start` (stride `dil`) that land in [0, size).
inline void tap_range(std::ptrdiff_t start, std::size_t dil, std::size_t k, std::size_t size,
                      std::size_t& lo, std::size_t& hi) {
    using I = std::ptrdiff_t;
    const I d = I(dil);
    const I last = I(size) - 1 - start;  // the furthest tap offset still inside
    if (d == 1) {  // no divisions: this runs per output
        lo = std::size_t(std::min<I>(start >= 0 ? 0 : -start, I(k)));
        hi = last < 0 ? lo : std::size_t(std::max<I>(std::min<I>(last + 1, I(k)), I(lo)));
        return;
    }
    const I first = start >= 0 ? 0 : (-start + d - 1) / d;
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

namespace detail {

// Output columns [lo, hi) whose tap at offset `off` (= tap * dilation - pad) lands in [0, W).
inline void pool_col_span(std::ptrdiff_t off, std::size_t stride, std::size_t W, std::size_t OW,
                          std::size_t& lo, std::size_t& hi) {
    using I = std::ptrdiff_t;
    const I s = I(stride);
    I l = off >= 0 ? 0 : (-off + s - 1) / s;
    I h = I(W) - off <= 0 ? 0 : (I(W) - off + s - 1) / s;
    l = std::min(l, I(OW));
    lo = std::size_t(l);
    hi = std::size_t(std::max(std::min(h, I(OW)), l));
}

// yr[lo:hi] op= xr[ow * S + off]: one tap of a whole output row, vectorizable along ow.
template <PoolKind K, int S, class T>
inline void pool_row_tap(T* SOFIE_RESTRICT yr, const T* xr, std::ptrdiff_t off, std::size_t stride,
                         std::size_t lo, std::size_t hi, int p) {
    if (lo >= hi) return;
    const std::size_t s = S > 0 ? std::size_t(S) : stride;
    const T* src = xr + (std::ptrdiff_t(lo * s) + off);  // the tap of column lo: inside the row
    yr += lo;
    for (std::size_t i = 0, n = hi - lo; i < n; ++i) {
        const T v = src[i * s];
        const std::size_t ow = i;
        if constexpr (K == PoolKind::max) {
            yr[ow] = std::max(yr[ow], v);
        } else if constexpr (K == PoolKind::avg) {
            yr[ow] += v;
        } else {
            yr[ow] += ipow(std::abs(v), p);
        }
    }
}

// MaxPool with a 2- or 3-wide window along the row at stride 1 or 2 (the CNN cases): each
// output row takes all its window rows in one pass, KW taps unrolled, instead of one pass per
// tap that reloads and stores the row each time. The taps are visited in the generic order
// (row by row, along each row) with the same std::max, so NaN and -0 come out as there.

// yr[lo:hi] = max(yr[lo:hi] (-inf when kFirst), the KW taps of NR rows), every tap inside.
template <int NR, int KW, int S, bool kFirst, class T>
inline void max_rows_interior(T* SOFIE_RESTRICT yr, const T* const* rows, std::ptrdiff_t off,
                              std::size_t lo, std::size_t hi) {
    // One pointer per tap: with one per row, r[j + k] for stride 1 lets g++'s PRE carry the
    // loads from one j to the next, a loop-carried phi that then blocks vectorization.
    const T* r[NR][KW];
    for (int i = 0; i < NR; ++i) {
        for (int k = 0; k < KW; ++k) r[i][k] = rows[i] + (std::ptrdiff_t(lo * S) + off + k);  // inside the row
    }
    yr += lo;
    for (std::size_t j = 0, n = hi - lo; j < n; ++j) {
        T m = kFirst ? detail::max_identity<T>() : yr[j];
        for (int i = 0; i < NR; ++i) {
            for (int k = 0; k < KW; ++k) m = std::max(m, r[i][k][j * S]);
        }
        yr[j] = m;
    }
}

template <int NR, int KW, int S, class T>
inline void max_rows_step(T* yr, const T* const* rows, std::ptrdiff_t off, std::size_t lo, std::size_t hi,
                          bool first) {
    if (first) {
        max_rows_interior<NR, KW, S, true>(yr, rows, off, lo, hi);
    } else {
        max_rows_interior<NR, KW, S, false>(yr, rows, off, lo, hi);
    }
}

// One output row yr[0:OW] of a max pool over the nr window rows `rows` (each W long), window
// KW wide at stride S, starting at column ow * S - pad.
template <int KW, int S, class T>
inline void max_pool_row(T* yr, const T* const* rows, std::size_t nr, std::size_t pad, std::size_t W,
                         std::size_t OW) {
    using I = std::ptrdiff_t;
    // interior columns [lo, hi): ow * S >= pad and ow * S - pad + KW <= W
    const std::size_t lo = std::min(OW, (pad + S - 1) / S);
    const std::size_t hi = W + pad >= std::size_t(KW) ? std::max(lo, std::min(OW, (W + pad - KW) / S + 1)) : lo;
    auto edge = [&](std::size_t ow) {
        T m = detail::max_identity<T>();
        for (std::size_t i = 0; i < nr; ++i) {
            for (int k = 0; k < KW; ++k) {
                const I c = I(ow * S + k) - I(pad);
                if (c >= 0 && c < I(W)) m = std::max(m, rows[i][c]);
            }
        }
        yr[ow] = m;
    };
    for (std::size_t ow = 0; ow < lo; ++ow) edge(ow);
    for (std::size_t ow = hi; ow < OW; ++ow) edge(ow);
    if (nr == 0) std::fill(yr + lo, yr + hi, detail::max_identity<T>());
    const I off = -I(pad);
    std::size_t i = 0;
    for (; nr - i >= 3; i += 3) max_rows_step<3, KW, S>(yr, rows + i, off, lo, hi, i == 0);
    if (nr - i == 2) max_rows_step<2, KW, S>(yr, rows + i, off, lo, hi, i == 0);
    if (nr - i == 1) max_rows_step<1, KW, S>(yr, rows + i, off, lo, hi, i == 0);
}

template <class T>
using MaxPoolRow = void (*)(T*, const T* const*, std::size_t, std::size_t, std::size_t, std::size_t);

// The row kernel for this window along the row, or null (then the generic per-tap path).
template <class T>
inline MaxPoolRow<T> max_pool_row_for(std::size_t kw, std::size_t stride, std::size_t dil) {
    if (dil != 1) return nullptr;
    if (kw == 2) return stride == 1 ? max_pool_row<2, 1, T> : stride == 2 ? max_pool_row<2, 2, T> : nullptr;
    if (kw == 3) return stride == 1 ? max_pool_row<3, 1, T> : stride == 2 ? max_pool_row<3, 2, T> : nullptr;
    return nullptr;
}

constexpr std::size_t kMaxPoolRows = 16;  // window rows (kD * kH) the row kernels take

}  // namespace detail

// y[NC, out] = pool of x[NC, in] (3 spatial dims, see above). count_include_pad (avg):
// divide by the taps inside the padded input rather than inside the input. p: LpPool's.
// Each output row accumulates whole rows of taps (vectorizable), then is finished once.
template <PoolKind K, class T>
inline void pool(const T* x, T* y, std::size_t NC, const Dims3& in, const Dims3& out,
                 const Dims3& kernel, const std::size_t (&pads)[6], const Dims3& strides,
                 const Dims3& dil, bool count_include_pad = false, int p = 2) {
    using I = std::ptrdiff_t;
    const std::size_t in_size = in[0] * in[1] * in[2], out_size = out[0] * out[1] * out[2];
    const std::size_t OW = out[2];
    const T init = K == PoolKind::max ? detail::max_identity<T>() : T(0);
    // avg: output columns [full_cols[0], full_cols[1]) count every tap along the row
    std::size_t full_cols[2] = {0, OW};
    for (std::size_t kw = 0; kw < kernel[2]; ++kw) {
        const I off = I(kw * dil[2]) - (count_include_pad ? 0 : I(pads[2]));
        std::size_t lo, hi;
        detail::pool_col_span(off, strides[2], count_include_pad ? in[2] + pads[2] + pads[5] : in[2], OW, lo, hi);
        full_cols[0] = std::max(full_cols[0], lo);
        full_cols[1] = std::min(full_cols[1], hi);
    }
    detail::MaxPoolRow<T> max_row = nullptr;
    if (K == PoolKind::max && kernel[0] * kernel[1] <= detail::kMaxPoolRows) {
        max_row = detail::max_pool_row_for<T>(kernel[2], strides[2], dil[2]);
    }
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
                T* yr = yc + (od * out[1] + oh) * OW;
                if constexpr (K == PoolKind::max) {
                    if (max_row) {
                        const T* rows[detail::kMaxPoolRows];
                        std::size_t nr = 0;
                        for (std::size_t kd = d_lo; kd < d_hi; ++kd) {
                            const T* xd = xc + std::size_t(d0 + I(kd * dil[0])) * in[1] * in[2];
                            for (std::size_t kh = h_lo; kh < h_hi; ++kh) {
                                rows[nr++] = xd + std::size_t(h0 + I(kh * dil[1])) * in[2];
                            }
                        }
                        max_row(yr, rows, nr, pads[2], in[2], OW);
                        continue;
                    }
                }
                std::fill(yr, yr + OW, init);
                for (std::size_t kd = d_lo; kd < d_hi; ++kd) {
                    const T* xd = xc + std::size_t(d0 + I(kd * dil[0])) * in[1] * in[2];
                    for (std::size_t kh = h_lo; kh < h_hi; ++kh) {
                        const T* xr = xd + std::size_t(h0 + I(kh * dil[1])) * in[2];
                        for (std::size_t kw = 0; kw < kernel[2]; ++kw) {
                            const I off = I(kw * dil[2]) - I(pads[2]);
                            std::size_t lo, hi;
                            detail::pool_col_span(off, strides[2], in[2], OW, lo, hi);
                            if (strides[2] == 1) {
                                detail::pool_row_tap<K, 1>(yr, xr, off, 1, lo, hi, p);
                            } else if (strides[2] == 2) {
                                detail::pool_row_tap<K, 2>(yr, xr, off, 2, lo, hi, p);
                            } else {
                                detail::pool_row_tap<K, 0>(yr, xr, off, strides[2], lo, hi, p);
                            }
                        }
                    }
                }
                if constexpr (K == PoolKind::avg) {
                    const std::size_t dh = count_include_pad ? (dp_hi - dp_lo) * (hp_hi - hp_lo)
                                                             : (d_hi - d_lo) * (h_hi - h_lo);
                    const std::size_t w_size = count_include_pad ? in[2] + pads[2] + pads[5] : in[2];
                    const I w_shift = count_include_pad ? I(pads[2]) : 0;
                    auto edge = [&](std::size_t ow) {
                        std::size_t w_lo, w_hi;
                        detail::tap_range(I(ow * strides[2]) - I(pads[2]) + w_shift, dil[2], kernel[2], w_size,
                                          w_lo, w_hi);
                        const std::size_t count = dh * (w_hi - w_lo);
                        yr[ow] = count ? yr[ow] / T(count) : T(0);
                    };
                    // columns whose whole window is counted share one divisor
                    const std::size_t full_lo = std::min(full_cols[0], OW), full_hi = std::max(full_lo, full_cols[1]);
                    for (std::size_t ow = 0; ow < full_lo; ++ow) edge(ow);
                    if (dh) {
                        const T inv = T(1) / T(dh * kernel[2]);
                        for (std::size_t ow = full_lo; ow < full_hi; ++ow) yr[ow] *= inv;
                    } else {
                        std::fill(yr + full_lo, yr + full_hi, T(0));
                    }
                    for (std::size_t ow = full_hi; ow < OW; ++ow) edge(ow);
                } else if constexpr (K == PoolKind::lp) {
                    for (std::size_t ow = 0; ow < OW; ++ow) yr[ow] = std::pow(yr[ow], T(1) / T(p));
                }
            }
        }
    }
}

// MaxPool with its Indices output: i[nc, out] = the flat index in x of the first largest
// element of each window (nc * in_size + its spatial index, row-major for storage_order 0,
// column-major for 1). A separate loop so that the plain pool keeps no index bookkeeping.
template <class T>
inline void max_pool_indices(const T* x, T* y, std::int64_t* ind, std::size_t NC, const Dims3& in,
                             const Dims3& out, const Dims3& kernel, const std::size_t (&pads)[6],
                             const Dims3& strides, const Dims3& dil, int storage_order) {
    using I = std::ptrdiff_t;
    const std::size_t in_size = in[0] * in[1] * in[2], out_size = out[0] * out[1] * out[2];
    const std::size_t st[3] = {storage_order ? 1 : in[1] * in[2], storage_order ? in[0] : in[2],
                               storage_order ? in[0] * in[1] : 1};
    for (std::size_t nc = 0; nc < NC; ++nc) {
        const T* xc = x + nc * in_size;
        std::size_t o = nc * out_size;
        for (std::size_t od = 0; od < out[0]; ++od) {
            const I d0 = I(od * strides[0]) - I(pads[0]);
            std::size_t d_lo, d_hi;
            detail::tap_range(d0, dil[0], kernel[0], in[0], d_lo, d_hi);
            for (std::size_t oh = 0; oh < out[1]; ++oh) {
                const I h0 = I(oh * strides[1]) - I(pads[1]);
                std::size_t h_lo, h_hi;
                detail::tap_range(h0, dil[1], kernel[1], in[1], h_lo, h_hi);
                for (std::size_t ow = 0; ow < out[2]; ++ow, ++o) {
                    const I w0 = I(ow * strides[2]) - I(pads[2]);
                    std::size_t w_lo, w_hi;
                    detail::tap_range(w0, dil[2], kernel[2], in[2], w_lo, w_hi);
                    T best = detail::max_identity<T>();
                    std::int64_t at = -1;
                    for (std::size_t kd = d_lo; kd < d_hi; ++kd) {
                        const std::size_t id = std::size_t(d0 + I(kd * dil[0]));
                        for (std::size_t kh = h_lo; kh < h_hi; ++kh) {
                            const std::size_t ih = std::size_t(h0 + I(kh * dil[1]));
                            for (std::size_t kw = w_lo; kw < w_hi; ++kw) {
                                const std::size_t iw = std::size_t(w0 + I(kw * dil[2]));
                                const T v = xc[(id * in[1] + ih) * in[2] + iw];
                                if (at < 0 || v > best) {
                                    best = v;
                                    at = std::int64_t(nc * in_size + id * st[0] + ih * st[1] + iw * st[2]);
                                }
                            }
                        }
                    }
                    y[o] = best;
                    ind[o] = at;
                }
            }
        }
    }
}

// y[nc] = max, mean or Lp norm of x[nc, 0:S] (GlobalMaxPool, GlobalAveragePool, GlobalLpPool).
template <PoolKind K, class T>
inline void global_pool(const T* x, T* y, std::size_t NC, std::size_t S, int p = 2) {
    for (std::size_t i = 0; i < NC; ++i) {
        const T* xi = x + i * S;
        if constexpr (K == PoolKind::max) {
            y[i] = detail::row_max(xi, S);
        } else if constexpr (K == PoolKind::avg) {
            const T s = detail::lane_sum<T>(S, [&](std::size_t j) { return xi[j]; });
            y[i] = S ? s / T(S) : T(0);
        } else {
            const T s = detail::lane_sum<T>(S, [&](std::size_t j) { return detail::ipow(std::abs(xi[j]), p); });
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
