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
#include "depthwise.hxx"
#include "gemm_small_n.hxx"

namespace sofie {
inline namespace v0_1_0 {
namespace rt {

// ---------------------------------------------------------------------------
// Epilogues: the generated code passes each fused activation as a functor (a
// lambda spelled from the activation's one definition, a scalar body in the
// IR), so every epilogue loop is specialized at compile time.
// ---------------------------------------------------------------------------
// The generated epilogue lambdas carry SOFIE_EPILOGUE_INLINE (gemm_kernels.hxx says why).

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

// dst[i] = src[i * s] for i < n, reading no element of src past src[(n - 1) * s]. Stride 2
// (the stride-2 convs' im2col) is vectorized by hand: the compilers leave a strided copy
// scalar, and ResNet-50's stem spent 40% of its time in it (im2col alone 776 of 1900 us).
template <class T>
inline void gather_strided(T* SOFIE_RESTRICT dst, const T* src, std::size_t n, std::size_t s) {
    if (s == 1) {
        if (n != 0) std::memcpy(dst, src, n * sizeof(T));
        return;
    }
    std::size_t i = 0;
#if defined(__AVX512F__)
    if constexpr (std::is_same_v<T, float>) {
        if (s == 2) {
            // 16 outputs from 31 inputs: the even lanes of two vectors, the second one masked
            // to the 15 it needs (a full load could run off the end of x)
            const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
            for (; i + 16 <= n; i += 16) {
                const __m512 lo = _mm512_loadu_ps(src + 2 * i);
                const __m512 hi = _mm512_maskz_loadu_ps(__mmask16(0x7FFF), src + 2 * i + 16);
                _mm512_storeu_ps(dst + i, _mm512_permutex2var_ps(lo, even, hi));
            }
            if (i < n) {
                const std::size_t r = n - i, need = 2 * r - 1;  // inputs 0 .. 2 (r - 1)
                const __m512 lo = _mm512_maskz_loadu_ps(__mmask16((1u << std::min<std::size_t>(need, 16)) - 1u),
                                                        src + 2 * i);
                // no load at all when the second vector needs nothing: a masked-off load of an
                // address past the buffer can cost AMD a microcode assist
                const __m512 hi = need > 16 ? _mm512_maskz_loadu_ps(__mmask16((1u << (need - 16)) - 1u),
                                                                    src + 2 * i + 16)
                                            : _mm512_setzero_ps();
                _mm512_mask_storeu_ps(dst + i, __mmask16((1u << r) - 1u), _mm512_permutex2var_ps(lo, even, hi));
            }
            return;
        }
    }
#elif defined(__AVX2__) && defined(__FMA__)  // (gemm_kernels.hxx includes immintrin.h then)
    if constexpr (std::is_same_v<T, float>) {
        if (s == 2) {
            // 8 outputs from 16 inputs while an output follows (so input 15 is inside x)
            for (; i + 8 < n; i += 8) {
                const __m256 a = _mm256_loadu_ps(src + 2 * i), b = _mm256_loadu_ps(src + 2 * i + 8);
                const __m256 e = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0));  // a0 a2 b0 b2 | a4 a6 b4 b6
                _mm256_storeu_ps(dst + i, _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(e), 0xD8)));
            }
        }
    }
#endif
    for (; i < n; ++i) dst[i] = src[i * s];
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
                    std::fill(col, col + ow_lo, T(0));
                    gather_strided(col + ow_lo, src, std::size_t(ow_hi - ow_lo), stride_w);
                    std::fill(col + ow_hi, col + OW, T(0));
                }
            }
        }
    }
}

}  // namespace detail

// Scratch floats conv2d needs: an upper bound that does not depend on pads
// and strides (pointwise convs need none but may be given this much). A depthwise
// conv's phase planes (depthwise.hxx) hold at most kH (OH + 1) x kW (OW + 1) elements
// for any stride, its flat output OH x (OW + kW), each with the slack.
inline std::size_t conv2d_scratch_floats(std::size_t C, std::size_t group, std::size_t kH,
                                         std::size_t kW, std::size_t OH, std::size_t OW) {
    if (C == group && group > 1)
        return kH * kW * ((OH + 1) * (OW + 1) + detail::dw_slack(kW)) + OH * (OW + kW) +
               detail::dw_slack(kW);
    return C / group * kH * kW * OH * OW;
}

// Exact scratch size: 0 for 1x1 stride-1 unpadded convs, which run the GEMM
// directly on x; conv2d_depthwise_scratch_floats for depthwise convs (one input
// channel per group, group > 1: more than dilated ones need, which need none).
inline std::size_t conv2d_scratch_floats(std::size_t C, std::size_t group, std::size_t kH,
                                         std::size_t kW, std::size_t OH, std::size_t OW,
                                         std::size_t pad_top, std::size_t pad_left,
                                         std::size_t pad_bottom, std::size_t pad_right,
                                         std::size_t stride_h, std::size_t stride_w) {
    if (C == group && group > 1)
        return conv2d_depthwise_scratch_floats(kH, kW, stride_h, stride_w, OH, OW);
    if (detail::conv_is_pointwise(kH, kW, pad_top, pad_left, pad_bottom, pad_right, stride_h,
                                  stride_w))
        return 0;
    return conv2d_scratch_floats(C, group, kH, kW, OH, OW);
}

