// Sampling and scattering at data-dependent positions: GridSample, MaxUnpool, RoiAlign and
// DeformConv (ONNX). The steps follow the ONNX reference implementation (but for GridSample's
// cubic mode: PyTorch's), as the compiler's numpy references (sofie/ir/dialects/graph/spatial.py).
#ifndef SOFIE_RT_SPATIAL_HXX_V0_1_0
#define SOFIE_RT_SPATIAL_HXX_V0_1_0

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "blas.hxx"
#include "kernels.hxx"

namespace sofie {
inline namespace v0_1_0 {
namespace rt {

enum class GridMode { nearest, linear, cubic };
enum class GridPadding { zeros, border, reflection };

namespace detail {

// x reflected at the borders lo and hi until it lies between them.
template <class T>
inline T grid_reflect(T x, T lo, T hi) {
    const T span = hi - lo;
    if (span == T(0)) return lo;
    if (x < lo) {
        const T dx = lo - x;
        const T n = std::floor(dx / span), r = dx - n * span;
        return std::fmod(n, T(2)) == T(0) ? lo + r : hi - r;
    }
    if (x > hi) {
        const T dx = x - hi;
        const T n = std::floor(dx / span), r = dx - n * span;
        return std::fmod(n, T(2)) == T(0) ? hi - r : lo + r;
    }
    return x;
}

// Keys' cubic convolution weights (a = -0.75) of the 4 taps around a point t past the first.
template <class T>
inline void grid_cubic(T t, T* w) {
    const T a = T(-0.75);
    auto near = [a](T v) { return ((a + 2) * v - (a + 3)) * v * v + 1; };
    auto far = [a](T v) { return ((a * v - 5 * a) * v + 8 * a) * v - 4 * a; };
    w[0] = far(t + 1);
    w[1] = near(t);
    w[2] = near(1 - t);
    w[3] = far(2 - t);
}

// The input positions (-1: reads zero) and weights one normalized coordinate reads along an
// axis of `size`; returns the number of taps.
template <class T>
inline int grid_axis_taps(T n, std::size_t size, GridMode mode, GridPadding padding, bool align,
                          std::ptrdiff_t* idx, T* w) {
    using I = std::ptrdiff_t;
    const T d = T(size);
    T x = align ? (n + 1) / 2 * (d - 1) : ((n + 1) * d - 1) / 2;
    const T lo = align ? T(0) : T(-0.5), hi = align ? d - 1 : d - T(0.5);
    if (mode == GridMode::nearest) x = std::nearbyint(x);  // half to even, before the border rule
    // the point moves inside, but for cubic (as PyTorch and onnxruntime), whose taps are padded
    if (mode != GridMode::cubic && (x < lo || x > hi)) {
        if (padding == GridPadding::border) x = std::min(std::max(x, T(0)), d - 1);
        else if (padding == GridPadding::reflection) x = grid_reflect(x, lo, hi);
    }
    // far-out, infinite or NaN points: all their taps are padding, but the conversion to an
    // index must stay defined
    const T far = T(1e9);
    x = x >= -far ? std::min(x, far) : -far;
    int taps = 1;
    if (mode == GridMode::nearest) {
        idx[0] = I(x);
        w[0] = T(1);
    } else {
        const T first = std::floor(x), t = x - first;
        if (mode == GridMode::linear) {
            taps = 2;
            idx[0] = I(first);
            w[0] = 1 - t;
            w[1] = t;
        } else {
            taps = 4;
            idx[0] = I(first) - 1;
            grid_cubic(t, w);
        }
        for (int k = 1; k < taps; ++k) idx[k] = idx[0] + k;
    }
    for (int k = 0; k < taps; ++k) {
        I& i = idx[k];
        if (padding == GridPadding::zeros) {
            if (i < 0 || i >= I(size)) i = -1;
        } else if (padding == GridPadding::border) {
            i = std::min(std::max<I>(i, 0), I(size) - 1);
        } else {
            i = I(grid_reflect(T(i), lo, hi));
            i = std::min(std::max<I>(i, 0), I(size) - 1);
        }
    }
    return taps;
}

}  // namespace detail

// y[N, C, P] = x[N, C, in] sampled at grid[N, P, nd] (normalized, the last spatial axis
// first), nd = 1..3 spatial dims in[0..nd). The taps (taps^nd per point: 1 nearest, 2 linear,
// 4 cubic per axis) and weights of a block of points are found once, then each channel reads
// its plane for the block and writes its output row in order.
template <class T>
inline void grid_sample(const T* x, const T* grid, T* y, std::size_t N, std::size_t C,
                        std::size_t nd, const std::size_t (&in)[3], std::size_t P, GridMode mode,
                        GridPadding padding, bool align_corners) {
    using I = std::ptrdiff_t;
    constexpr std::size_t kBuf = 2048;  // taps of a block of points (32 KiB in f64)
    std::size_t S = 1, K = 1;
    const std::size_t per_axis = mode == GridMode::nearest ? 1 : mode == GridMode::linear ? 2 : 4;
    std::size_t stride[3] = {1, 1, 1};
    for (std::size_t i = nd; i-- > 0;) {
        stride[i] = S;
        S *= in[i];
        K *= per_axis;
    }
    const std::size_t B = std::max<std::size_t>(1, kBuf / K);
    I idx[3][4];
    T w[3][4];
    I off[kBuf];
    T wt[kBuf];
    for (std::size_t n = 0; n < N; ++n) {
        const T* xn = x + n * C * S;
        T* yn = y + n * C * P;
        for (std::size_t p0 = 0; p0 < P; p0 += B) {
            const std::size_t nb = std::min(B, P - p0);
            for (std::size_t q = 0; q < nb; ++q) {
                const T* g = grid + (n * P + p0 + q) * nd;
                for (std::size_t i = 0; i < nd; ++i) {
                    detail::grid_axis_taps(g[nd - 1 - i], in[i], mode, padding, align_corners, idx[i], w[i]);
                }
                // tap k picks tap (k / per_axis^(nd-1-i)) % per_axis of axis i; one in the
                // zero padding gets position -1: it reads 0 (not 0 * x, NaN for an infinite x)
                for (std::size_t k = 0; k < K; ++k) {
                    std::size_t rest = k;
                    I o = 0;
                    T v = T(1);
                    bool padded = false;
                    for (std::size_t i = nd; i-- > 0;) {
                        const std::size_t a = rest % per_axis;
                        rest /= per_axis;
                        if (idx[i][a] < 0) {
                            padded = true;
                        } else {
                            o += idx[i][a] * I(stride[i]);
                            v *= w[i][a];
                        }
                    }
                    off[q * K + k] = padded ? -1 : o;
                    wt[q * K + k] = padded ? T(0) : v;
                }
            }
            for (std::size_t c = 0; c < C; ++c) {
                const T* xc = xn + c * S;
                T* yc = yn + c * P + p0;
                auto at = [xc](I o) { return o < 0 ? T(0) : xc[o]; };
                if (K == 1) {
                    for (std::size_t q = 0; q < nb; ++q) yc[q] = wt[q] * at(off[q]);
                } else if (K == 4) {
                    for (std::size_t q = 0; q < nb; ++q) {
                        const I* o = off + q * 4;
                        const T* v = wt + q * 4;
                        yc[q] = v[0] * at(o[0]) + v[1] * at(o[1]) + v[2] * at(o[2]) + v[3] * at(o[3]);
                    }
                } else {
                    for (std::size_t q = 0; q < nb; ++q) {
                        T acc = T(0);
                        for (std::size_t k = 0; k < K; ++k) acc += wt[q * K + k] * at(off[q * K + k]);
                        yc[q] = acc;
                    }
                }
            }
        }
    }
}

// y = zeros; then the element x[k] goes where i[k] points in the unpooled tensor
// [NC, unpooled] (MaxPool's indices), y's spatial dims being the unpooled ones or larger
// (output_shape: the extra cells at the end of each dim stay zero, as in the ONNX reference).
template <class T>
inline void max_unpool(const T* x, const std::int64_t* i, T* y, std::size_t NC, std::size_t in,
                       const std::size_t (&unpooled)[3], const std::size_t (&out)[3], const char* where) {
    const std::size_t U = unpooled[0] * unpooled[1] * unpooled[2], P = out[0] * out[1] * out[2];
    std::fill(y, y + NC * P, T(0));
    for (std::size_t k = 0; k < NC * in; ++k) {
        const std::int64_t at = i[k];
        if (at < 0 || std::size_t(at) >= NC * U)
            throw std::out_of_range(std::string("sofie: node '") + where + "': index " + std::to_string(at) +
                                    " outside the unpooled tensor of " + std::to_string(NC * U) + " elements");
        const std::size_t nc = std::size_t(at) / U, r = std::size_t(at) % U;
        const std::size_t u2 = r % unpooled[2], u1 = r / unpooled[2] % unpooled[1], u0 = r / (unpooled[1] * unpooled[2]);
        y[nc * P + (u0 * out[1] + u1) * out[2] + u2] = x[k];
    }
}

namespace detail {

// One bilinear sample of RoiAlign at (y, x): 4 positions in the plane and their weights.
template <class T>
struct RoiSample {
    std::size_t pos[4];
    T w[4];
};

template <class T>
inline RoiSample<T> roi_sample(T y, T x, std::size_t H, std::size_t W) {
    RoiSample<T> s{{0, 0, 0, 0}, {T(0), T(0), T(0), T(0)}};
    if (y < T(-1) || y > T(H) || x < T(-1) || x > T(W)) return s;  // outside: contributes zero
    y = std::max(y, T(0));
    x = std::max(x, T(0));
    std::size_t y_lo = std::size_t(y), x_lo = std::size_t(x), y_hi, x_hi;
    if (y_lo >= H - 1) {
        y_hi = y_lo = H - 1;
        y = T(y_lo);
    } else {
        y_hi = y_lo + 1;
    }
    if (x_lo >= W - 1) {
        x_hi = x_lo = W - 1;
        x = T(x_lo);
    } else {
        x_hi = x_lo + 1;
    }
    const T ly = y - T(y_lo), lx = x - T(x_lo), hy = 1 - ly, hx = 1 - lx;
    s.pos[0] = y_lo * W + x_lo;
    s.pos[1] = y_lo * W + x_hi;
    s.pos[2] = y_hi * W + x_lo;
    s.pos[3] = y_hi * W + x_hi;
    s.w[0] = hy * hx;
    s.w[1] = hy * lx;
    s.w[2] = ly * hx;
    s.w[3] = ly * lx;
    return s;
}

}  // namespace detail

// y[R, C, OH, OW]: each bin of each box rois[r] = (x1, y1, x2, y2) (scaled by spatial_scale)
// on image batch_indices[r] of x[N, C, H, W] is the average (max: the largest weighted
// corner, as the ONNX reference) of a grid of bilinear samples, sampling_ratio per bin side
// (0: ceil(bin size)). Each sample is found once and applied to every channel; the bins
// accumulate in y (no scratch: the sample count depends on the boxes, known at run time).
template <class T>
inline void roi_align(const T* x, const T* rois, const std::int64_t* batch_indices, T* y, std::size_t N,
                      std::size_t C, std::size_t H, std::size_t W, std::size_t R, std::size_t OH, std::size_t OW,
                      bool max, bool half_pixel, std::int64_t sampling_ratio, T spatial_scale, const char* where) {
    using I = std::ptrdiff_t;
    const std::size_t bins = OH * OW;
    for (std::size_t r = 0; r < R; ++r) {
        const std::int64_t b = batch_indices[r];
        if (b < 0 || std::size_t(b) >= N)
            throw std::out_of_range(std::string("sofie: node '") + where + "': batch index " + std::to_string(b) +
                                    " out of range for " + std::to_string(N) + " images");
        const T offset = half_pixel ? T(0.5) : T(0);
        const T* box = rois + r * 4;
        const T x0 = box[0] * spatial_scale - offset, y0 = box[1] * spatial_scale - offset;
        T roi_w = box[2] * spatial_scale - offset - x0, roi_h = box[3] * spatial_scale - offset - y0;
        if (!half_pixel) {  // malformed boxes become 1x1
            roi_w = std::max(roi_w, T(1));
            roi_h = std::max(roi_h, T(1));
        }
        const T bin_h = roi_h / T(OH), bin_w = roi_w / T(OW);
        // an inverted box (half_pixel) samples nothing: its bins are 0
        const I gh = sampling_ratio > 0 ? I(sampling_ratio) : I(std::max(std::ceil(roi_h / T(OH)), T(0)));
        const I gw = sampling_ratio > 0 ? I(sampling_ratio) : I(std::max(std::ceil(roi_w / T(OW)), T(0)));
        const T count = T(std::max<I>(gh * gw, 1));
        const T* xb = x + std::size_t(b) * C * H * W;
        T* yr = y + r * C * bins;
        for (std::size_t c = 0; c < C; ++c) std::fill(yr + c * bins, yr + (c + 1) * bins, T(0));
        for (std::size_t ph = 0; ph < OH; ++ph) {
            for (std::size_t pw = 0; pw < OW; ++pw) {
                const std::size_t bin = ph * OW + pw;
                for (I iy = 0; iy < gh; ++iy) {
                    const T yy = y0 + T(ph) * bin_h + (T(iy) + T(0.5)) * bin_h / T(gh);
                    for (I ix = 0; ix < gw; ++ix) {
                        const T xx = x0 + T(pw) * bin_w + (T(ix) + T(0.5)) * bin_w / T(gw);
                        const detail::RoiSample<T> q = detail::roi_sample(yy, xx, H, W);
                        const bool first = iy == 0 && ix == 0;
                        for (std::size_t c = 0; c < C; ++c) {
                            const T* xc = xb + c * H * W;
                            T& out = yr[c * bins + bin];
                            if (max) {
                                T v = q.w[0] * xc[q.pos[0]];
                                for (int t = 1; t < 4; ++t) v = std::max(v, q.w[t] * xc[q.pos[t]]);
                                out = first ? v : std::max(out, v);
                            } else {
                                out += q.w[0] * xc[q.pos[0]] + q.w[1] * xc[q.pos[1]] + q.w[2] * xc[q.pos[2]] +
                                       q.w[3] * xc[q.pos[3]];
                            }
                        }
                    }
                }
                if (!max)
                    for (std::size_t c = 0; c < C; ++c) yr[c * bins + bin] /= count;
            }
        }
    }
}

// y[N, M, OH, OW] = 2-D deformable convolution of x[N, C, H, W] with w[M, C/group, kH, kW]:
// tap t of output p reads x bilinearly (zero outside) at its place plus offset[n, og, t, (dy,
// dx), p], times mask[n, og, t, p] when given (og: the channel's offset group). Per image and
// group the sampled columns [C/group * kH * kW, OH * OW] go to scratch, then one GEMM. A
// sample is found once per offset group and read for each of its channels.
template <class T>
inline void deform_conv(const T* x, const T* w, const T* offset, const detail::same<T>* bias,
                        const detail::same<T>* mask, T* y, detail::same<T>* scratch, std::size_t N,
                        std::size_t C, std::size_t H, std::size_t W, std::size_t M, std::size_t group,
                        std::size_t offset_group, std::size_t kH, std::size_t kW, std::size_t pad_t,
                        std::size_t pad_l, std::size_t sh, std::size_t sw, std::size_t dh, std::size_t dw,
                        std::size_t OH, std::size_t OW) {
    using I = std::ptrdiff_t;
    const std::size_t Cg = C / group, Mg = M / group, taps = kH * kW, P = OH * OW, Cog = C / offset_group;
    const std::size_t HW = H * W;
    for (std::size_t n = 0; n < N; ++n) {
        for (std::size_t g = 0; g < group; ++g) {
            // the channels of this group, split by offset group
            for (std::size_t c0 = g * Cg; c0 < (g + 1) * Cg;) {
                const std::size_t og = c0 / Cog, c1 = std::min((g + 1) * Cg, (og + 1) * Cog);
                const T* off = offset + (n * offset_group + og) * taps * 2 * P;
                const T* mk = mask ? mask + (n * offset_group + og) * taps * P : nullptr;
                const T* xs = x + (n * C + c0) * HW;
                for (std::size_t t = 0; t < taps; ++t) {
                    const T* dy = off + 2 * t * P;
                    const T* dx = dy + P;
                    T* col = scratch + ((c0 - g * Cg) * taps + t) * P;
                    const T base_h = T(I((t / kW) * dh) - I(pad_t)), base_w = T(I((t % kW) * dw) - I(pad_l));
                    for (std::size_t oh = 0; oh < OH; ++oh) {
                        for (std::size_t ow = 0; ow < OW; ++ow) {
                            const std::size_t p = oh * OW + ow;
                            T py = T(oh * sh) + base_h + dy[p], px = T(ow * sw) + base_w + dx[p];
                            // beyond one pixel outside every tap reads zero; keeps the index
                            // conversion defined for far-out, infinite or NaN offsets
                            py = py >= T(-2) ? std::min(py, T(H) + 1) : T(-2);
                            px = px >= T(-2) ? std::min(px, T(W) + 1) : T(-2);
                            const T fy = std::floor(py), fx = std::floor(px);
                            const T ty = py - fy, tx = px - fx;
                            const I iy = I(fy), ix = I(fx);
                            // the 4 corners: weight 0 (and position 0) outside the image
                            const bool y0 = iy >= 0 && iy < I(H), y1 = iy + 1 >= 0 && iy + 1 < I(H);
                            const bool x0 = ix >= 0 && ix < I(W), x1 = ix + 1 >= 0 && ix + 1 < I(W);
                            const T m = mk ? mk[t * P + p] : T(1);
                            const T w00 = y0 && x0 ? m * (1 - ty) * (1 - tx) : T(0);
                            const T w01 = y0 && x1 ? m * (1 - ty) * tx : T(0);
                            const T w10 = y1 && x0 ? m * ty * (1 - tx) : T(0);
                            const T w11 = y1 && x1 ? m * ty * tx : T(0);
                            const std::size_t p00 = y0 && x0 ? std::size_t(iy * I(W) + ix) : 0;
                            const std::size_t p01 = y0 && x1 ? std::size_t(iy * I(W) + ix + 1) : 0;
                            const std::size_t p10 = y1 && x0 ? std::size_t((iy + 1) * I(W) + ix) : 0;
                            const std::size_t p11 = y1 && x1 ? std::size_t((iy + 1) * I(W) + ix + 1) : 0;
                            for (std::size_t c = 0; c < c1 - c0; ++c) {
                                const T* xc = xs + c * HW;
                                col[c * taps * P + p] = w00 * xc[p00] + w01 * xc[p01] + w10 * xc[p10] + w11 * xc[p11];
                            }
                        }
                    }
                }
                c0 = c1;
            }
            gemm<T>(false, false, Mg, P, Cg * taps, T(1), w + g * Mg * Cg * taps, Cg * taps, scratch, P, T(0),
                    y + (n * M + g * Mg) * P, P);
        }
        detail::epilogue(y + n * M * P, bias, nullptr, M, P, true, Identity{});
    }
}

}  // namespace rt
}  // namespace v0_1_0
}  // namespace sofie

#endif  // SOFIE_RT_SPATIAL_HXX_V0_1_0
