// Batched matrix products for MatMul with batch dims on both operands (attention's
// Q K^T and A V): one GEMM through the BLAS shim per batch element, the operands
// addressed by per-axis batch strides (0 on a broadcast axis), so nothing is copied.
// Det: determinants of square matrices; DFT: a direct transform along one axis.
#ifndef SOFIE_RT_MATMUL_HXX_V0_1_0
#define SOFIE_RT_MATMUL_HXX_V0_1_0

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <utility>

#include "blas.hxx"
#include "kernels.hxx"

namespace sofie {
inline namespace v0_1_0 {
namespace rt {

// Y[b] = f(A[b] B[b]) for every index b of the `rank` batch axes `batch`;
// A[b] is [M, K] at A + sum(b_i a_stride_i), B[b] is [K, N] likewise, Y is dense.
template <class T, class F>
inline void batched_gemm(const T* A, const T* B, T* Y, std::size_t rank, const std::size_t* batch,
                         const std::size_t* a_stride, const std::size_t* b_stride, std::size_t M,
                         std::size_t N, std::size_t K, F f) {
    std::size_t total = 1;
    for (std::size_t i = 0; i < rank; ++i) total *= batch[i];
    for (std::size_t b = 0; b < total; ++b) {
        std::size_t a_off = 0, b_off = 0, rest = b;
        for (std::size_t i = rank; i-- > 0;) {
            const std::size_t k = rest % batch[i];
            rest /= batch[i];
            a_off += k * a_stride[i];
            b_off += k * b_stride[i];
        }
        gemm_fused<T>(false, false, M, N, K, T(1), A + a_off, K, B + b_off, N, T(0), Y + b * M * N, N,
                      nullptr, false, nullptr, f);
    }
}

// DFT: x is [outer, n_in, inner, c] (c = 1: real, 2: complex), y [outer, n_out, inner, 2];
// y_k = scale sum_{j < min(n_in, n)} x_j e^(-+2 pi i j k / n) (zero padding past n_in), in
// double, over a table of the n twiddle factors in `w` (2 n doubles). inverse: e^+, 1/n.
template <class T>
inline void dft(const T* x, T* y, std::size_t outer, std::size_t n_in, std::size_t inner, std::size_t c,
                std::size_t n, std::size_t n_out, bool inverse, double* w) {
    const double pi2 = 6.283185307179586476925286766559;
    for (std::size_t p = 0; p < n; ++p) {
        const double a = pi2 * double(p) / double(n);
        w[2 * p] = std::cos(a);
        w[2 * p + 1] = inverse ? std::sin(a) : -std::sin(a);
    }
    const double scale = inverse ? 1.0 / double(n) : 1.0;
    const std::size_t m = std::min(n_in, n);
    for (std::size_t o = 0; o < outer; ++o) {
        for (std::size_t k = 0; k < n_out; ++k) {
            for (std::size_t i = 0; i < inner; ++i) {
                double re = 0.0, im = 0.0;
                for (std::size_t j = 0, p = 0; j < m; ++j, p = (p + k) % n) {  // p = j k mod n
                    const T* xj = x + ((o * n_in + j) * inner + i) * c;
                    const double xr = double(xj[0]), xi = c == 2 ? double(xj[1]) : 0.0;
                    re += xr * w[2 * p] - xi * w[2 * p + 1];
                    im += xr * w[2 * p + 1] + xi * w[2 * p];
                }
                T* yk = y + ((o * n_out + k) * inner + i) * 2;
                yk[0] = T(re * scale);
                yk[1] = T(im * scale);
            }
        }
    }
}

// The real inverse (numpy's irfft) of one-sided spectra x [outer, n_in, inner, c] (the first
// n/2 + 1 of a real signal's n DFT outputs; zero past n_in): y [outer, n, inner, 1],
// y_j = (X_0 + sum_{0<k<n/2} 2 Re(X_k e^(2 pi i j k / n)) + X_{n/2} (-1)^j) / n, the
// imaginary parts of X_0 and X_{n/2} (n even) ignored. n_out == n; w as for dft.
template <class T>
inline void irfft(const T* x, T* y, std::size_t outer, std::size_t n_in, std::size_t inner, std::size_t c,
                  std::size_t n, std::size_t n_out, double* w) {
    const double pi2 = 6.283185307179586476925286766559;
    for (std::size_t p = 0; p < n; ++p) {
        const double a = pi2 * double(p) / double(n);
        w[2 * p] = std::cos(a);
        w[2 * p + 1] = std::sin(a);
    }
    const std::size_t half = n / 2, m = std::min(n_in, half + 1);
    for (std::size_t o = 0; o < outer; ++o) {
        for (std::size_t j = 0; j < n_out; ++j) {
            for (std::size_t i = 0; i < inner; ++i) {
                auto at = [&](std::size_t k, std::size_t part) {
                    return part < c ? double(x[((o * n_in + k) * inner + i) * c + part]) : 0.0;
                };
                double s = m > 0 ? at(0, 0) : 0.0;
                for (std::size_t k = 1, p = j % n; k < m; ++k, p = (p + j) % n) {  // p = j k mod n
                    const double term = at(k, 0) * w[2 * p] - at(k, 1) * w[2 * p + 1];
                    s += (2 * k == n) ? term : 2.0 * term;  // X_{n/2}: its cosine alone, (-1)^j
                }
                y[(o * n_out + j) * inner + i] = T(s / double(n));
            }
        }
    }
}

// Det: y[b] = det(x[b]) for `batch` n x n matrices, by LU with partial pivoting in double
// (each row swap flips the sign; a zero pivot column gives 0); `a` holds n * n doubles.
template <class T>
inline void det(const T* x, T* y, std::size_t batch, std::size_t n, double* a) {
    for (std::size_t b = 0; b < batch; ++b) {
        const T* xb = x + b * n * n;
        for (std::size_t i = 0; i < n * n; ++i) a[i] = double(xb[i]);
        double d = 1.0;
        for (std::size_t k = 0; k < n; ++k) {
            std::size_t p = k;
            for (std::size_t i = k + 1; i < n; ++i) {
                if (std::fabs(a[i * n + k]) > std::fabs(a[p * n + k])) p = i;
            }
            if (a[p * n + k] == 0.0) {
                d = 0.0;
                break;
            }
            if (p != k) {
                for (std::size_t j = 0; j < n; ++j) std::swap(a[p * n + j], a[k * n + j]);
                d = -d;
            }
            const double pivot = a[k * n + k];
            d *= pivot;
            for (std::size_t i = k + 1; i < n; ++i) {
                const double f = a[i * n + k] / pivot;
                for (std::size_t j = k + 1; j < n; ++j) a[i * n + j] -= f * a[k * n + j];
            }
        }
        y[b] = T(d);
    }
}

}  // namespace rt
}  // namespace v0_1_0
}  // namespace sofie

#endif  // SOFIE_RT_MATMUL_HXX_V0_1_0
