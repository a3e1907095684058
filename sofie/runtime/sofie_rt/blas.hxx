// Row-major GEMM in float (sgemm) and double (dgemm), backed by one BLAS chosen at
// compile time:
//
//   SOFIE_BLAS_OPENBLAS  scipy-openblas32 wheel (symbols carry a scipy_ prefix)
//   SOFIE_BLAS_CBLAS     system <cblas.h>
//   SOFIE_BLAS_EIGEN     Eigen 3
//   SOFIE_BLAS_NONE      built-in kernels below (default)
//
// Every backend sees the same contract, enforced here rather than trusted to
// each library: C = alpha*op(A)*op(B) + beta*C, and with beta == 0 C is only
// written, never read, so it may start out as NaN garbage.
#ifndef SOFIE_RT_BLAS_HXX_V0_1_0
#define SOFIE_RT_BLAS_HXX_V0_1_0

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <type_traits>

#include "thread_pool.hxx"

#if (defined(SOFIE_BLAS_OPENBLAS) + defined(SOFIE_BLAS_CBLAS) + defined(SOFIE_BLAS_EIGEN) + \
     defined(SOFIE_BLAS_NONE)) > 1
#error "define at most one of SOFIE_BLAS_OPENBLAS, SOFIE_BLAS_CBLAS, SOFIE_BLAS_EIGEN, SOFIE_BLAS_NONE"
#endif

#if defined(SOFIE_BLAS_OPENBLAS) || defined(SOFIE_BLAS_CBLAS)
#include <cblas.h>
#elif defined(SOFIE_BLAS_EIGEN)
#include <Eigen/Core>
#endif

#if defined(__GNUC__) || defined(__clang__)
#define SOFIE_RESTRICT __restrict__
#elif defined(_MSC_VER)
#define SOFIE_RESTRICT __restrict
#else
#define SOFIE_RESTRICT
#endif

