// Convolutions beyond conv2d (kernels.hxx): 3-D im2col + GEMM, ConvTranspose (GEMM + col2im)
// and ONNX Col2Im, over 1-3 spatial dims. Fewer spatial dims are passed as 3 with leading size-1
// dims, kernel 1, pads 0, stride and dilation 1.
#ifndef SOFIE_RT_CONV_ND_HXX_V0_1_0
#define SOFIE_RT_CONV_ND_HXX_V0_1_0

#include <algorithm>
#include <cstddef>

#include "blas.hxx"
#include "kernels.hxx"
#include "pool.hxx"

namespace sofie {
inline namespace v0_1_0 {
namespace rt {

namespace detail {

// col[((c*kD + kd)*kH + kh)*kW + kw, (od - od0)*OH*OW + oh*OW + ow] = x[c, id, ih, iw]
// for output planes od0 <= od < od1, zero where padded.
template <class T>
inline void im2col3d(const T* x, T* SOFIE_RESTRICT col, std::size_t C, const Dims3& in,
                     const Dims3& k, const std::size_t (&pads)[6], const Dims3& s, const Dims3& d,
                     std::size_t od0, std::size_t od1, std::size_t OH, std::size_t OW) {
    using I = std::ptrdiff_t;
    const std::size_t D = in[0], H = in[1], W = in[2];
    for (std::size_t c = 0; c < C; ++c) {
        const T* xc = x + c * D * H * W;
        for (std::size_t kd = 0; kd < k[0]; ++kd)
            for (std::size_t kh = 0; kh < k[1]; ++kh)
                for (std::size_t kw = 0; kw < k[2]; ++kw) {
                    const I w_off = I(kw * d[2]) - I(pads[2]);
                    I ow_lo, ow_hi;
                    valid_span(w_off, I(s[2]), I(W), I(OW), ow_lo, ow_hi);
                    for (std::size_t od = od0; od < od1; ++od) {
                        const I id = I(od * s[0] + kd * d[0]) - I(pads[0]);
                        for (std::size_t oh = 0; oh < OH; ++oh, col += OW) {
                            const I ih = I(oh * s[1] + kh * d[1]) - I(pads[1]);
                            if (id < 0 || id >= I(D) || ih < 0 || ih >= I(H)) {
                                std::fill(col, col + OW, T(0));
                                continue;
                            }
                            const T* src = xc + (id * I(H) + ih) * I(W) + w_off;
                            std::fill(col, col + ow_lo, T(0));
                            for (I ow = ow_lo; ow < ow_hi; ++ow) col[ow] = src[ow * I(s[2])];
                            std::fill(col + ow_hi, col + OW, T(0));
                        }
                    }
                }
    }
}

}  // namespace detail

// y[N, M, out] = act(conv3d(x[N, C, in], w[M, C/group, k]) + bias + residual): per image and
// group, im2col of `tile_planes` output depth planes at a time into scratch
// (C/group*kD*kH*kW x tile_planes*OH*OW), then one GEMM into those planes of y.
template <class T, class F = Identity>
inline void conv3d(const T* x, const T* w, const detail::same<T>* bias, T* y, detail::same<T>* scratch,
                   std::size_t N, std::size_t C, const Dims3& in, std::size_t M, std::size_t group,
                   const Dims3& k, const std::size_t (&pads)[6], const Dims3& strides, const Dims3& dil,
                   const Dims3& out, F f, const detail::same<T>* residual, std::size_t tile_planes) {
    const std::size_t Cg = C / group, Mg = M / group;
    const std::size_t K = Cg * k[0] * k[1] * k[2];
    const std::size_t plane = out[1] * out[2], P = out[0] * plane, S = in[0] * in[1] * in[2];
    const std::size_t planes = std::max<std::size_t>(1, std::min(tile_planes, out[0]));
    for (std::size_t n = 0; n < N; ++n) {
        for (std::size_t g = 0; g < group; ++g) {
            const T* xg = x + (n * C + g * Cg) * S;
            T* yg = y + (n * M + g * Mg) * P;
            for (std::size_t od0 = 0; od0 < out[0]; od0 += planes) {
                const std::size_t od1 = std::min(out[0], od0 + planes), cols = (od1 - od0) * plane;
                detail::im2col3d(xg, scratch, Cg, in, k, pads, strides, dil, od0, od1, out[1], out[2]);
                gemm<T>(false, false, Mg, cols, K, T(1), w + g * Mg * K, K, scratch, cols, T(0),
                        yg + od0 * plane, P);
            }
        }
        detail::epilogue(y + n * M * P, bias, residual ? residual + n * M * P : nullptr, M, P, true, f);
    }
}

namespace detail {

// ym[out] += row[in] placed by one tap t of kernel k: input position i lands at
// o = i*stride - pad_begin + tap*dilation; positions outside [0, out) are dropped.
template <class T>
inline void col2im_tap(const T* row, T* ym, std::size_t t, const Dims3& k, const Dims3& in,
                       const Dims3& out, const Dims3& pads_begin, const Dims3& strides,
                       const Dims3& dil) {
    using I = std::ptrdiff_t;
    const std::size_t kd = t / (k[1] * k[2]), kh = t / k[2] % k[1], kw = t % k[2];
    // input columns iw whose output column ow = iw*s - pad + kw*d lies in [0, OW)
    const I w_off = I(kw * dil[2]) - I(pads_begin[2]);
    const I iw_lo = w_off >= 0 ? 0 : (-w_off + I(strides[2]) - 1) / I(strides[2]);
    const I iw_hi = std::min<I>(I(in[2]), I(out[2]) - w_off <= 0 ? 0
                                : (I(out[2]) - w_off + I(strides[2]) - 1) / I(strides[2]));
    for (std::size_t id = 0; id < in[0]; ++id) {
        const I od = I(id * strides[0] + kd * dil[0]) - I(pads_begin[0]);
        if (od < 0 || od >= I(out[0])) continue;
        for (std::size_t ih = 0; ih < in[1]; ++ih) {
            const I oh = I(ih * strides[1] + kh * dil[1]) - I(pads_begin[1]);
            if (oh < 0 || oh >= I(out[1])) continue;
            const T* src = row + (id * in[1] + ih) * in[2];
            T* dst = ym + (od * I(out[1]) + oh) * I(out[2]);
            for (I iw = iw_lo; iw < iw_hi; ++iw) dst[iw * I(strides[2]) + w_off] += src[iw];
        }
    }
}

}  // namespace detail

// y[N, M, out] = conv_transpose(x[N, C, in], w[C, M/group, k]) + bias. Per image and group:
// col[Mg*kD*kH*kW, in] = W_g^T x_g (one GEMM into scratch), then col2im adds each tap's
// row into y at o = i*stride - pad_begin + tap*dilation.
template <class T>
inline void conv_transpose(const T* x, const T* w, const detail::same<T>* bias, T* y,
                           detail::same<T>* scratch, std::size_t N, std::size_t C, const Dims3& in,
                           std::size_t M, std::size_t group, const Dims3& k, const Dims3& pads_begin,
                           const Dims3& strides, const Dims3& dil, const Dims3& out) {
    const std::size_t Cg = C / group, Mg = M / group, taps = k[0] * k[1] * k[2];
    const std::size_t S = in[0] * in[1] * in[2], P = out[0] * out[1] * out[2];
    for (std::size_t n = 0; n < N; ++n) {
        std::fill(y + n * M * P, y + (n + 1) * M * P, T(0));
        for (std::size_t g = 0; g < group; ++g) {
            gemm<T>(true, false, Mg * taps, S, Cg, T(1), w + g * Cg * Mg * taps, Mg * taps,
                    x + (n * C + g * Cg) * S, S, T(0), scratch, S);
            for (std::size_t m = 0; m < Mg; ++m) {
                T* ym = y + (n * M + g * Mg + m) * P;
                for (std::size_t t = 0; t < taps; ++t) {
                    detail::col2im_tap(scratch + (m * taps + t) * S, ym, t, k, in, out, pads_begin,
                                       strides, dil);
                }
            }
        }
        detail::epilogue(y + n * M * P, bias, nullptr, M, P, true, Identity{});
    }
}

// ONNX Col2Im: y[N, C, image] = sum over the columns of x[N, C*prod(k), prod(blocks)] of
// each column's block added at its position (blocks: the block positions per dim).
template <class T>
inline void col2im(const T* x, T* y, std::size_t NC, const Dims3& blocks, const Dims3& image,
                   const Dims3& k, const Dims3& pads_begin, const Dims3& strides, const Dims3& dil) {
    const std::size_t taps = k[0] * k[1] * k[2];
    const std::size_t L = blocks[0] * blocks[1] * blocks[2], P = image[0] * image[1] * image[2];
    std::fill(y, y + NC * P, T(0));
    for (std::size_t nc = 0; nc < NC; ++nc) {
        for (std::size_t t = 0; t < taps; ++t) {
            detail::col2im_tap(x + (nc * taps + t) * L, y + nc * P, t, k, blocks, image, pads_begin,
                               strides, dil);
        }
    }
}

}  // namespace rt
}  // namespace v0_1_0
}  // namespace sofie

#endif  // SOFIE_RT_CONV_ND_HXX_V0_1_0
