// Kernels for generated models, templated on the element type (float and
// double; data movement any type). Row-major, NCHW, sizes are runtime
// arguments; any scratch memory comes from the caller so kernels never
// allocate and can run concurrently on distinct buffers.
#ifndef SOFIE_RT_KERNELS_HXX_V0_1_0
#define SOFIE_RT_KERNELS_HXX_V0_1_0

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <limits>
#include <type_traits>

#include "blas.hxx"

namespace sofie {
inline namespace v0_1_0 {
namespace rt {

// ---------------------------------------------------------------------------
// Epilogues: the generated code passes each fused activation as a functor (a
// lambda spelled from the activation's one definition, a scalar body in the
// IR), so every epilogue loop is specialized at compile time.
// ---------------------------------------------------------------------------
// (Identity, the functor of no activation, is declared with the GEMM kernels: gemm_kernels.hxx.)

namespace detail {

// Pointer parameters that may be nullptr take their type from the others.
template <class T>
struct same_type {
    using type = T;
};
template <class T>
using same = typename same_type<T>::type;

// y = act(y + bias + residual) in a single pass over y.
template <class T, class F>
inline void epilogue_rows(T* SOFIE_RESTRICT y, const same<T>* bias, const same<T>* residual,
                          std::size_t rows, std::size_t cols, bool bias_per_row, F f) {
    for (std::size_t r = 0; r < rows; ++r) {
        T* SOFIE_RESTRICT yr = y + r * cols;
        const T* res = residual ? residual + r * cols : nullptr;
        if (bias_per_row) {
            const T b = bias ? bias[r] : T(0);
            if (res) {
                for (std::size_t c = 0; c < cols; ++c) yr[c] = f(yr[c] + b + res[c]);
            } else {
                for (std::size_t c = 0; c < cols; ++c) yr[c] = f(yr[c] + b);
            }
        } else if (bias) {
            if (res) {
                for (std::size_t c = 0; c < cols; ++c) yr[c] = f(yr[c] + bias[c] + res[c]);
            } else {
                for (std::size_t c = 0; c < cols; ++c) yr[c] = f(yr[c] + bias[c]);
            }
        } else if (res) {
            for (std::size_t c = 0; c < cols; ++c) yr[c] = f(yr[c] + res[c]);
        } else {
            for (std::size_t c = 0; c < cols; ++c) yr[c] = f(yr[c]);
        }
    }
}

template <class T, class F>
inline void epilogue(T* y, const same<T>* bias, const same<T>* residual, std::size_t rows,
                     std::size_t cols, bool bias_per_row, F f) {
    if constexpr (std::is_same_v<F, Identity>) {
        if (bias == nullptr && residual == nullptr) return;
    }
    epilogue_rows(y, bias, residual, rows, cols, bias_per_row, f);
}

}  // namespace detail

// y[rows, cols] = f(y + bias). bias is indexed by column (Gemm output rows)
// or, with bias_per_row, by row (NCHW channels: rows = C, cols = H*W).
template <class T, class F = Identity>
inline void bias_act(T* y, const detail::same<T>* bias, std::size_t rows, std::size_t cols,
                     bool bias_per_row, F f = {}) {
    detail::epilogue(y, bias, nullptr, rows, cols, bias_per_row, f);
}

// ---------------------------------------------------------------------------
// Convolution (ONNX Conv; w is [M, C/group, kH, kW]).
// ---------------------------------------------------------------------------

namespace detail {

inline bool conv_is_pointwise(std::size_t kH, std::size_t kW, std::size_t pad_top,
                              std::size_t pad_left, std::size_t pad_bottom,
                              std::size_t pad_right, std::size_t stride_h,
                              std::size_t stride_w) {
    return kH == 1 && kW == 1 && pad_top == 0 && pad_left == 0 && pad_bottom == 0 &&
           pad_right == 0 && stride_h == 1 && stride_w == 1;
}

// First output index o in [0, n_out) with o*stride + offset >= 0, and the end
// of the run with o*stride + offset < limit: the span needing no bounds check.
inline void valid_span(std::ptrdiff_t offset, std::ptrdiff_t stride, std::ptrdiff_t limit,
                       std::ptrdiff_t n_out, std::ptrdiff_t& lo, std::ptrdiff_t& hi) {
    lo = offset >= 0 ? 0 : (-offset + stride - 1) / stride;
    hi = limit - offset <= 0 ? 0 : (limit - offset + stride - 1) / stride;
    lo = std::min(lo, n_out);
    hi = std::max(std::min(hi, n_out), lo);
}

// col[(c*kH + kh)*kW + kw, (oh - oh0)*OW + ow] = x[c, ih, iw] for output rows
// oh0 <= oh < oh1, zero where padded.
template <class T>
inline void im2col(const T* x, T* SOFIE_RESTRICT col, std::size_t C, std::size_t H,
                   std::size_t W, std::size_t kH, std::size_t kW, std::size_t pad_top,
                   std::size_t pad_left, std::size_t stride_h, std::size_t stride_w,
                   std::size_t dil_h, std::size_t dil_w, std::size_t oh0, std::size_t oh1,
                   std::size_t OW) {
    using I = std::ptrdiff_t;
    for (std::size_t c = 0; c < C; ++c) {
        const T* xc = x + c * H * W;
        for (std::size_t kh = 0; kh < kH; ++kh) {
            for (std::size_t kw = 0; kw < kW; ++kw) {
                const I w_off = I(kw * dil_w) - I(pad_left);
                I ow_lo, ow_hi;
                valid_span(w_off, I(stride_w), I(W), I(OW), ow_lo, ow_hi);
                for (std::size_t oh = oh0; oh < oh1; ++oh, col += OW) {
                    const I ih = I(oh * stride_h + kh * dil_h) - I(pad_top);
                    if (ih < 0 || ih >= I(H)) {
                        std::fill(col, col + OW, T(0));
                        continue;
                    }
                    // Input element of output column ow_lo; stays inside the row.
                    const T* src = xc + ih * I(W) + ow_lo * I(stride_w) + w_off;
                    const std::size_t n_valid = std::size_t(ow_hi - ow_lo);
                    std::fill(col, col + ow_lo, T(0));
                    if (stride_w == 1) {
                        std::memcpy(col + ow_lo, src, n_valid * sizeof(T));
                    } else {
                        for (std::size_t i = 0; i < n_valid; ++i) col[ow_lo + I(i)] = src[i * stride_w];
                    }
                    std::fill(col + ow_hi, col + OW, T(0));
                }
            }
        }
    }
}

}  // namespace detail

// Scratch floats conv2d needs: an upper bound that does not depend on pads
// and strides (pointwise convs need none but may be given this much).
inline std::size_t conv2d_scratch_floats(std::size_t C, std::size_t group, std::size_t kH,
                                         std::size_t kW, std::size_t OH, std::size_t OW) {
    return C / group * kH * kW * OH * OW;
}

// Exact scratch size: 0 for 1x1 stride-1 unpadded convs, which run the GEMM
// directly on x, and for depthwise convs (one input channel per group, group > 1),
// which run conv2d_depthwise.
inline std::size_t conv2d_scratch_floats(std::size_t C, std::size_t group, std::size_t kH,
                                         std::size_t kW, std::size_t OH, std::size_t OW,
                                         std::size_t pad_top, std::size_t pad_left,
                                         std::size_t pad_bottom, std::size_t pad_right,
                                         std::size_t stride_h, std::size_t stride_w) {
    if (detail::conv_is_pointwise(kH, kW, pad_top, pad_left, pad_bottom, pad_right, stride_h,
                                  stride_w) || (C == group && group > 1))
        return 0;
    return conv2d_scratch_floats(C, group, kH, kW, OH, OW);
}

namespace detail {

// yr[lo:hi] += sum over the row's kW taps of w[kw] * x at the tap: with KW == kW known at
// compile time, the columns where every tap is inside the row go in one pass (y loaded and
// stored once per kernel row, not once per tap); the edge columns take the taps one by one.
template <int KW, class T>
inline void depthwise_row(T* SOFIE_RESTRICT yr, const T* xr, const T* wr, std::size_t kW,
                          std::ptrdiff_t pad_left, std::size_t W, std::size_t OW, std::size_t stride,
                          std::size_t dil) {
    using I = std::ptrdiff_t;
    I in_lo = 0, in_hi = I(OW);  // columns where every tap is inside the row
    for (std::size_t kw = 0; kw < kW; ++kw) {
        I lo, hi;
        valid_span(I(kw * dil) - pad_left, I(stride), I(W), I(OW), lo, hi);
        in_lo = std::max(in_lo, lo);
        in_hi = std::min(in_hi, hi);
    }
    const bool fused = KW > 0 && in_lo < in_hi;
    for (std::size_t kw = 0; kw < kW; ++kw) {
        I lo, hi;
        valid_span(I(kw * dil) - pad_left, I(stride), I(W), I(OW), lo, hi);
        const T wv = wr[kw];
        const I off = I(kw * dil) - pad_left;
        const I cut_lo = fused ? std::min(hi, in_lo) : hi, cut_hi = fused ? std::max(lo, in_hi) : hi;
        for (I ow = lo; ow < cut_lo; ++ow) yr[ow] += wv * xr[ow * I(stride) + off];
        for (I ow = cut_hi; ow < hi; ++ow) yr[ow] += wv * xr[ow * I(stride) + off];
    }
    if constexpr (KW > 0) {
        if (!fused) return;
        const T* src = xr + (in_lo * I(stride) - pad_left);  // tap 0 of column in_lo: inside
        T* y0 = yr + in_lo;
        for (std::size_t i = 0, n = std::size_t(in_hi - in_lo); i < n; ++i) {
            T acc = y0[i];
            for (int kw = 0; kw < KW; ++kw) acc += wr[kw] * src[i * stride + std::size_t(kw) * dil];
            y0[i] = acc;
        }
    }
}

}  // namespace detail

// Depthwise conv (one input channel per group; M/group outputs each): per output
// channel, a direct sum of kH*kW shifted rows of the input, vectorizable along ow.
// The caller (conv2d) applies the epilogue.
template <class T>
inline void conv2d_depthwise(const T* x, const T* w, T* y, std::size_t C, std::size_t H,
                             std::size_t W, std::size_t M, std::size_t kH, std::size_t kW,
                             std::size_t pad_top, std::size_t pad_left, std::size_t stride_h,
                             std::size_t stride_w, std::size_t dil_h, std::size_t dil_w,
                             std::size_t OH, std::size_t OW) {
    using I = std::ptrdiff_t;
    const std::size_t per_channel = M / C;
    for (std::size_t m = 0; m < M; ++m) {
        const T* xc = x + (m / per_channel) * H * W;
        const T* wm = w + m * kH * kW;
        T* ym = y + m * OH * OW;
        std::fill(ym, ym + OH * OW, T(0));
        for (std::size_t oh = 0; oh < OH; ++oh) {
            for (std::size_t kh = 0; kh < kH; ++kh) {
                const I ih = I(oh * stride_h + kh * dil_h) - I(pad_top);
                if (ih < 0 || ih >= I(H)) continue;
                const T* xr = xc + ih * I(W);
                if (kW == 3) {
                    detail::depthwise_row<3>(ym + oh * OW, xr, wm + kh * kW, kW, I(pad_left), W, OW,
                                             stride_w, dil_w);
                } else {
                    detail::depthwise_row<0>(ym + oh * OW, xr, wm + kh * kW, kW, I(pad_left), W, OW,
                                             stride_w, dil_w);
                }
            }
        }
    }
}

// y[N, M, OH, OW] = act(conv(x[N, C, H, W], w) + bias + residual).
// Per image and group: im2col into scratch, then W_g[M/g, C/g*kH*kW] x col; with
// tile_rows > 0, `tile_rows` output rows at a time, so scratch needs only
// C/group*kH*kW * tile_rows*OW floats (see conv2d_scratch_floats).
template <class T, class F = Identity>
inline void conv2d(const T* x, const T* w, const detail::same<T>* bias, T* y, detail::same<T>* scratch,
                   std::size_t N, std::size_t C, std::size_t H, std::size_t W, std::size_t M,
                   std::size_t group, std::size_t kH, std::size_t kW, std::size_t pad_top,
                   std::size_t pad_left, std::size_t pad_bottom, std::size_t pad_right,
                   std::size_t stride_h, std::size_t stride_w, std::size_t dil_h,
                   std::size_t dil_w, std::size_t OH, std::size_t OW, F f,
                   const detail::same<T>* residual, std::size_t tile_rows = 0) {
    const std::size_t Cg = C / group, Mg = M / group;
    const std::size_t K = Cg * kH * kW;
    const std::size_t P = OH * OW;
    const bool pointwise = detail::conv_is_pointwise(kH, kW, pad_top, pad_left, pad_bottom,
                                                     pad_right, stride_h, stride_w);
    const std::size_t rows = tile_rows == 0 ? OH : std::min(tile_rows, OH);  // 0: whole image
    for (std::size_t n = 0; n < N; ++n) {
        if (Cg == 1 && group > 1) {  // depthwise: a GEMM per group would have one row
            conv2d_depthwise(x + n * C * H * W, w, y + n * M * P, C, H, W, M, kH, kW, pad_top,
                             pad_left, stride_h, stride_w, dil_h, dil_w, OH, OW);
            detail::epilogue(y + n * M * P, bias, residual ? residual + n * M * P : nullptr, M, P,
                             true, f);
            continue;
        }
        // bias, residual and f go into the GEMM's tile stores (gemm_fused): no pass over y
        const T* res_n = residual ? residual + n * M * P : nullptr;
        for (std::size_t g = 0; g < group; ++g) {
            const T* xg = x + (n * C + g * Cg) * H * W;
            T* yg = y + (n * M + g * Mg) * P;
            const T* bias_g = bias ? bias + g * Mg : nullptr;
            const T* res_g = res_n ? res_n + g * Mg * P : nullptr;
            if (pointwise) {
                gemm_fused<T>(false, false, Mg, P, K, T(1), w + g * Mg * K, K, xg, P, T(0), yg, P, bias_g,
                              true, res_g, f);
                continue;
            }
            // im2col a band of output rows at a time: the scratch stays cache-sized and
            // the GEMM writes that band's columns of y in place (ldc = P).
            for (std::size_t oh0 = 0; oh0 < OH; oh0 += rows) {
                const std::size_t oh1 = std::min(OH, oh0 + rows), cols = (oh1 - oh0) * OW;
                detail::im2col(xg, scratch, Cg, H, W, kH, kW, pad_top, pad_left, stride_h,
                               stride_w, dil_h, dil_w, oh0, oh1, OW);
                gemm_fused<T>(false, false, Mg, cols, K, T(1), w + g * Mg * K, K, scratch, cols, T(0),
                              yg + oh0 * OW, P, bias_g, true, res_g ? res_g + oh0 * OW : nullptr, f);
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Global average pooling (windowed and other global pools: pool.hxx).
// ---------------------------------------------------------------------------

// ---------------------------------------------------------------------------
// Normalization (softmax and the others: reduce.hxx).
// ---------------------------------------------------------------------------

// Inference BatchNormalization over x[N, C, spatial]; x == y is allowed.
template <class T>
inline void batchnorm(const T* x, T* y, const T* scale, const T* bias,
                      const T* mean, const T* var, detail::same<T> epsilon, std::size_t N,
                      std::size_t C, std::size_t spatial) {
    for (std::size_t n = 0; n < N; ++n) {
        for (std::size_t c = 0; c < C; ++c) {
            // Folded to one multiply-add per element.
            const T k = scale[c] / std::sqrt(var[c] + epsilon);
            const T b = bias[c] - mean[c] * k;
            const std::size_t base = (n * C + c) * spatial;
            for (std::size_t i = 0; i < spatial; ++i) y[base + i] = x[base + i] * k + b;
        }
    }
}

// ---------------------------------------------------------------------------
// Data movement.
// ---------------------------------------------------------------------------

inline constexpr std::size_t kMaxRank = 8;

// y = x.transpose(perm): output axis r is input axis perm[r]. rank <= 8.
template <class T>
inline void transpose(const T* x, T* SOFIE_RESTRICT y, std::size_t rank,
                      const std::size_t* in_shape, const std::size_t* perm) {
    if (rank == 0) {
        y[0] = x[0];
        return;
    }
    std::size_t in_stride[kMaxRank], out_shape[kMaxRank], stride[kMaxRank], idx[kMaxRank] = {};
    std::size_t total = 1;
    for (std::size_t r = rank; r-- > 0;) {
        in_stride[r] = total;
        total *= in_shape[r];
    }
    if (total == 0) return;
    for (std::size_t r = 0; r < rank; ++r) {
        out_shape[r] = in_shape[perm[r]];
        stride[r] = in_stride[perm[r]];
    }
    // Odometer over the output; the innermost output axis is a strided gather.
    const std::size_t last = rank - 1, n_last = out_shape[last], s_last = stride[last];
    std::size_t offset = 0;
    for (std::size_t done = 0; done < total; done += n_last) {
        const T* src = x + offset;
        for (std::size_t i = 0; i < n_last; ++i) y[done + i] = src[i * s_last];
        for (std::size_t r = last; r-- > 0;) {
            offset += stride[r];
            if (++idx[r] < out_shape[r]) break;
            offset -= stride[r] * out_shape[r];
            idx[r] = 0;
        }
    }
}

// Copies x[outer, x_axis_inner] into columns [y_offset, y_offset + x_axis_inner)
// of y[outer, y_axis_inner]: one input's slice of a Concat.
template <class T>
inline void concat_copy(const T* x, T* y, std::size_t outer, std::size_t x_axis_inner,
                        std::size_t y_axis_inner, std::size_t y_offset) {
    for (std::size_t o = 0; o < outer; ++o)
        std::memcpy(y + o * y_axis_inner + y_offset, x + o * x_axis_inner,
                    x_axis_inner * sizeof(T));
}

template <class T>
inline void copy(const T* x, T* y, std::size_t n) {
    if (x != y && n != 0) std::memmove(y, x, n * sizeof(T));
}

}  // namespace rt
}  // namespace v0_1_0
}  // namespace sofie

#endif  // SOFIE_RT_KERNELS_HXX_V0_1_0
