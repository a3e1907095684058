// Float kernels for generated models. Row-major, NCHW, sizes are runtime
// arguments; any scratch memory comes from the caller so kernels never
// allocate and can run concurrently on distinct buffers.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <limits>

#include "sofie_rt/blas.hxx"

namespace sofie::rt {

// ---------------------------------------------------------------------------
// Activations (ONNX semantics). The caller resolves ONNX attribute defaults,
// e.g. LeakyRelu alpha = 0.01, Selu alpha = 1.67326, gamma (beta) = 1.0507.
// ---------------------------------------------------------------------------
enum class Act { None, Relu, LeakyRelu, Sigmoid, Tanh, Clip, HardSigmoid, HardSwish, Elu, Selu };

namespace detail {

// One functor per activation so every epilogue loop is specialized and the
// activation choice is made once per call, not once per element.
template <Act A>
struct ActFn {
    float alpha, beta;
    float operator()(float x) const {
        if constexpr (A == Act::None) {
            return x;
        } else if constexpr (A == Act::Relu) {
            return x < 0.0f ? 0.0f : x;  // NaN stays NaN, as in ONNX Runtime and numpy
        } else if constexpr (A == Act::LeakyRelu) {
            return x >= 0.0f ? x : alpha * x;
        } else if constexpr (A == Act::Sigmoid) {
            return 1.0f / (1.0f + std::exp(-x));
        } else if constexpr (A == Act::Tanh) {
            return std::tanh(x);
        } else if constexpr (A == Act::Clip) {
            return std::min(std::max(x, alpha), beta);
        } else if constexpr (A == Act::HardSigmoid) {
            return std::min(std::max(alpha * x + beta, 0.0f), 1.0f);  // NaN stays NaN
        } else if constexpr (A == Act::HardSwish) {
            return x * std::max(0.0f, std::min(1.0f, x * (1.0f / 6.0f) + 0.5f));
        } else if constexpr (A == Act::Elu) {
            return x >= 0.0f ? x : alpha * std::expm1(x);
        } else {
            static_assert(A == Act::Selu);
            return x > 0.0f ? beta * x : beta * alpha * std::expm1(x);
        }
    }
};

template <class F>
inline decltype(auto) dispatch_act(Act a, float alpha, float beta, F&& f) {
    switch (a) {
        case Act::None: return f(ActFn<Act::None>{alpha, beta});
        case Act::Relu: return f(ActFn<Act::Relu>{alpha, beta});
        case Act::LeakyRelu: return f(ActFn<Act::LeakyRelu>{alpha, beta});
        case Act::Sigmoid: return f(ActFn<Act::Sigmoid>{alpha, beta});
        case Act::Tanh: return f(ActFn<Act::Tanh>{alpha, beta});
        case Act::Clip: return f(ActFn<Act::Clip>{alpha, beta});
        case Act::HardSigmoid: return f(ActFn<Act::HardSigmoid>{alpha, beta});
        case Act::HardSwish: return f(ActFn<Act::HardSwish>{alpha, beta});
        case Act::Elu: return f(ActFn<Act::Elu>{alpha, beta});
        case Act::Selu: return f(ActFn<Act::Selu>{alpha, beta});
    }
    return f(ActFn<Act::None>{alpha, beta});
}

// y = act(y + bias + residual) in a single pass over y.
template <class F>
inline void epilogue_rows(float* SOFIE_RESTRICT y, const float* bias, const float* residual,
                          std::size_t rows, std::size_t cols, bool bias_per_row, F f) {
    for (std::size_t r = 0; r < rows; ++r) {
        float* SOFIE_RESTRICT yr = y + r * cols;
        const float* res = residual ? residual + r * cols : nullptr;
        if (bias_per_row) {
            const float b = bias ? bias[r] : 0.0f;
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

inline void epilogue(float* y, const float* bias, const float* residual, std::size_t rows,
                     std::size_t cols, bool bias_per_row, Act a, float alpha, float beta) {
    if (a == Act::None && bias == nullptr && residual == nullptr) return;
    dispatch_act(a, alpha, beta, [&](auto f) {
        epilogue_rows(y, bias, residual, rows, cols, bias_per_row, f);
    });
}

}  // namespace detail

inline float act(Act a, float x, float alpha, float beta) {
    return detail::dispatch_act(a, alpha, beta, [x](auto f) { return f(x); });
}

// y[rows, cols] = act(y + bias). bias is indexed by column (Gemm output rows)
// or, with bias_per_row, by row (NCHW channels: rows = C, cols = H*W).
inline void bias_act(float* y, const float* bias, std::size_t rows, std::size_t cols,
                     bool bias_per_row, Act a, float alpha, float beta) {
    detail::epilogue(y, bias, nullptr, rows, cols, bias_per_row, a, alpha, beta);
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
inline void im2col(const float* x, float* SOFIE_RESTRICT col, std::size_t C, std::size_t H,
                   std::size_t W, std::size_t kH, std::size_t kW, std::size_t pad_top,
                   std::size_t pad_left, std::size_t stride_h, std::size_t stride_w,
                   std::size_t dil_h, std::size_t dil_w, std::size_t oh0, std::size_t oh1,
                   std::size_t OW) {
    using I = std::ptrdiff_t;
    for (std::size_t c = 0; c < C; ++c) {
        const float* xc = x + c * H * W;
        for (std::size_t kh = 0; kh < kH; ++kh) {
            for (std::size_t kw = 0; kw < kW; ++kw) {
                const I w_off = I(kw * dil_w) - I(pad_left);
                I ow_lo, ow_hi;
                valid_span(w_off, I(stride_w), I(W), I(OW), ow_lo, ow_hi);
                for (std::size_t oh = oh0; oh < oh1; ++oh, col += OW) {
                    const I ih = I(oh * stride_h + kh * dil_h) - I(pad_top);
                    if (ih < 0 || ih >= I(H)) {
                        std::fill(col, col + OW, 0.0f);
                        continue;
                    }
                    // Input element of output column ow_lo; stays inside the row.
                    const float* src = xc + ih * I(W) + ow_lo * I(stride_w) + w_off;
                    const std::size_t n_valid = std::size_t(ow_hi - ow_lo);
                    std::fill(col, col + ow_lo, 0.0f);
                    if (stride_w == 1) {
                        std::memcpy(col + ow_lo, src, n_valid * sizeof(float));
                    } else {
                        for (std::size_t i = 0; i < n_valid; ++i) col[ow_lo + I(i)] = src[i * stride_w];
                    }
                    std::fill(col + ow_hi, col + OW, 0.0f);
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
// directly on x.
inline std::size_t conv2d_scratch_floats(std::size_t C, std::size_t group, std::size_t kH,
                                         std::size_t kW, std::size_t OH, std::size_t OW,
                                         std::size_t pad_top, std::size_t pad_left,
                                         std::size_t pad_bottom, std::size_t pad_right,
                                         std::size_t stride_h, std::size_t stride_w) {
    if (detail::conv_is_pointwise(kH, kW, pad_top, pad_left, pad_bottom, pad_right, stride_h,
                                  stride_w))
        return 0;
    return conv2d_scratch_floats(C, group, kH, kW, OH, OW);
}

// y[N, M, OH, OW] = act(conv(x[N, C, H, W], w) + bias + residual).
// Per image and group: im2col into scratch, then W_g[M/g, C/g*kH*kW] x col; with
// tile_rows > 0, `tile_rows` output rows at a time, so scratch needs only
// C/group*kH*kW * tile_rows*OW floats (see conv2d_scratch_floats).
inline void conv2d(const float* x, const float* w, const float* bias, float* y, float* scratch,
                   std::size_t N, std::size_t C, std::size_t H, std::size_t W, std::size_t M,
                   std::size_t group, std::size_t kH, std::size_t kW, std::size_t pad_top,
                   std::size_t pad_left, std::size_t pad_bottom, std::size_t pad_right,
                   std::size_t stride_h, std::size_t stride_w, std::size_t dil_h,
                   std::size_t dil_w, std::size_t OH, std::size_t OW, Act a, float alpha,
                   float beta, const float* residual, std::size_t tile_rows = 0) {
    const std::size_t Cg = C / group, Mg = M / group;
    const std::size_t K = Cg * kH * kW;
    const std::size_t P = OH * OW;
    const bool pointwise = detail::conv_is_pointwise(kH, kW, pad_top, pad_left, pad_bottom,
                                                     pad_right, stride_h, stride_w);
    const std::size_t rows = tile_rows == 0 ? OH : std::min(tile_rows, OH);  // 0: whole image
    for (std::size_t n = 0; n < N; ++n) {
        for (std::size_t g = 0; g < group; ++g) {
            const float* xg = x + (n * C + g * Cg) * H * W;
            float* yg = y + (n * M + g * Mg) * P;
            if (pointwise) {
                sgemm(false, false, Mg, P, K, 1.0f, w + g * Mg * K, K, xg, P, 0.0f, yg, P);
                continue;
            }
            // im2col a band of output rows at a time: the scratch stays cache-sized and
            // the GEMM writes that band's columns of y in place (ldc = P).
            for (std::size_t oh0 = 0; oh0 < OH; oh0 += rows) {
                const std::size_t oh1 = std::min(OH, oh0 + rows), cols = (oh1 - oh0) * OW;
                detail::im2col(xg, scratch, Cg, H, W, kH, kW, pad_top, pad_left, stride_h,
                               stride_w, dil_h, dil_w, oh0, oh1, OW);
                sgemm(false, false, Mg, cols, K, 1.0f, w + g * Mg * K, K, scratch, cols, 0.0f,
                      yg + oh0 * OW, P);
            }
        }
        detail::epilogue(y + n * M * P, bias, residual ? residual + n * M * P : nullptr, M, P,
                         true, a, alpha, beta);
    }
}

// ---------------------------------------------------------------------------
// Pooling (ONNX MaxPool / AveragePool; OH, OW already include ceil_mode).
// ---------------------------------------------------------------------------

inline void maxpool2d(const float* x, float* y, std::size_t N, std::size_t C, std::size_t H,
                      std::size_t W, std::size_t kH, std::size_t kW, std::size_t pad_top,
                      std::size_t pad_left, std::size_t pad_bottom, std::size_t pad_right,
                      std::size_t stride_h, std::size_t stride_w, std::size_t dil_h,
                      std::size_t dil_w, std::size_t OH, std::size_t OW) {
    (void)pad_bottom;  // The window is clipped to the image: padding never wins.
    (void)pad_right;
    using I = std::ptrdiff_t;
    for (std::size_t nc = 0; nc < N * C; ++nc) {
        const float* xc = x + nc * H * W;
        float* yc = y + nc * OH * OW;
        for (std::size_t oh = 0; oh < OH; ++oh) {
            const I h0 = I(oh * stride_h) - I(pad_top);
            for (std::size_t ow = 0; ow < OW; ++ow) {
                const I w0 = I(ow * stride_w) - I(pad_left);
                float m = -std::numeric_limits<float>::infinity();
                for (std::size_t kh = 0; kh < kH; ++kh) {
                    const I ih = h0 + I(kh * dil_h);
                    if (ih < 0 || ih >= I(H)) continue;
                    const float* xr = xc + ih * I(W);
                    for (std::size_t kw = 0; kw < kW; ++kw) {
                        const I iw = w0 + I(kw * dil_w);
                        if (iw >= 0 && iw < I(W)) m = std::max(m, xr[iw]);
                    }
                }
                yc[oh * OW + ow] = m;
            }
        }
    }
}

// With count_include_pad the divisor counts padded cells, but (as in
// onnxruntime) not window cells hanging past the end padding under ceil_mode.
inline void avgpool2d(const float* x, float* y, std::size_t N, std::size_t C, std::size_t H,
                      std::size_t W, std::size_t kH, std::size_t kW, std::size_t pad_top,
                      std::size_t pad_left, std::size_t pad_bottom, std::size_t pad_right,
                      std::size_t stride_h, std::size_t stride_w, std::size_t OH,
                      std::size_t OW, bool count_include_pad) {
    using I = std::ptrdiff_t;
    for (std::size_t nc = 0; nc < N * C; ++nc) {
        const float* xc = x + nc * H * W;
        float* yc = y + nc * OH * OW;
        for (std::size_t oh = 0; oh < OH; ++oh) {
            const I h_start = I(oh * stride_h) - I(pad_top);
            const I h_end = std::min(h_start + I(kH), I(H + pad_bottom));
            const I h_lo = std::max<I>(h_start, 0), h_hi = std::min<I>(h_end, I(H));
            for (std::size_t ow = 0; ow < OW; ++ow) {
                const I w_start = I(ow * stride_w) - I(pad_left);
                const I w_end = std::min(w_start + I(kW), I(W + pad_right));
                const I w_lo = std::max<I>(w_start, 0), w_hi = std::min<I>(w_end, I(W));
                float s = 0.0f;
                for (I ih = h_lo; ih < h_hi; ++ih)
                    for (I iw = w_lo; iw < w_hi; ++iw) s += xc[ih * I(W) + iw];
                const I count = count_include_pad ? (h_end - h_start) * (w_end - w_start)
                                                  : (h_hi - h_lo) * (w_hi - w_lo);
                yc[oh * OW + ow] = count > 0 ? s / float(count) : 0.0f;
            }
        }
    }
}

// y[nc] = mean(x[nc, 0:HW]).
inline void global_avgpool(const float* x, float* y, std::size_t NC, std::size_t HW) {
    for (std::size_t i = 0; i < NC; ++i) {
        const float* xi = x + i * HW;
        float s = 0.0f;
        for (std::size_t j = 0; j < HW; ++j) s += xi[j];
        y[i] = HW ? s / float(HW) : 0.0f;
    }
}

// ---------------------------------------------------------------------------
// Normalization and softmax.
// ---------------------------------------------------------------------------

// Inference BatchNormalization over x[N, C, spatial]; x == y is allowed.
inline void batchnorm(const float* x, float* y, const float* scale, const float* bias,
                      const float* mean, const float* var, float epsilon, std::size_t N,
                      std::size_t C, std::size_t spatial) {
    for (std::size_t n = 0; n < N; ++n) {
        for (std::size_t c = 0; c < C; ++c) {
            // Folded to one multiply-add per element.
            const float k = scale[c] / std::sqrt(var[c] + epsilon);
            const float b = bias[c] - mean[c] * k;
            const std::size_t base = (n * C + c) * spatial;
            for (std::size_t i = 0; i < spatial; ++i) y[base + i] = x[base + i] * k + b;
        }
    }
}

// Softmax over the middle axis of x[outer, axis_len, inner]; x == y is allowed.
inline void softmax(const float* x, float* y, std::size_t outer, std::size_t axis_len,
                    std::size_t inner) {
    // Inner positions are processed in stack-sized chunks so that every pass
    // walks rows contiguously instead of striding by `inner`.
    constexpr std::size_t B = 64;
    float mx[B], sum[B];
    for (std::size_t o = 0; o < outer; ++o) {
        const float* xo = x + o * axis_len * inner;
        float* yo = y + o * axis_len * inner;
        for (std::size_t i0 = 0; i0 < inner; i0 += B) {
            const std::size_t nb = std::min(B, inner - i0);
            std::fill(mx, mx + nb, -std::numeric_limits<float>::infinity());
            std::fill(sum, sum + nb, 0.0f);
            for (std::size_t a = 0; a < axis_len; ++a) {
                const float* xr = xo + a * inner + i0;
                for (std::size_t i = 0; i < nb; ++i) mx[i] = std::max(mx[i], xr[i]);
            }
            for (std::size_t a = 0; a < axis_len; ++a) {
                const float* xr = xo + a * inner + i0;
                float* yr = yo + a * inner + i0;
                for (std::size_t i = 0; i < nb; ++i) {
                    yr[i] = std::exp(xr[i] - mx[i]);
                    sum[i] += yr[i];
                }
            }
            for (std::size_t i = 0; i < nb; ++i) sum[i] = 1.0f / sum[i];
            for (std::size_t a = 0; a < axis_len; ++a) {
                float* yr = yo + a * inner + i0;
                for (std::size_t i = 0; i < nb; ++i) yr[i] *= sum[i];
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Data movement.
// ---------------------------------------------------------------------------

inline constexpr std::size_t kMaxRank = 8;

// y = x.transpose(perm): output axis r is input axis perm[r]. rank <= 8.
inline void transpose(const float* x, float* SOFIE_RESTRICT y, std::size_t rank,
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
        const float* src = x + offset;
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
inline void concat_copy(const float* x, float* y, std::size_t outer, std::size_t x_axis_inner,
                        std::size_t y_axis_inner, std::size_t y_offset) {
    for (std::size_t o = 0; o < outer; ++o)
        std::memcpy(y + o * y_axis_inner + y_offset, x + o * x_axis_inner,
                    x_axis_inner * sizeof(float));
}

inline void copy(const float* x, float* y, std::size_t n) {
    if (x != y && n != 0) std::memmove(y, x, n * sizeof(float));
}

}  // namespace sofie::rt
