// Resize (ONNX Resize / Upsample), one axis at a time. The compiler computes each
// resized axis's table at compile time: output position j reads input positions
// index[j * taps + t] with weights weight[j * taps + t] (no weights: nearest, one
// tap); index -1 marks a position outside a tf_crop_and_resize crop. The tensor is
// seen as [outer, in_len, inner] -> [outer, out_len, inner], so on any axis but the
// last each output row is a weighted sum of whole input rows (contiguous, vectorized)
// and on the last axis a gather.
#ifndef SOFIE_RT_RESIZE_HXX_V0_1_0
#define SOFIE_RT_RESIZE_HXX_V0_1_0

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "blas.hxx"

namespace sofie {
inline namespace v0_1_0 {
namespace rt {

namespace detail {

// Nearest along one axis: a copy of one input row per output row.
template <class T>
inline void resize_nearest(const T* SOFIE_RESTRICT x, T* SOFIE_RESTRICT y,
                           const std::int64_t* index, std::size_t outer, std::size_t in_len,
                           std::size_t out_len, std::size_t inner, T extrapolation) {
    for (std::size_t o = 0; o < outer; ++o) {
        const T* xo = x + o * in_len * inner;
        T* yo = y + o * out_len * inner;
        if (inner == 1) {
            for (std::size_t j = 0; j < out_len; ++j) {
                yo[j] = index[j] < 0 ? extrapolation : xo[index[j]];
            }
            continue;
        }
        for (std::size_t j = 0; j < out_len; ++j) {
            T* yr = yo + j * inner;
            if (index[j] < 0) {
                std::fill(yr, yr + inner, extrapolation);
            } else {
                std::copy_n(xo + static_cast<std::size_t>(index[j]) * inner, inner, yr);
            }
        }
    }
}

// Interpolation along one axis: a weighted sum of `taps` input rows per output row.
template <class T, class W>
inline void resize_weighted(const T* SOFIE_RESTRICT x, T* SOFIE_RESTRICT y,
                            const std::int64_t* index, const W* weight, std::size_t taps,
                            std::size_t outer, std::size_t in_len, std::size_t out_len,
                            std::size_t inner, T extrapolation) {
    for (std::size_t o = 0; o < outer; ++o) {
        const T* xo = x + o * in_len * inner;
        T* yo = y + o * out_len * inner;
        for (std::size_t j = 0; j < out_len; ++j) {
            const std::int64_t* ij = index + j * taps;
            const W* wj = weight + j * taps;
            if (inner == 1) {
                T s = T(0);
                for (std::size_t t = 0; t < taps; ++t) s += T(wj[t]) * xo[ij[0] < 0 ? 0 : ij[t]];
                yo[j] = ij[0] < 0 ? extrapolation : s;
                continue;
            }
            T* SOFIE_RESTRICT yr = yo + j * inner;
            if (ij[0] < 0) {
                std::fill(yr, yr + inner, extrapolation);
                continue;
            }
            const T w0 = T(wj[0]);
            const T* r0 = xo + static_cast<std::size_t>(ij[0]) * inner;
            for (std::size_t i = 0; i < inner; ++i) yr[i] = w0 * r0[i];
            for (std::size_t t = 1; t < taps; ++t) {
                const T wt = T(wj[t]);
                if (wt == T(0)) continue;
                const T* rt = xo + static_cast<std::size_t>(ij[t]) * inner;
                for (std::size_t i = 0; i < inner; ++i) yr[i] += wt * rt[i];
            }
        }
    }
}

}  // namespace detail

// One resized axis: x [outer, in_len, inner] -> y [outer, out_len, inner].
// weight == nullptr selects nearest (one tap per output position).
template <class T, class W>
inline void resize_axis(const T* x, T* y, const std::int64_t* index, const W* weight,
                        std::size_t taps, std::size_t outer, std::size_t in_len,
                        std::size_t out_len, std::size_t inner, T extrapolation) {
    if (weight == nullptr) {
        detail::resize_nearest(x, y, index, outer, in_len, out_len, inner, extrapolation);
    } else {
        detail::resize_weighted(x, y, index, weight, taps, outer, in_len, out_len, inner,
                                extrapolation);
    }
}

// Nearest has no weight table; its calls pass a null pointer of the element type.
template <class T>
inline void resize_axis(const T* x, T* y, const std::int64_t* index, std::nullptr_t,
                        std::size_t taps, std::size_t outer, std::size_t in_len,
                        std::size_t out_len, std::size_t inner, T extrapolation) {
    resize_axis(x, y, index, static_cast<const T*>(nullptr), taps, outer, in_len, out_len,
                inner, extrapolation);
}

}  // namespace rt
}  // namespace v0_1_0
}  // namespace sofie

#endif  // SOFIE_RT_RESIZE_HXX_V0_1_0
