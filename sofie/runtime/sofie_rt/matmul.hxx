// Batched matrix products for MatMul with batch dims on both operands (attention's
// Q K^T and A V): one GEMM through the BLAS shim per batch element, the operands
// addressed by per-axis batch strides (0 on a broadcast axis), so nothing is copied.
// Det: determinants of square matrices.
#ifndef SOFIE_RT_MATMUL_HXX_V0_1_0
#define SOFIE_RT_MATMUL_HXX_V0_1_0

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
        gemm<T>(false, false, M, N, K, T(1), A + a_off, K, B + b_off, N, T(0), Y + b * M * N, N);
    }
    bias_act(Y, nullptr, total * M, N, false, f);
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
