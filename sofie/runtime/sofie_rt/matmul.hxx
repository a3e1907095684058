// Batched matrix products for MatMul with batch dims on both operands (attention's
// Q K^T and A V): one GEMM through the BLAS shim per batch element, the operands
// addressed by per-axis batch strides (0 on a broadcast axis), so nothing is copied.
#ifndef SOFIE_RT_MATMUL_HXX_V0_1_0
#define SOFIE_RT_MATMUL_HXX_V0_1_0

#include <cstddef>

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

}  // namespace rt
}  // namespace v0_1_0
}  // namespace sofie

#endif  // SOFIE_RT_MATMUL_HXX_V0_1_0