namespace sofie {
inline namespace v0_1_0 {
namespace rt {

namespace detail {

// Scales C by beta without reading it when beta == 0 (0 * NaN is NaN).
template <class T>
inline void scale_matrix(std::size_t M, std::size_t N, T beta, T* C, std::size_t ldc) {
    for (std::size_t i = 0; i < M; ++i) {
        T* SOFIE_RESTRICT c = C + i * ldc;
        if (beta == T(0)) {
            std::fill(c, c + N, T(0));
        } else if (beta != T(1)) {
            for (std::size_t j = 0; j < N; ++j) c[j] *= beta;
        }
    }
}

}  // namespace detail

// ---------------------------------------------------------------------------
// Built-in kernels (GotoBLAS-style blocking, no heap, no intrinsics), one
// template for float and double.
// ---------------------------------------------------------------------------
namespace detail::gemm {

#if defined(__GNUC__) || defined(__clang__)
#define SOFIE_GEMM_VECTOR_EXT 1
// GCC/Clang vector extensions pin the accumulator tile in registers at plain
// -O2, which the auto-vectorizer alone does not (it leaves the tile in memory).
// Width follows the target flags, so -march=native gets AVX for free.
#if defined(__AVX__)
inline constexpr std::size_t kVectorBytes = 32;
#else
inline constexpr std::size_t kVectorBytes = 16;
#endif
template <class T>
struct Vec;
template <>
struct Vec<float> {
    using type = float __attribute__((vector_size(kVectorBytes)));
};
template <>
struct Vec<double> {
    using type = double __attribute__((vector_size(kVectorBytes)));
};
template <class T>
using vec = typename Vec<T>::type;
template <class T>
inline constexpr std::size_t VW = kVectorBytes / sizeof(T);

// memcpy compiles to one unaligned vector move and sidesteps aliasing rules.
template <class T>
inline vec<T> vload(const T* p) {
    vec<T> v;
    std::memcpy(&v, p, sizeof v);
    return v;
}
template <class T>
inline void vstore(T* p, vec<T> v) { std::memcpy(p, &v, sizeof v); }
template <class T>
inline T vsum(vec<T> v) {
    T lanes[VW<T>];
    std::memcpy(lanes, &v, sizeof v);
    T s = T(0);
    for (T x : lanes) s += x;
    return s;
}
#else
template <class T>
inline constexpr std::size_t VW = 16 / sizeof(T);
#endif

// MR x NR accumulators are 12 vector registers of the 16 the ISA has, leaving
// room for the B row and the A broadcast.
inline constexpr std::size_t MR = 6;
template <class T>
inline constexpr std::size_t NR = 2 * VW<T>;
// Packed panels live on the stack: KC*NC + MC*KC elements <= 120 KiB (KC is
// halved for double), small enough for worker-thread stacks while an A panel
// (MR*KC) stays in L1 and the B block (KC*NC) in L2.
template <class T>
inline constexpr std::size_t KC = 512 / sizeof(T);
inline constexpr std::size_t NC = 128;
inline constexpr std::size_t MC = 16 * MR;

// op(A)[i0:i0+mc, k0:k0+kc] into MR-row panels, k-major, zero padded to MR.
template <class T>
inline void pack_a(bool trans, const T* A, std::size_t lda, std::size_t i0, std::size_t mc,
                   std::size_t k0, std::size_t kc, T* SOFIE_RESTRICT out) {
    for (std::size_t ip = 0; ip < mc; ip += MR) {
        const std::size_t mr = std::min(MR, mc - ip);
        T* SOFIE_RESTRICT panel = out + ip * kc;
        if (!trans) {
            for (std::size_t r = 0; r < MR; ++r) {
                if (r < mr) {
                    const T* a = A + (i0 + ip + r) * lda + k0;
                    for (std::size_t k = 0; k < kc; ++k) panel[k * MR + r] = a[k];
                } else {
                    for (std::size_t k = 0; k < kc; ++k) panel[k * MR + r] = T(0);
                }
            }
        } else {
            for (std::size_t k = 0; k < kc; ++k) {
                const T* a = A + (k0 + k) * lda + i0 + ip;
                for (std::size_t r = 0; r < MR; ++r) panel[k * MR + r] = r < mr ? a[r] : T(0);
            }
        }
    }
}

// op(B)[k0:k0+kc, j0:j0+nc] into NR-column panels, k-major, zero padded to NR.
template <class T>
inline void pack_b(bool trans, const T* B, std::size_t ldb, std::size_t k0, std::size_t kc,
                   std::size_t j0, std::size_t nc, T* SOFIE_RESTRICT out) {
    for (std::size_t jp = 0; jp < nc; jp += NR<T>) {
        const std::size_t nr = std::min(NR<T>, nc - jp);
        T* SOFIE_RESTRICT panel = out + jp * kc;
        if (!trans) {
            for (std::size_t k = 0; k < kc; ++k) {
                const T* b = B + (k0 + k) * ldb + j0 + jp;
                T* dst = panel + k * NR<T>;
                for (std::size_t j = 0; j < NR<T>; ++j) dst[j] = j < nr ? b[j] : T(0);
            }
        } else {
            for (std::size_t j = 0; j < NR<T>; ++j) {
                if (j < nr) {
                    const T* b = B + (j0 + jp + j) * ldb + k0;
                    for (std::size_t k = 0; k < kc; ++k) panel[k * NR<T> + j] = b[k];
                } else {
                    for (std::size_t k = 0; k < kc; ++k) panel[k * NR<T> + j] = T(0);
                }
            }
        }
    }
}

// C[0:mr, 0:nr] (+)= alpha * Apanel * Bpanel. Always computes the full padded
// MR x NR tile so the loops have constant trip counts and vectorize; only the
// valid part is stored. `first` marks the first K block, the one that applies
// beta.
template <class T>
inline void micro_kernel(std::size_t kc, const T* SOFIE_RESTRICT a,
                         const T* SOFIE_RESTRICT b, T* C, std::size_t ldc,
                         std::size_t mr, std::size_t nr, T alpha, T beta, bool first) {
    T acc[MR][NR<T>];
#if defined(SOFIE_GEMM_VECTOR_EXT)
    constexpr std::size_t NV = NR<T> / VW<T>;
    vec<T> vacc[MR][NV] = {};
    for (std::size_t k = 0; k < kc; ++k) {
        vec<T> bk[NV];
#pragma GCC unroll 4
        for (std::size_t v = 0; v < NV; ++v) bk[v] = vload(b + k * NR<T> + v * VW<T>);
#pragma GCC unroll 8
        for (std::size_t r = 0; r < MR; ++r) {
            const T ar = a[k * MR + r];
#pragma GCC unroll 4
            for (std::size_t v = 0; v < NV; ++v) vacc[r][v] += ar * bk[v];
        }
    }
    std::memcpy(acc, vacc, sizeof acc);
#else
    for (std::size_t r = 0; r < MR; ++r)
        for (std::size_t j = 0; j < NR<T>; ++j) acc[r][j] = T(0);
    for (std::size_t k = 0; k < kc; ++k) {
        const T* SOFIE_RESTRICT bk = b + k * NR<T>;
        for (std::size_t r = 0; r < MR; ++r) {
            const T ar = a[k * MR + r];
            for (std::size_t j = 0; j < NR<T>; ++j) acc[r][j] += ar * bk[j];
        }
    }
#endif
    for (std::size_t r = 0; r < mr; ++r) {
        T* SOFIE_RESTRICT c = C + r * ldc;
        if (!first) {
            for (std::size_t j = 0; j < nr; ++j) c[j] += alpha * acc[r][j];
        } else if (beta == T(0)) {
            for (std::size_t j = 0; j < nr; ++j) c[j] = alpha * acc[r][j];
        } else {
            for (std::size_t j = 0; j < nr; ++j) c[j] = alpha * acc[r][j] + beta * c[j];
        }
    }
}

// Dot products of x with 4 rows at once, so each load of x feeds 4 rows.
// Lane-parallel partial sums, because FP addition is not reassociated by the
// compiler and a single scalar accumulator would serialize the loop.
template <class T>
inline void dot4(std::size_t K, const T* SOFIE_RESTRICT x, const T* SOFIE_RESTRICT r0,
                 const T* SOFIE_RESTRICT r1, const T* SOFIE_RESTRICT r2,
                 const T* SOFIE_RESTRICT r3, T out[4]) {
    T t0 = T(0), t1 = T(0), t2 = T(0), t3 = T(0);
    std::size_t k = 0;
#if defined(SOFIE_GEMM_VECTOR_EXT)
    // Two accumulators per row hide the add latency behind independent chains.
    vec<T> s0 = {}, s1 = {}, s2 = {}, s3 = {}, u0 = {}, u1 = {}, u2 = {}, u3 = {};
    for (; k + 2 * VW<T> <= K; k += 2 * VW<T>) {
        const vec<T> xa = vload(x + k), xb = vload(x + k + VW<T>);
        s0 += xa * vload(r0 + k);
        u0 += xb * vload(r0 + k + VW<T>);
        s1 += xa * vload(r1 + k);
        u1 += xb * vload(r1 + k + VW<T>);
        s2 += xa * vload(r2 + k);
        u2 += xb * vload(r2 + k + VW<T>);
        s3 += xa * vload(r3 + k);
        u3 += xb * vload(r3 + k + VW<T>);
    }
    t0 = vsum<T>(s0 + u0);
    t1 = vsum<T>(s1 + u1);
    t2 = vsum<T>(s2 + u2);
    t3 = vsum<T>(s3 + u3);
#endif
    for (; k < K; ++k) {
        t0 += x[k] * r0[k];
        t1 += x[k] * r1[k];
        t2 += x[k] * r2[k];
        t3 += x[k] * r3[k];
    }
    out[0] = t0;
    out[1] = t1;
    out[2] = t2;
    out[3] = t3;
}

template <class T>
inline void store_gemv(T* c, T v, T alpha, T beta) {
    *c = beta == T(0) ? alpha * v : alpha * v + beta * *c;
}

// c[0:N] = alpha * x . B^T + beta * c, B stored [N, K]: the PyTorch Linear
// layout at batch 1. Streams each weight row once.
template <class T>
inline void gemv_rows(std::size_t N, std::size_t K, T alpha, const T* x, const T* B,
                      std::size_t ldb, T beta, T* c) {
    std::size_t j = 0;
    T d[4];
    for (; j + 4 <= N; j += 4) {
        const T* r = B + j * ldb;
        dot4(K, x, r, r + ldb, r + 2 * ldb, r + 3 * ldb, d);
        for (std::size_t u = 0; u < 4; ++u) store_gemv(c + j + u, d[u], alpha, beta);
    }
    for (; j < N; ++j) {
        // Reuse the 4-row kernel with the same row repeated: the tail is at
        // most 3 rows, not worth a second kernel.
        const T* r = B + j * ldb;
        dot4(K, x, r, r, r, r, d);
        store_gemv(c + j, d[0], alpha, beta);
    }
}

// c[0:N] = alpha * x . B + beta * c, B stored [K, N]: a sum of scaled rows,
// which vectorizes along N without any reduction. Four rows per pass cut the
// load/store traffic on c by four; blocking N keeps the c chunk in L1.
template <class T>
inline void gemv_cols(std::size_t N, std::size_t K, T alpha, const T* x, const T* B,
                      std::size_t ldb, T beta, T* c) {
    scale_matrix(1, N, beta, c, N);
    constexpr std::size_t NB = 1024;
    for (std::size_t j0 = 0; j0 < N; j0 += NB) {
        const std::size_t nb = std::min(NB, N - j0);
        T* SOFIE_RESTRICT cj = c + j0;
        std::size_t k = 0;
        for (; k + 4 <= K; k += 4) {
            const T a0 = alpha * x[k], a1 = alpha * x[k + 1];
            const T a2 = alpha * x[k + 2], a3 = alpha * x[k + 3];
            const T* SOFIE_RESTRICT b0 = B + k * ldb + j0;
            const T* SOFIE_RESTRICT b1 = b0 + ldb;
            const T* SOFIE_RESTRICT b2 = b1 + ldb;
            const T* SOFIE_RESTRICT b3 = b2 + ldb;
            std::size_t j = 0;
#if defined(SOFIE_GEMM_VECTOR_EXT)
            for (; j + VW<T> <= nb; j += VW<T>) {
                vstore(cj + j, vload(cj + j) + a0 * vload(b0 + j) + a1 * vload(b1 + j) +
                                   a2 * vload(b2 + j) + a3 * vload(b3 + j));
            }
#endif
            for (; j < nb; ++j) cj[j] += a0 * b0[j] + a1 * b1[j] + a2 * b2[j] + a3 * b3[j];
        }
        for (; k < K; ++k) {
            const T a0 = alpha * x[k];
            const T* SOFIE_RESTRICT b0 = B + k * ldb + j0;
            for (std::size_t j = 0; j < nb; ++j) cj[j] += a0 * b0[j];
        }
    }
}

template <class T>
inline void gemm(bool transA, bool transB, std::size_t M, std::size_t N, std::size_t K,
                 T alpha, const T* A, std::size_t lda, const T* B, std::size_t ldb, T beta, T* C,
                 std::size_t ldc) {
    // Batch-1 dense layers: packing would cost as much as the product itself.
    if (M == 1 && (!transA || lda == 1)) {
        if (transB) {
            gemv_rows(N, K, alpha, A, B, ldb, beta, C);
        } else {
            gemv_cols(N, K, alpha, A, B, ldb, beta, C);
        }
        return;
    }

    alignas(64) T packed_b[KC<T> * NC];
    alignas(64) T packed_a[MC * KC<T>];
    for (std::size_t j0 = 0; j0 < N; j0 += NC) {
        const std::size_t nc = std::min(NC, N - j0);
        for (std::size_t k0 = 0; k0 < K; k0 += KC<T>) {
            const std::size_t kc = std::min(KC<T>, K - k0);
            pack_b(transB, B, ldb, k0, kc, j0, nc, packed_b);
            for (std::size_t i0 = 0; i0 < M; i0 += MC) {
                const std::size_t mc = std::min(MC, M - i0);
                pack_a(transA, A, lda, i0, mc, k0, kc, packed_a);
                for (std::size_t jp = 0; jp < nc; jp += NR<T>) {
                    for (std::size_t ip = 0; ip < mc; ip += MR) {
                        micro_kernel(kc, packed_a + ip * kc, packed_b + jp * kc,
                                     C + (i0 + ip) * ldc + j0 + jp, ldc, std::min(MR, mc - ip),
                                     std::min(NR<T>, nc - jp), alpha, beta, k0 == 0);
                    }
                }
            }
        }
    }
}

}  // namespace detail::gemm

// ---------------------------------------------------------------------------
// Public API.
// ---------------------------------------------------------------------------

inline const char* blas_name() {
#if defined(SOFIE_BLAS_OPENBLAS)
    return "openblas (scipy-openblas32)";
#elif defined(SOFIE_BLAS_CBLAS)
    return "cblas";
#elif defined(SOFIE_BLAS_EIGEN)
    return "eigen";
#else
    return "builtin";
#endif
}

namespace detail {

#if defined(SOFIE_BLAS_OPENBLAS) || defined(SOFIE_BLAS_CBLAS)
#if defined(SOFIE_BLAS_OPENBLAS)
#define SOFIE_CBLAS(name) scipy_cblas_##name
#else
#define SOFIE_CBLAS(name) cblas_##name
#endif
inline void cblas_gemm(bool transA, bool transB, int M, int N, int K, float alpha, const float* A,
                       int lda, const float* B, int ldb, float beta, float* C, int ldc) {
    SOFIE_CBLAS(sgemm)(CblasRowMajor, transA ? CblasTrans : CblasNoTrans,
                       transB ? CblasTrans : CblasNoTrans, M, N, K, alpha, A, lda, B, ldb, beta, C,
                       ldc);
}
inline void cblas_gemm(bool transA, bool transB, int M, int N, int K, double alpha,
                       const double* A, int lda, const double* B, int ldb, double beta, double* C,
                       int ldc) {
    SOFIE_CBLAS(dgemm)(CblasRowMajor, transA ? CblasTrans : CblasNoTrans,
                       transB ? CblasTrans : CblasNoTrans, M, N, K, alpha, A, lda, B, ldb, beta, C,
                       ldc);
}
#undef SOFIE_CBLAS
#endif

}  // namespace detail

// Row-major C[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * C, where
// op(X) = X^T if transX. lda/ldb/ldc are the row strides of A, B, C as stored.
// T is float or double: sgemm and dgemm below.
template <class T>
inline void gemm(bool transA, bool transB, std::size_t M, std::size_t N, std::size_t K, T alpha,
                 const T* A, std::size_t lda, const T* B, std::size_t ldb, T beta, T* C,
                 std::size_t ldc) {
    static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                  "sofie::rt::gemm: float or double");
    if (M == 0 || N == 0) return;
    // Handled here so no backend sees K == 0 (CBLAS rejects lda < 1 then).
    if (K == 0 || alpha == T(0)) {
        detail::scale_matrix(M, N, beta, C, ldc);
        return;
    }
    // One row (a dense layer at batch 1) is a GEMV that streams the weights once; the
    // built-in kernel beats the BLAS libraries' GEMM setup there by 3-4x.
    if (M == 1 && (!transA || lda == 1)) {
        detail::gemm::gemm(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    // With intra-op threads (thread_pool.hxx), one block of C per thread, each this same call.
    if (detail::split_gemm(M, N, K, [&](std::size_t i0, std::size_t i1, std::size_t j0, std::size_t j1) {
            gemm<T>(transA, transB, i1 - i0, j1 - j0, K, alpha, A + (transA ? i0 : i0 * lda), lda,
                    B + (transB ? j0 * ldb : j0), ldb, beta, C + i0 * ldc + j0, ldc);
        })) {
        return;
    }
#if defined(SOFIE_BLAS_OPENBLAS) || defined(SOFIE_BLAS_CBLAS)
    detail::cblas_gemm(transA, transB, static_cast<int>(M), static_cast<int>(N),
                       static_cast<int>(K), alpha, A, static_cast<int>(lda), B,
                       static_cast<int>(ldb), beta, C, static_cast<int>(ldc));
#elif defined(SOFIE_BLAS_EIGEN)
    using Matrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
    using Stride = Eigen::OuterStride<>;
    using ConstMap = Eigen::Map<const Matrix, Eigen::Unaligned, Stride>;
    using Index = Eigen::Index;
    const auto idx = [](std::size_t v) { return static_cast<Index>(v); };
    const ConstMap a(A, idx(transA ? K : M), idx(transA ? M : K), Stride(idx(lda)));
    const ConstMap b(B, idx(transB ? N : K), idx(transB ? K : N), Stride(idx(ldb)));
    Eigen::Map<Matrix, Eigen::Unaligned, Stride> c(C, idx(M), idx(N), Stride(idx(ldc)));
    const auto run = [&](const auto& op_a, const auto& op_b) {
        if (beta == T(0)) {
            c.noalias() = alpha * op_a * op_b;
        } else {
            if (beta != T(1)) c *= beta;
            c.noalias() += alpha * op_a * op_b;
        }
    };
    if (!transA && !transB) run(a, b);
    if (!transA && transB) run(a, b.transpose());
    if (transA && !transB) run(a.transpose(), b);
    if (transA && transB) run(a.transpose(), b.transpose());
#else
    detail::gemm::gemm(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
#endif
}

inline void sgemm(bool transA, bool transB, std::size_t M, std::size_t N, std::size_t K,
                  float alpha, const float* A, std::size_t lda, const float* B, std::size_t ldb,
                  float beta, float* C, std::size_t ldc) {
    gemm<float>(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

inline void dgemm(bool transA, bool transB, std::size_t M, std::size_t N, std::size_t K,
                  double alpha, const double* A, std::size_t lda, const double* B,
                  std::size_t ldb, double beta, double* C, std::size_t ldc) {
    gemm<double>(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

}  // namespace rt
}  // namespace v0_1_0
}  // namespace sofie

#endif  // SOFIE_RT_BLAS_HXX_V0_1_0