namespace detail {

// conv2d's im2col path on the intra-op pool, in bands of `band` output rows (the
// single-thread band / T, so that the T threads' im2col slices fit the scratch the plan gave
// one thread): the bands of every image and group are the units of work, claimed by the
// threads in runs of consecutive bands, each band's GEMM with the epilogue fused. The
// arithmetic of each output element is that of the single-thread conv (a band's GEMM
// computes each of its columns the same way).
template <class T, class F>
inline void conv2d_im2col_split(ThreadPool& pool, const T* x, const T* w, const same<T>* bias, T* y,
                                same<T>* scratch, std::size_t N, std::size_t C, std::size_t H,
                                std::size_t W, std::size_t M, std::size_t group, std::size_t kH,
                                std::size_t kW, std::size_t pad_top, std::size_t pad_left,
                                std::size_t stride_h, std::size_t stride_w, std::size_t dil_h,
                                std::size_t dil_w, std::size_t OH, std::size_t OW, F f,
                                const same<T>* residual, std::size_t band) {
    const std::size_t Cg = C / group, Mg = M / group, K = Cg * kH * kW, P = OH * OW;
    const std::size_t bands = (OH + band - 1) / band, units = N * group * bands;
    // a few parts per thread: one left to a descheduled worker is a small share of the work
    const std::size_t parts = std::min(units, 4 * pool.size());
    pool.run(parts, [&](std::size_t part, std::size_t thread) {
        T* col = scratch + thread * band * OW * K;
        for (std::size_t u = part * units / parts, end = (part + 1) * units / parts; u < end; ++u) {
            const std::size_t ng = u / bands, g = ng % group, n = ng / group;
            const std::size_t oh0 = u % bands * band, oh1 = std::min(OH, oh0 + band), cols = (oh1 - oh0) * OW;
            const T* xg = x + (n * C + g * Cg) * H * W;
            im2col(xg, col, Cg, H, W, kH, kW, pad_top, pad_left, stride_h, stride_w, dil_h, dil_w, oh0, oh1, OW);
            const std::size_t at = (n * M + g * Mg) * P + oh0 * OW;
            gemm_fused<T>(false, false, Mg, cols, K, T(1), w + g * Mg * K, K, col, cols, T(0), y + at, P,
                          bias ? bias + g * Mg : nullptr, true, residual ? residual + at : nullptr, f);
        }
    });
}

}  // namespace detail

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
    // With intra-op threads (thread_pool.hxx): bands of rows / T rows, one slice of the
    // scratch per thread; a band of under one row per thread leaves the split to the GEMMs.
    ThreadPool* pool = intra_op_pool();
    if (pool != nullptr && !pointwise && !(Cg == 1 && group > 1) && rows >= pool->size() &&
        N * M * K * P >= detail::kMinSplitMacs) {
        detail::conv2d_im2col_split(*pool, x, w, bias, y, scratch, N, C, H, W, M, group, kH, kW,
                                    pad_top, pad_left, stride_h, stride_w, dil_h, dil_w, OH, OW, f,
                                    residual, rows / pool->size());
        return;
    }
    for (std::size_t n = 0; n < N; ++n) {
        if (Cg == 1 && group > 1) {  // depthwise: a GEMM per group would have one row
            const T* res = residual ? residual + n * M * P : nullptr;
            if (dil_h == 1 && dil_w == 1) {
                conv2d_depthwise(x + n * C * H * W, w, bias, res, y + n * M * P, scratch, C, H, W,
                                 M, kH, kW, pad_top, pad_left, stride_h, stride_w, OH, OW, f);
            } else {
                depthwise_dilated(x + n * C * H * W, w, bias, res, y + n * M * P, C, H, W, M, kH,
                                  kW, pad_top, pad_left, stride_h, stride_w, dil_h, dil_w, OH,
                                  OW, f);
            }
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

// conv2d (group 1, float) for GEMMs of few columns (small images): the weights come packed
// at compile time for gemm_small_n (gemm_small_n.hxx), which vectorizes over output channels.
// Per image: a pointwise conv multiplies x in place, any other conv im2col's `tile_rows`
// output rows at a time into scratch (C*kH*kW * tile_rows*OW floats), as conv2d does.
template <class F = Identity>
inline void conv2d_small_n(const float* x, const float* w_packed, const float* bias, float* y, float* scratch,
                           std::size_t N, std::size_t C, std::size_t H, std::size_t W, std::size_t M,
                           std::size_t kH, std::size_t kW, std::size_t pad_top, std::size_t pad_left,
                           std::size_t pad_bottom, std::size_t pad_right, std::size_t stride_h,
                           std::size_t stride_w, std::size_t dil_h, std::size_t dil_w, std::size_t OH,
                           std::size_t OW, F f, const float* residual, std::size_t tile_rows) {
    const std::size_t K = C * kH * kW, P = OH * OW;
    const bool pointwise = detail::conv_is_pointwise(kH, kW, pad_top, pad_left, pad_bottom, pad_right,
                                                     stride_h, stride_w);
    const std::size_t rows = tile_rows == 0 ? OH : std::min(tile_rows, OH);
    for (std::size_t n = 0; n < N; ++n) {
        const float* xn = x + n * C * H * W;
        float* yn = y + n * M * P;
        const float* res = residual ? residual + n * M * P : nullptr;
        if (pointwise) {
            gemm_small_n(M, P, K, w_packed, xn, P, yn, P, bias, res, f);
            continue;
        }
        for (std::size_t oh0 = 0; oh0 < OH; oh0 += rows) {
            const std::size_t oh1 = std::min(OH, oh0 + rows), cols = (oh1 - oh0) * OW;
            detail::im2col(xn, scratch, C, H, W, kH, kW, pad_top, pad_left, stride_h, stride_w, dil_h, dil_w,
                           oh0, oh1, OW);
            gemm_small_n(M, cols, K, w_packed, scratch, cols, yn + oh0 * OW, P, bias,
                         res ? res + oh0 * OW : nullptr, f);
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
