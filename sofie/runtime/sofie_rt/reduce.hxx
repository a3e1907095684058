// Reductions that a loop nest does badly: softmax family, normalizations, arg and
// cumulative reductions, top-k. Templated on the element type (float and double; the
// arg / cumulative / top-k kernels any arithmetic type). Tensors are seen as
// x[outer, n, inner] around the reduced axis; kernels never allocate.
//
// Row sums and maxima run in kLanes independent accumulators so g++ -O3 vectorizes them
// without -ffast-math (a single running sum is a dependency chain it must keep in order).
#ifndef SOFIE_RT_REDUCE_HXX_V0_1_0
#define SOFIE_RT_REDUCE_HXX_V0_1_0

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>

#include "kernels.hxx"
#include "vmath.hxx"

namespace sofie {
inline namespace v0_1_0 {
namespace rt {

namespace detail {

inline constexpr std::size_t kLanes = 16;

// sum of f(i) for i < n in kLanes partial sums
template <class T, class F>
inline T lane_sum(std::size_t n, F f) {
    T acc[kLanes] = {};
    std::size_t i = 0;
    for (; i + kLanes <= n; i += kLanes)
        for (std::size_t l = 0; l < kLanes; ++l) acc[l] += f(i + l);
    T s = T(0);
    for (; i < n; ++i) s += f(i);
    for (std::size_t l = 0; l < kLanes; ++l) s += acc[l];
    return s;
}

template <class T>
inline T row_max(const T* x, std::size_t n) {
    T acc[kLanes];
    std::fill(acc, acc + kLanes, -std::numeric_limits<T>::infinity());
    std::size_t i = 0;
    for (; i + kLanes <= n; i += kLanes)
        for (std::size_t l = 0; l < kLanes; ++l) acc[l] = acc[l] < x[i + l] ? x[i + l] : acc[l];
    T m = -std::numeric_limits<T>::infinity();
    for (; i < n; ++i) m = m < x[i] ? x[i] : m;
    for (std::size_t l = 0; l < kLanes; ++l) m = m < acc[l] ? acc[l] : m;
    return m;
}

// softmax (log: log-softmax) of one contiguous row; x == y is allowed
template <class T>
inline void softmax_row(const T* x, T* y, std::size_t n, bool log) {
    const T m = row_max(x, n);
    if (log) {
        const T s = lane_sum<T>(n, [&](std::size_t i) { return vmath::exp(x[i] - m); });
        const T shift = m + std::log(s);
        for (std::size_t i = 0; i < n; ++i) y[i] = x[i] - shift;
        return;
    }
    for (std::size_t i = 0; i < n; ++i) y[i] = vmath::exp(x[i] - m);
    const T r = T(1) / lane_sum<T>(n, [&](std::size_t i) { return y[i]; });
    for (std::size_t i = 0; i < n; ++i) y[i] *= r;
}

}  // namespace detail

// Softmax (log: LogSoftmax) over the middle axis of x[outer, axis_len, inner]; x == y is allowed.
template <class T>
inline void softmax(const T* x, T* y, std::size_t outer, std::size_t axis_len, std::size_t inner,
                    bool log = false) {
    if (inner == 1) {
        for (std::size_t o = 0; o < outer; ++o) detail::softmax_row(x + o * axis_len, y + o * axis_len, axis_len, log);
        return;
    }
    // Inner positions in stack-sized chunks, so every pass walks rows contiguously.
    constexpr std::size_t B = 64;
    T mx[B], sum[B];
    for (std::size_t o = 0; o < outer; ++o) {
        const T* xo = x + o * axis_len * inner;
        T* yo = y + o * axis_len * inner;
        for (std::size_t i0 = 0; i0 < inner; i0 += B) {
            const std::size_t nb = std::min(B, inner - i0);
            std::fill(mx, mx + nb, -std::numeric_limits<T>::infinity());
            std::fill(sum, sum + nb, T(0));
            for (std::size_t a = 0; a < axis_len; ++a) {
                const T* xr = xo + a * inner + i0;
                for (std::size_t i = 0; i < nb; ++i) mx[i] = mx[i] < xr[i] ? xr[i] : mx[i];
            }
            for (std::size_t a = 0; a < axis_len; ++a) {
                const T* xr = xo + a * inner + i0;
                for (std::size_t i = 0; i < nb; ++i) sum[i] += vmath::exp(xr[i] - mx[i]);
            }
            for (std::size_t i = 0; i < nb; ++i) sum[i] = log ? mx[i] + std::log(sum[i]) : T(1) / sum[i];
            for (std::size_t a = 0; a < axis_len; ++a) {
                const T* xr = xo + a * inner + i0;
                T* yr = yo + a * inner + i0;
                if (log) {
                    for (std::size_t i = 0; i < nb; ++i) yr[i] = xr[i] - sum[i];
                } else {
                    for (std::size_t i = 0; i < nb; ++i) yr[i] = vmath::exp(xr[i] - mx[i]) * sum[i];
                }
            }
        }
    }
}

// Hardmax: 1 at the first largest element along the middle axis, 0 elsewhere.
template <class T>
inline void hardmax(const T* x, T* y, std::size_t outer, std::size_t n, std::size_t inner) {
    std::fill(y, y + outer * n * inner, T(0));
    for (std::size_t o = 0; o < outer; ++o)
        for (std::size_t i = 0; i < inner; ++i) {
            const T* xr = x + o * n * inner + i;
            std::size_t best = 0;
            for (std::size_t a = 1; a < n; ++a)
                if (xr[a * inner] > xr[best * inner]) best = a;
            if (n) y[o * n * inner + best * inner + i] = T(1);
        }
}

// ArgMax (largest) / ArgMin along the middle axis into y[outer, inner]; `last` picks the
// last of equal extremes.
template <class T>
inline void arg_reduce(const T* x, std::int64_t* y, std::size_t outer, std::size_t n, std::size_t inner,
                       bool largest, bool last) {
    for (std::size_t o = 0; o < outer; ++o)
        for (std::size_t i = 0; i < inner; ++i) {
            const T* xr = x + o * n * inner + i;
            std::size_t best = 0;
            for (std::size_t a = 1; a < n; ++a) {
                const T v = xr[a * inner], b = xr[best * inner];
                const bool better = largest ? (last ? v >= b : v > b) : (last ? v <= b : v < b);
                if (better) best = a;
            }
            y[o * inner + i] = static_cast<std::int64_t>(best);
        }
}

// CumSum / CumProd along the middle axis; exclusive shifts by one, reverse runs from the end.
template <class T>
inline void cumulative(const T* x, T* y, std::size_t outer, std::size_t n, std::size_t inner, bool product,
                       bool exclusive, bool reverse) {
    constexpr std::size_t B = 64;
    T acc[B];
    for (std::size_t o = 0; o < outer; ++o)
        for (std::size_t i0 = 0; i0 < inner; i0 += B) {
            const std::size_t nb = std::min(B, inner - i0);
            std::fill(acc, acc + nb, product ? T(1) : T(0));
            for (std::size_t step = 0; step < n; ++step) {
                const std::size_t a = reverse ? n - 1 - step : step;
                const std::size_t at = (o * n + a) * inner + i0;
                for (std::size_t i = 0; i < nb; ++i) {
                    const T v = x[at + i];
                    if (exclusive) y[at + i] = acc[i];
                    acc[i] = product ? static_cast<T>(acc[i] * v) : static_cast<T>(acc[i] + v);
                    if (!exclusive) y[at + i] = acc[i];
                }
            }
        }
}

// CumSum / CumProd along an axis known only at run time (an ONNX axis, negative from the
// end): checked against the rank, then as above around that axis.
template <class T, class A>
inline void cumulative_at(const T* x, T* y, const std::size_t* dims, std::size_t rank, A axis, bool product,
                          bool exclusive, bool reverse, const char* where) {
    const long long r = static_cast<long long>(rank), a = static_cast<long long>(axis);
    if (a < -r || a >= r)
        throw std::out_of_range(std::string("sofie: node '") + where + "': axis " + std::to_string(a) +
                                " is outside [" + std::to_string(-r) + ", " + std::to_string(r) + ")");
    const std::size_t at = static_cast<std::size_t>(a < 0 ? a + r : a);
    std::size_t outer = 1, inner = 1;
    for (std::size_t i = 0; i < at; ++i) outer *= dims[i];
    for (std::size_t i = at + 1; i < rank; ++i) inner *= dims[i];
    cumulative(x, y, outer, dims[at], inner, product, exclusive, reverse);
}

// The k largest (smallest) elements along the middle axis of x[outer, n, inner], ordered,
// equal values by index; `order` is scratch for n indices.
template <class T>
inline void top_k(const T* x, std::int64_t* order, T* values, std::int64_t* indices, std::size_t outer,
                  std::size_t n, std::size_t inner, std::size_t k, bool largest) {
    for (std::size_t o = 0; o < outer; ++o)
        for (std::size_t i = 0; i < inner; ++i) {
            const T* xr = x + o * n * inner + i;
            for (std::size_t a = 0; a < n; ++a) order[a] = static_cast<std::int64_t>(a);
            std::partial_sort(order, order + k, order + n, [&](std::int64_t a, std::int64_t b) {
                const T va = xr[a * inner], vb = xr[b * inner];
                return largest ? (va > vb || (va == vb && a < b)) : (va < vb || (va == vb && a < b));
            });
            for (std::size_t j = 0; j < k; ++j) {
                values[(o * k + j) * inner + i] = xr[order[j] * inner];
                indices[(o * k + j) * inner + i] = order[j];
            }
        }
}

// y = post(fold of body over the axes in `mask`) of x with dims shape[rank]: the Reduce* family
// when the axes are known only at run time. y is packed at the kept dims (keepdims or not,
// the same layout); body(acc, x) folds an element in from `init`, post(acc, n) finishes with
// n the count reduced. One pass over x in order, adding each element into its result.
template <class T, class Body, class Post>
inline void reduce_masked(const T* x, T* y, const std::size_t* shape, std::size_t rank, std::uint64_t mask, T init,
                          Body body, Post post) {
    std::size_t stride[64], idx[64] = {};
    std::size_t out_count = 1, reduced = 1, total = 1;
    for (std::size_t a = rank; a-- > 0;) {  // the result's stride of each input axis, 0 where reduced
        const bool r = mask >> a & 1;
        stride[a] = r ? 0 : out_count;
        (r ? reduced : out_count) *= shape[a];
        total *= shape[a];
    }
    std::fill(y, y + out_count, init);
    std::size_t at = 0;
    for (std::size_t i = 0; i < total; ++i) {
        y[at] = body(y[at], x[i]);
        for (std::size_t a = rank; a-- > 0;) {  // the next input index, odometer-style
            at += stride[a];
            if (++idx[a] < shape[a]) break;
            at -= stride[a] * shape[a];
            idx[a] = 0;
        }
    }
    const T n = static_cast<T>(reduced);
    for (std::size_t j = 0; j < out_count; ++j) y[j] = post(y[j], n);
}

// LayerNormalization (centered) or RMSNormalization over rows of x[rows, d]; scale and
// bias (may be null) have d elements; mean and inv_std (may be null) get one per row.
template <class T>
inline void layer_norm(const T* x, const T* scale, const detail::same<T>* bias, T* y, detail::same<T>* mean,
                       detail::same<T>* inv_std, std::size_t rows, std::size_t d, T epsilon, bool centered) {
    for (std::size_t r = 0; r < rows; ++r) {
        const T* xr = x + r * d;
        T* yr = y + r * d;
        const T m = centered ? detail::lane_sum<T>(d, [&](std::size_t i) { return xr[i]; }) / T(d) : T(0);
        const T var = detail::lane_sum<T>(d, [&](std::size_t i) { return (xr[i] - m) * (xr[i] - m); }) / T(d);
        const T inv = T(1) / std::sqrt(var + epsilon);
        if (bias) {
            for (std::size_t i = 0; i < d; ++i) yr[i] = (xr[i] - m) * inv * scale[i] + bias[i];
        } else {
            for (std::size_t i = 0; i < d; ++i) yr[i] = (xr[i] - m) * inv * scale[i];
        }
        if (mean) mean[r] = m;
        if (inv_std) inv_std[r] = inv;
    }
}

// GroupNormalization / InstanceNormalization of x[N, C, spatial] in G groups of channels;
// scale and bias hold one value per channel, or per group when per_group.
template <class T>
inline void group_norm(const T* x, const T* scale, const T* bias, T* y, std::size_t N, std::size_t C,
                       std::size_t G, std::size_t spatial, T epsilon, bool per_group) {
    const std::size_t cg = C / G, len = cg * spatial;
    for (std::size_t n = 0; n < N; ++n)
        for (std::size_t g = 0; g < G; ++g) {
            const std::size_t base = (n * C + g * cg) * spatial;
            const T* xg = x + base;
            const T m = detail::lane_sum<T>(len, [&](std::size_t i) { return xg[i]; }) / T(len);
            const T var = detail::lane_sum<T>(len, [&](std::size_t i) { return (xg[i] - m) * (xg[i] - m); }) / T(len);
            const T inv = T(1) / std::sqrt(var + epsilon);
            for (std::size_t c = 0; c < cg; ++c) {
                const std::size_t p = per_group ? g : g * cg + c;
                const T k = scale[p] * inv, b = bias[p] - m * k;
                const T* xc = xg + c * spatial;
                T* yc = y + base + c * spatial;
                for (std::size_t i = 0; i < spatial; ++i) yc[i] = xc[i] * k + b;
            }
        }
}

// Local response normalization across channels of x[N, C, spatial] (y != x).
template <class T>
inline void lrn(const T* x, T* y, std::size_t N, std::size_t C, std::size_t spatial, std::size_t size, T alpha,
                T beta, T bias) {
    const std::size_t lo = (size - 1) / 2, hi = size - 1 - lo;
    const T k = alpha / T(size);
    for (std::size_t n = 0; n < N; ++n)
        for (std::size_t c = 0; c < C; ++c) {
            T* yc = y + (n * C + c) * spatial;
            std::fill(yc, yc + spatial, T(0));
            const std::size_t first = c >= lo ? c - lo : 0, end = std::min(C, c + hi + 1);
            for (std::size_t j = first; j < end; ++j) {
                const T* xj = x + (n * C + j) * spatial;
                for (std::size_t i = 0; i < spatial; ++i) yc[i] += xj[i] * xj[i];
            }
            const T* xc = x + (n * C + c) * spatial;
            for (std::size_t i = 0; i < spatial; ++i)
                yc[i] = xc[i] * vmath::exp(-beta * vmath::log(bias + k * yc[i]));
        }
}

}  // namespace rt
}  // namespace v0_1_0
}  // namespace sofie

#endif  // SOFIE_RT_REDUCE_HXX_V0_1_0
