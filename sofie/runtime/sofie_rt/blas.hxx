// Row-major single-precision GEMM, backed by one BLAS chosen at compile time:
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
inline void scale_matrix(std::size_t M, std::size_t N, float beta, float* C, std::size_t ldc) {
    for (std::size_t i = 0; i < M; ++i) {
        float* SOFIE_RESTRICT c = C + i * ldc;
        if (beta == 0.0f) {
            std::fill(c, c + N, 0.0f);
        } else if (beta != 1.0f) {
            for (std::size_t j = 0; j < N; ++j) c[j] *= beta;
        }
    }
}

}  // namespace detail

// ---------------------------------------------------------------------------
// Built-in kernels (GotoBLAS-style blocking, no heap, no intrinsics).
// ---------------------------------------------------------------------------
namespace detail::gemm {

#if defined(__GNUC__) || defined(__clang__)
#define SOFIE_GEMM_VECTOR_EXT 1
// GCC/Clang vector extensions pin the accumulator tile in registers at plain
// -O2, which the auto-vectorizer alone does not (it leaves the tile in memory).
// Width follows the target flags, so -march=native gets AVX for free.
#if defined(__AVX__)
inline constexpr std::size_t VW = 8;
#else
inline constexpr std::size_t VW = 4;
#endif
using vfloat = float __attribute__((vector_size(VW * sizeof(float))));

// memcpy compiles to one unaligned vector move and sidesteps aliasing rules.
inline vfloat vload(const float* p) {
    vfloat v;
    std::memcpy(&v, p, sizeof v);
    return v;
}
inline void vstore(float* p, vfloat v) { std::memcpy(p, &v, sizeof v); }
inline float vsum(vfloat v) {
    float lanes[VW];
    std::memcpy(lanes, &v, sizeof v);
    float s = 0.0f;
    for (float x : lanes) s += x;
    return s;
}
#else
inline constexpr std::size_t VW = 4;
#endif

// MR x NR accumulators are 12 vector registers of the 16 the ISA has, leaving
// room for the B row and the A broadcast.
inline constexpr std::size_t MR = 6;
inline constexpr std::size_t NR = 2 * VW;
// Packed panels live on the stack: KC*NC + MC*KC floats <= 120 KiB, small
// enough for worker-thread stacks while an A panel (MR*KC) stays in L1 and the
// B block (KC*NC) in L2.
inline constexpr std::size_t KC = 128;
inline constexpr std::size_t NC = 128;
inline constexpr std::size_t MC = 16 * MR;

// op(A)[i0:i0+mc, k0:k0+kc] into MR-row panels, k-major, zero padded to MR.
inline void pack_a(bool trans, const float* A, std::size_t lda, std::size_t i0, std::size_t mc,
                   std::size_t k0, std::size_t kc, float* SOFIE_RESTRICT out) {
    for (std::size_t ip = 0; ip < mc; ip += MR) {
        const std::size_t mr = std::min(MR, mc - ip);
        float* SOFIE_RESTRICT panel = out + ip * kc;
        if (!trans) {
            for (std::size_t r = 0; r < MR; ++r) {
                if (r < mr) {
                    const float* a = A + (i0 + ip + r) * lda + k0;
                    for (std::size_t k = 0; k < kc; ++k) panel[k * MR + r] = a[k];
                } else {
                    for (std::size_t k = 0; k < kc; ++k) panel[k * MR + r] = 0.0f;
                }
            }
        } else {
            for (std::size_t k = 0; k < kc; ++k) {
                const float* a = A + (k0 + k) * lda + i0 + ip;
                for (std::size_t r = 0; r < MR; ++r) panel[k * MR + r] = r < mr ? a[r] : 0.0f;
            }
        }
    }
}

// op(B)[k0:k0+kc, j0:j0+nc] into NR-column panels, k-major, zero padded to NR.
inline void pack_b(bool trans, const float* B, std::size_t ldb, std::size_t k0, std::size_t kc,
                   std::size_t j0, std::size_t nc, float* SOFIE_RESTRICT out) {
    for (std::size_t jp = 0; jp < nc; jp += NR) {
        const std::size_t nr = std::min(NR, nc - jp);
        float* SOFIE_RESTRICT panel = out + jp * kc;
        if (!trans) {
            for (std::size_t k = 0; k < kc; ++k) {
                const float* b = B + (k0 + k) * ldb + j0 + jp;
                float* dst = panel + k * NR;
                for (std::size_t j = 0; j < NR; ++j) dst[j] = j < nr ? b[j] : 0.0f;
            }
        } else {
            for (std::size_t j = 0; j < NR; ++j) {
                if (j < nr) {
                    const float* b = B + (j0 + jp + j) * ldb + k0;
                    for (std::size_t k = 0; k < kc; ++k) panel[k * NR + j] = b[k];
                } else {
                    for (std::size_t k = 0; k < kc; ++k) panel[k * NR + j] = 0.0f;
                }
            }
        }
    }
}

// C[0:mr, 0:nr] (+)= alpha * Apanel * Bpanel. Always computes the full padded
// MR x NR tile so the loops have constant trip counts and vectorize; only the
// valid part is stored. `first` marks the first K block, the one that applies
// beta.
inline void micro_kernel(std::size_t kc, const float* SOFIE_RESTRICT a,
                         const float* SOFIE_RESTRICT b, float* C, std::size_t ldc,
                         std::size_t mr, std::size_t nr, float alpha, float beta, bool first) {
    float acc[MR][NR];
#if defined(SOFIE_GEMM_VECTOR_EXT)
    constexpr std::size_t NV = NR / VW;
    vfloat vacc[MR][NV] = {};
    for (std::size_t k = 0; k < kc; ++k) {
        vfloat bk[NV];
#pragma GCC unroll 4
        for (std::size_t v = 0; v < NV; ++v) bk[v] = vload(b + k * NR + v * VW);
#pragma GCC unroll 8
        for (std::size_t r = 0; r < MR; ++r) {
            const float ar = a[k * MR + r];
#pragma GCC unroll 4
            for (std::size_t v = 0; v < NV; ++v) vacc[r][v] += ar * bk[v];
        }
    }
    std::memcpy(acc, vacc, sizeof acc);
#else
    for (std::size_t r = 0; r < MR; ++r)
        for (std::size_t j = 0; j < NR; ++j) acc[r][j] = 0.0f;
    for (std::size_t k = 0; k < kc; ++k) {
        const float* SOFIE_RESTRICT bk = b + k * NR;
        for (std::size_t r = 0; r < MR; ++r) {
            const float ar = a[k * MR + r];
            for (std::size_t j = 0; j < NR; ++j) acc[r][j] += ar * bk[j];
        }
    }
#endif
    for (std::size_t r = 0; r < mr; ++r) {
        float* SOFIE_RESTRICT c = C + r * ldc;
        if (!first) {
            for (std::size_t j = 0; j < nr; ++j) c[j] += alpha * acc[r][j];
        } else if (beta == 0.0f) {
            for (std::size_t j = 0; j < nr; ++j) c[j] = alpha * acc[r][j];
        } else {
            for (std::size_t j = 0; j < nr; ++j) c[j] = alpha * acc[r][j] + beta * c[j];
        }
    }
}

// Dot products of x with 4 rows at once, so each load of x feeds 4 rows.
// Lane-parallel partial sums, because FP addition is not reassociated by the
// compiler and a single scalar accumulator would serialize the loop.
inline void dot4(std::size_t K, const float* SOFIE_RESTRICT x, const float* SOFIE_RESTRICT r0,
                 const float* SOFIE_RESTRICT r1, const float* SOFIE_RESTRICT r2,
                 const float* SOFIE_RESTRICT r3, float out[4]) {
    float t0 = 0.0f, t1 = 0.0f, t2 = 0.0f, t3 = 0.0f;
    std::size_t k = 0;
#if defined(SOFIE_GEMM_VECTOR_EXT)
    // Two accumulators per row hide the add latency behind independent chains.
    vfloat s0 = {}, s1 = {}, s2 = {}, s3 = {}, u0 = {}, u1 = {}, u2 = {}, u3 = {};
    for (; k + 2 * VW <= K; k += 2 * VW) {
        const vfloat xa = vload(x + k), xb = vload(x + k + VW);
        s0 += xa * vload(r0 + k);
        u0 += xb * vload(r0 + k + VW);
        s1 += xa * vload(r1 + k);
        u1 += xb * vload(r1 + k + VW);
        s2 += xa * vload(r2 + k);
        u2 += xb * vload(r2 + k + VW);
        s3 += xa * vload(r3 + k);
        u3 += xb * vload(r3 + k + VW);
    }
    t0 = vsum(s0 + u0);
    t1 = vsum(s1 + u1);
    t2 = vsum(s2 + u2);
    t3 = vsum(s3 + u3);
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

inline void store_gemv(float* c, float v, float alpha, float beta) {
    *c = beta == 0.0f ? alpha * v : alpha * v + beta * *c;
}

// c[0:N] = alpha * x . B^T + beta * c, B stored [N, K]: the PyTorch Linear
// layout at batch 1. Streams each weight row once.
inline void gemv_rows(std::size_t N, std::size_t K, float alpha, const float* x, const float* B,
                      std::size_t ldb, float beta, float* c) {
    std::size_t j = 0;
    float d[4];
    for (; j + 4 <= N; j += 4) {
        const float* r = B + j * ldb;
        dot4(K, x, r, r + ldb, r + 2 * ldb, r + 3 * ldb, d);
        for (std::size_t u = 0; u < 4; ++u) store_gemv(c + j + u, d[u], alpha, beta);
    }
    for (; j < N; ++j) {
        // Reuse the 4-row kernel with the same row repeated: the tail is at
        // most 3 rows, not worth a second kernel.
        const float* r = B + j * ldb;
        dot4(K, x, r, r, r, r, d);
        store_gemv(c + j, d[0], alpha, beta);
    }
}

// c[0:N] = alpha * x . B + beta * c, B stored [K, N]: a sum of scaled rows,
// which vectorizes along N without any reduction. Four rows per pass cut the
// load/store traffic on c by four; blocking N keeps the c chunk in L1.
inline void gemv_cols(std::size_t N, std::size_t K, float alpha, const float* x, const float* B,
                      std::size_t ldb, float beta, float* c) {
    scale_matrix(1, N, beta, c, N);
    constexpr std::size_t NB = 1024;
    for (std::size_t j0 = 0; j0 < N; j0 += NB) {
        const std::size_t nb = std::min(NB, N - j0);
        float* SOFIE_RESTRICT cj = c + j0;
        std::size_t k = 0;
        for (; k + 4 <= K; k += 4) {
            const float a0 = alpha * x[k], a1 = alpha * x[k + 1];
            const float a2 = alpha * x[k + 2], a3 = alpha * x[k + 3];
            const float* SOFIE_RESTRICT b0 = B + k * ldb + j0;
            const float* SOFIE_RESTRICT b1 = b0 + ldb;
            const float* SOFIE_RESTRICT b2 = b1 + ldb;
            const float* SOFIE_RESTRICT b3 = b2 + ldb;
            std::size_t j = 0;
#if defined(SOFIE_GEMM_VECTOR_EXT)
            for (; j + VW <= nb; j += VW) {
                vstore(cj + j, vload(cj + j) + a0 * vload(b0 + j) + a1 * vload(b1 + j) +
                                   a2 * vload(b2 + j) + a3 * vload(b3 + j));
            }
#endif
            for (; j < nb; ++j) cj[j] += a0 * b0[j] + a1 * b1[j] + a2 * b2[j] + a3 * b3[j];
        }
        for (; k < K; ++k) {
            const float a0 = alpha * x[k];
            const float* SOFIE_RESTRICT b0 = B + k * ldb + j0;
            for (std::size_t j = 0; j < nb; ++j) cj[j] += a0 * b0[j];
        }
    }
}

inline void sgemm(bool transA, bool transB, std::size_t M, std::size_t N, std::size_t K,
                  float alpha, const float* A, std::size_t lda, const float* B, std::size_t ldb,
                  float beta, float* C, std::size_t ldc) {
    // Batch-1 dense layers: packing would cost as much as the product itself.
    if (M == 1 && (!transA || lda == 1)) {
        if (transB) {
            gemv_rows(N, K, alpha, A, B, ldb, beta, C);
        } else {
            gemv_cols(N, K, alpha, A, B, ldb, beta, C);
        }
        return;
    }

    alignas(64) float packed_b[KC * NC];
    alignas(64) float packed_a[MC * KC];
    for (std::size_t j0 = 0; j0 < N; j0 += NC) {
        const std::size_t nc = std::min(NC, N - j0);
        for (std::size_t k0 = 0; k0 < K; k0 += KC) {
            const std::size_t kc = std::min(KC, K - k0);
            pack_b(transB, B, ldb, k0, kc, j0, nc, packed_b);
            for (std::size_t i0 = 0; i0 < M; i0 += MC) {
                const std::size_t mc = std::min(MC, M - i0);
                pack_a(transA, A, lda, i0, mc, k0, kc, packed_a);
                for (std::size_t jp = 0; jp < nc; jp += NR) {
                    for (std::size_t ip = 0; ip < mc; ip += MR) {
                        micro_kernel(kc, packed_a + ip * kc, packed_b + jp * kc,
                                     C + (i0 + ip) * ldc + j0 + jp, ldc, std::min(MR, mc - ip),
                                     std::min(NR, nc - jp), alpha, beta, k0 == 0);
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

// Row-major C[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * C, where
// op(X) = X^T if transX. lda/ldb/ldc are the row strides of A, B, C as stored.
inline void sgemm(bool transA, bool transB, std::size_t M, std::size_t N, std::size_t K,
                  float alpha, const float* A, std::size_t lda, const float* B, std::size_t ldb,
                  float beta, float* C, std::size_t ldc) {
    if (M == 0 || N == 0) return;
    // Handled here so no backend sees K == 0 (CBLAS rejects lda < 1 then).
    if (K == 0 || alpha == 0.0f) {
        detail::scale_matrix(M, N, beta, C, ldc);
        return;
    }
    // One row (a dense layer at batch 1) is a GEMV that streams the weights once; the
    // built-in kernel beats the BLAS libraries' GEMM setup there by 3-4x.
    if (M == 1 && (!transA || lda == 1)) {
        detail::gemm::sgemm(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
#if defined(SOFIE_BLAS_OPENBLAS) || defined(SOFIE_BLAS_CBLAS)
#if defined(SOFIE_BLAS_OPENBLAS)
#define SOFIE_CBLAS_SGEMM scipy_cblas_sgemm
#else
#define SOFIE_CBLAS_SGEMM cblas_sgemm
#endif
    SOFIE_CBLAS_SGEMM(CblasRowMajor, transA ? CblasTrans : CblasNoTrans,
                      transB ? CblasTrans : CblasNoTrans, static_cast<int>(M),
                      static_cast<int>(N), static_cast<int>(K), alpha, A, static_cast<int>(lda),
                      B, static_cast<int>(ldb), beta, C, static_cast<int>(ldc));
#undef SOFIE_CBLAS_SGEMM
#elif defined(SOFIE_BLAS_EIGEN)
    using Matrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
    using Stride = Eigen::OuterStride<>;
    using ConstMap = Eigen::Map<const Matrix, Eigen::Unaligned, Stride>;
    using Index = Eigen::Index;
    const auto idx = [](std::size_t v) { return static_cast<Index>(v); };
    const ConstMap a(A, idx(transA ? K : M), idx(transA ? M : K), Stride(idx(lda)));
    const ConstMap b(B, idx(transB ? N : K), idx(transB ? K : N), Stride(idx(ldb)));
    Eigen::Map<Matrix, Eigen::Unaligned, Stride> c(C, idx(M), idx(N), Stride(idx(ldc)));
    const auto run = [&](const auto& op_a, const auto& op_b) {
        if (beta == 0.0f) {
            c.noalias() = alpha * op_a * op_b;
        } else {
            if (beta != 1.0f) c *= beta;
            c.noalias() += alpha * op_a * op_b;
        }
    };
    if (!transA && !transB) run(a, b);
    if (!transA && transB) run(a, b.transpose());
    if (transA && !transB) run(a.transpose(), b);
    if (transA && transB) run(a.transpose(), b.transpose());
#else
    detail::gemm::sgemm(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
#endif
}

}  // namespace rt
}  // namespace v0_1_0
}  // namespace sofie

#endif  // SOFIE_RT_BLAS_HXX_V0_1_0
