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

#include "gemm_kernels.hxx"
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
// Built-in GEMM (GotoBLAS/BLIS-style blocking, no heap): micro-kernels per ISA in
// gemm_kernels.hxx, one driver for float and double.
// ---------------------------------------------------------------------------
namespace detail::gemm {

// Blocking. B is packed KC x NC at a time (panels of PW columns) into a stack buffer of KC * NC *
// sizeof(T) = 192 KiB (and 3 KiB for the skew of buffer_panel_stride): it stays L2-resident (within
// half of a 512 KiB L2, a fifth of a 1 MiB one, leaving room for the A rows and C tiles streaming
// past) while every 6-row slice of A runs over it. KC = 256 floats keeps the 6 x KC slice of A a
// tile reads (6 KiB) in L1 across the tiles of its row and makes the C tile's extra load/store per
// K block negligible (1 per 256 FMAs). NC = 192 is a multiple of the AVX-512 tile (64) and of the
// panel width. A is not packed (see gemm_kernels.hxx), so the whole stack use is the B buffer,
// bounded for worker-thread stacks; a B packed ahead of time needs none, a float B read in place
// (run_block_in_place) the same buffer, filled by the first row tiles.
template <class T>
inline constexpr std::size_t KC = 1024 / sizeof(T);
inline constexpr std::size_t kSplitKMinK = 128;
inline constexpr std::size_t NC = 192;
static_assert(NC % 64 == 0, "NC: whole AVX-512 tiles and packed panels");

// The panel stride of the B buffer for K blocks of kc: one line more than kc rows where kc
// rows are a multiple of 4 KiB (kc of 64, 128, 192, 256 floats: convs of 64, 128, 256, 512...
// channels), so the AVX-512 kernel's 4 panel loads per k do not all fall into one L1 set.
// Alone on the Intel host, time against panels 4 KiB apart: 256x3136x64 (ResNet-50's 56x56
// expansions) 0.91-0.95, 64x3136x64 0.95, 128x784x512 0.97; other shapes unchanged.
template <class T>
inline std::size_t buffer_panel_stride(std::size_t kc) {
    return kc * PW<T> + (kc * PW<T> * sizeof(T) % 4096 == 0 ? PW<T> : 0);
}
// The buffer's room for that extra line per panel: a skewed block has kc >= 4096 / 64 = 64,
// so at most KC * NC / 64 columns.
template <class T>
inline constexpr std::size_t kSkewSlack = KC<T> * NC / 64;

// A hint to fetch p's cache line (a no-op where the compiler has no builtin for it).
inline void prefetch(const void* p) {
#if defined(__GNUC__) || defined(__clang__)
    __builtin_prefetch(p);
#else
    (void)p;
#endif
}

// op(B)[k0:k0+kc, j0:j0+nc] into panels of PW<T> columns, k-major, zero padded to PW<T>:
// column j of panel p at k is out[p * ps + k * PW + j], panel stride ps (kc * PW when dense).
template <class T>
inline void pack_b(bool trans, const T* B, std::size_t ldb, std::size_t k0, std::size_t kc,
                   std::size_t j0, std::size_t nc, T* SOFIE_RESTRICT out, std::size_t ps) {
    constexpr std::size_t P = PW<T>;
    if (!trans) {
        // Row by row: each row of the block is one contiguous run, which streams; panel by
        // panel, every row of B is a cache miss of its own (measured on ResNet-50's 1x1 convs
        // at 56x56, out of cache: 0.83-0.97 of the time panel by panel)
        const std::size_t full = nc / P * P;
        for (std::size_t k = 0; k < kc; ++k) {
            const T* b = B + (k0 + k) * ldb + j0;
            // rows 8 ahead are fetched now: a band of B is usually out of L2 (the layer before
            // wrote it), and 1x1 convs on 56x56 images spent 6% less time with it
            if (k + 8 < kc) {
                for (std::size_t jp = 0; jp < nc; jp += P) prefetch(b + 8 * ldb + jp);
            }
            for (std::size_t jp = 0; jp < full; jp += P) std::memcpy(out + jp / P * ps + k * P, b + jp, P * sizeof(T));
            if (full < nc) {
                T* dst = out + full / P * ps + k * P;
                for (std::size_t j = 0; j < P; ++j) dst[j] = full + j < nc ? b[full + j] : T(0);
            }
        }
        return;
    }
    for (std::size_t jp = 0; jp < nc; jp += P) {
        const std::size_t np = std::min(P, nc - jp);
        T* SOFIE_RESTRICT panel = out + jp / P * ps;
        if (!trans) {
            for (std::size_t k = 0; k < kc; ++k) {
                const T* b = B + (k0 + k) * ldb + j0 + jp;
                T* dst = panel + k * P;
                if (np == P) {
                    std::memcpy(dst, b, P * sizeof(T));
                } else {
                    for (std::size_t j = 0; j < P; ++j) dst[j] = j < np ? b[j] : T(0);
                }
            }
        } else {
            // B stored [N, K]: P rows read side by side, one packed row of P written per k.
            const T* rows[P];
            for (std::size_t j = 0; j < P; ++j) rows[j] = B + (j0 + jp + (j < np ? j : 0)) * ldb + k0;
            for (std::size_t k = 0; k < kc; ++k) {
                T* dst = panel + k * P;
                for (std::size_t j = 0; j < P; ++j) dst[j] = j < np ? rows[j][k] : T(0);
            }
        }
    }
}

// What a call fuses into the stores of its last K block (see Epilogue).
template <class T, class F>
struct Fused {
    const T* bias;       // per row of C (bias_per_row) or per column; nullptr for none
    bool bias_per_row;
    const T* residual;   // same layout as C (row stride ldc); nullptr for none
    F f;
};

// The bias of the block of C at row i0, column j0 (for a call split into blocks).
template <class T>
inline const T* block_bias(const T* bias, bool per_row, std::size_t i0, std::size_t j0) {
    return bias ? bias + (per_row ? i0 : j0) : nullptr;
}

// How the kernels find op(A): row i, column k at base + (i / MR) * ps + (i % MR) * rs + k * ks.
// As stored: ps = MR lda, rs = lda, ks = 1; transposed: ps = MR, rs = 1, ks = lda; packed
// ahead of time (pack_a: MR-row panels over all of K, k-major): ps = K MR, rs = 1, ks = MR.
template <class T>
struct AView {
    const T* base;
    std::size_t ps, rs, ks;
};

// Every register tile of one KC x nc block of C at column j0, by rows of MR then columns of
// NR: tile_at(mr, ai, j, nr, c, e) with A's rows at ai, the tile's column j in the block, C at
// c, and e pointing at the tile's bias and residual.
template <class T, class F, class TileAt>
inline void for_each_tile(std::size_t M, std::size_t nc, const AView<T>& a, T* C, std::size_t ldc, std::size_t j0,
                          Epilogue<T, F> e, const Fused<T, F>& fused, TileAt tile_at) {
    constexpr std::size_t NR = kernel_nr<T>();
    for (std::size_t i = 0; i < M; i += MR) {
        const std::size_t mr = std::min(MR, M - i);
        const T* ai = a.base + (i / MR) * a.ps;
        for (std::size_t j = 0; j < nc; j += NR) {
            if (fused.bias) e.bias = fused.bias + (fused.bias_per_row ? i : j0 + j);
            if (fused.residual) e.residual = fused.residual + i * ldc + j0 + j;
            tile_at(mr, ai, j, std::min(NR, nc - j), C + i * ldc + j0 + j, e);
        }
    }
}

// One KC x NC block of packed B (panel stride b_ps) against all rows of op(A), whose
// columns k0.. a points at.
template <class T, class F>
inline void run_block(std::size_t M, std::size_t nc, std::size_t kc, const AView<T>& a, const T* b,
                      std::size_t b_ps, T* C, std::size_t ldc, std::size_t j0, const Epilogue<T, F>& e,
                      const Fused<T, F>& fused) {
    for_each_tile(M, nc, a, C, ldc, j0, e, fused,
                  [&](std::size_t mr, const T* ai, std::size_t j, std::size_t nr, T* c, const Epilogue<T, F>& et) {
                      tile(kc, mr, nr, ai, a.rs, a.ks, b, b_ps, j, c, ldc, et);
                  });
}

// Whether blocked reads a float B as stored (not transposed, on the register kernels) rather
// than packing it in a pass of its own: see run_block_in_place.
template <class T>
inline constexpr bool reads_b_in_place(bool transB) {
    return std::is_same_v<T, float> && kReadsBInPlace && !transB;
}

// run_block for float B as stored (row-major, not transposed): rows k0.. and columns j0.. of
// B, rows ldb apart. The first MR rows of A read B as stored, and their kernel stores the B
// vectors it loads into `packed` (the block's panels) as it goes; the other rows of A read
// those panels. So packing costs stores within the first row tiles, not a pass over B of its
// own, and the other row tiles read contiguous panels, not B's strided rows (which on Intel
// cost 1.3-1.6x the time with K in the hundreds: 128x784x1152, 128x10000x3200). A last tile
// narrower than NR has its columns packed first (zero padded).
template <class F>
inline void run_block_in_place(std::size_t M, std::size_t nc, std::size_t kc, const AView<float>& a,
                               const float* B, std::size_t ldb, std::size_t k0, float* packed, std::size_t ps,
                               float* C, std::size_t ldc, std::size_t j0, const Epilogue<float, F>& e,
                               const Fused<float, F>& fused) {
    constexpr std::size_t NR = kernel_nr<float>(), P = PW<float>;
    const std::size_t full = nc / NR * NR;
    if (full < nc) pack_b(false, B, ldb, k0, kc, j0 + full, nc - full, packed + full / P * ps, ps);
    const float* b = B + k0 * ldb + j0;
    const bool reused = M > MR;  // by a second row tile
    for_each_tile(M, nc, a, C, ldc, j0, e, fused,
                  [&](std::size_t mr, const float* ai, std::size_t j, std::size_t nr, float* c,
                      const Epilogue<float, F>& et) {
                      if (j < full && ai == a.base) {
                          tile_in_place(kc, mr, ai, a.rs, a.ks, b + j, ldb, reused ? packed + j / P * ps : nullptr,
                                        ps, c, ldc, et);
                      } else {
                          tile(kc, mr, nr, ai, a.rs, a.ks, packed, ps, j, c, ldc, et);
                      }
                  });
}

// C = epilogue(alpha * op(A) * op(B) + beta * C), B packed here per KC x NC block, or
// (packed != nullptr) packed once for all of K and N by pack_b, or for few rows of A read as
// stored (blocked_in_place).
template <class T, class F>
inline void blocked(const AView<T>& a, bool transB, std::size_t M, std::size_t N, std::size_t K, T alpha,
                    const T* B, std::size_t ldb, const T* packed, T beta, T* C, std::size_t ldc,
                    const Fused<T, F>& fused) {
    Epilogue<T, F> e{alpha, beta, true, false, fused.bias, fused.bias_per_row, fused.residual, fused.f};
    // two accumulator sets for 1 or 2 rows (Epilogue::split_k) where K is long enough to pay
    // for their final sums: linear_10x50 at batch 1 (K = 50) took 1.05-1.1x the time with them
    e.split_k = M <= 2 && K >= kSplitKMinK;
    // K blocks of equal size (576 = 3 x 192, not 256 + 256 + 64): no short block whose C
    // tile loads and stores cost as much as a long one's
    const std::size_t k_blocks = (K + KC<T> - 1) / KC<T>;
    const std::size_t kb = (K + k_blocks - 1) / k_blocks;
    // A short K leaves room in the buffer for more columns, so each 6-row slice of C is
    // written (and its residual read) in longer runs the prefetchers follow: a 1x1 conv
    // 256x3136x64 with a residual (ResNet-50's 56x56 expansions) took 0.90 of the time.
    // The blocks are of near equal width in whole 64-column tiles (336 = 192 + 144, not
    // 320 + 16: a narrow last block pays for its packing and C tile passes like a wide one).
    const std::size_t nc_max = kb >= KC<T> ? NC : std::max(NC, (KC<T> * NC / kb) / 64 * 64);
    const std::size_t n_blocks = std::max<std::size_t>(1, (N + nc_max - 1) / nc_max);
    const std::size_t ncb = std::min(nc_max, ((N + n_blocks - 1) / n_blocks + 63) / 64 * 64);
    for (std::size_t j0 = 0; j0 < N; j0 += ncb) {
        const std::size_t nc = std::min(ncb, N - j0);
        for (std::size_t k0 = 0; k0 < K; k0 += kb) {
            const std::size_t kc = std::min(kb, K - k0);
            e.first = k0 == 0;
            e.last = k0 + kc == K;
            const AView<T> ak{a.base + k0 * a.ks, a.ps, a.rs, a.ks};
            if (packed) {
                run_block(M, nc, kc, ak, packed + j0 * K + k0 * PW<T>, K * PW<T>, C, ldc, j0, e, fused);
            } else {
                alignas(64) T buffer[KC<T> * NC + kSkewSlack<T>];
                const std::size_t ps = buffer_panel_stride<T>(kc);
                if constexpr (std::is_same_v<T, float>) {
                    if (reads_b_in_place<T>(transB)) {
                        run_block_in_place(M, nc, kc, ak, B, ldb, k0, buffer, ps, C, ldc, j0, e, fused);
                        continue;
                    }
                }
                pack_b(transB, B, ldb, k0, kc, j0, nc, buffer, ps);
                run_block(M, nc, kc, ak, buffer, ps, C, ldc, j0, e, fused);
            }
        }
    }
}

// op(A)[M, K] (A stored [K, M] when trans) into MR-row panels over all of K, k-major, zero
// padded to a multiple of MR rows: row i, column k at out[(i / MR) * K * MR + k * MR + i % MR].
template <class T>
inline void pack_a(bool trans, std::size_t M, std::size_t K, const T* A, std::size_t lda, T* SOFIE_RESTRICT out) {
    for (std::size_t i0 = 0; i0 < M; i0 += MR) {
        T* SOFIE_RESTRICT panel = out + i0 * K;
        for (std::size_t k = 0; k < K; ++k) {
            for (std::size_t r = 0; r < MR; ++r) {
                const std::size_t i = i0 + r;
                panel[k * MR + r] = i < M ? (trans ? A[k * lda + i] : A[i * lda + k]) : T(0);
            }
        }
    }
}

// C[0:M, 0:N] = f(C + bias + residual) in a pass of its own: the GEMV paths and the BLAS
// libraries, which have no epilogue.
template <class T, class F>
inline void epilogue_rows(T* C, std::size_t M, std::size_t N, std::size_t ldc, const Fused<T, F>& fused) {
    if constexpr (std::is_same_v<F, Identity>) {
        if (fused.bias == nullptr && fused.residual == nullptr) return;
    }
    for (std::size_t i = 0; i < M; ++i) {
        T* SOFIE_RESTRICT y = C + i * ldc;
        const T* res = fused.residual ? fused.residual + i * ldc : nullptr;
        for (std::size_t j = 0; j < N; ++j) {
            T v = y[j];
            if (fused.bias) v += fused.bias_per_row ? fused.bias[i] : fused.bias[j];
            if (res) v += res[j];
            y[j] = fused.f(v);
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

template <class T, class F>
inline void gemm(bool transA, bool transB, std::size_t M, std::size_t N, std::size_t K,
                 T alpha, const T* A, std::size_t lda, const T* B, std::size_t ldb, const T* packed,
                 T beta, T* C, std::size_t ldc, const Fused<T, F>& fused) {
    // Batch-1 dense layers: packing would cost as much as the product itself.
    if (M == 1 && (!transA || lda == 1) && packed == nullptr) {
        if (transB) {
            gemv_rows(N, K, alpha, A, B, ldb, beta, C);
        } else {
            gemv_cols(N, K, alpha, A, B, ldb, beta, C);
        }
        epilogue_rows(C, 1, N, ldc, fused);
        return;
    }
    const AView<T> a = transA ? AView<T>{A, MR, 1, lda} : AView<T>{A, MR * lda, lda, 1};
    blocked(a, transB, M, N, K, alpha, B, ldb, packed, beta, C, ldc, fused);
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

// The built-in GEMM's micro-kernel in this build (chosen by the -march macros).
inline const char* gemm_kernel_name() {
#if defined(__AVX512F__)
    return "avx512 6x64";
#elif defined(__AVX2__) && defined(__FMA__)
    return "avx2 6x16";
#else
    return "generic";
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

#if defined(SOFIE_BLAS_OPENBLAS) || defined(SOFIE_BLAS_CBLAS)
template <class T>
inline void library_gemm(bool transA, bool transB, std::size_t M, std::size_t N, std::size_t K,
                         T alpha, const T* A, std::size_t lda, const T* B, std::size_t ldb, T beta,
                         T* C, std::size_t ldc) {
    cblas_gemm(transA, transB, static_cast<int>(M), static_cast<int>(N), static_cast<int>(K), alpha,
               A, static_cast<int>(lda), B, static_cast<int>(ldb), beta, C, static_cast<int>(ldc));
}
#elif defined(SOFIE_BLAS_EIGEN)
template <class T>
inline void library_gemm(bool transA, bool transB, std::size_t M, std::size_t N, std::size_t K,
                         T alpha, const T* A, std::size_t lda, const T* B, std::size_t ldb, T beta,
                         T* C, std::size_t ldc) {
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
}
#endif

namespace gemm {

// An empty or zero product (M, N or K of 0, or alpha 0) is handled here, so that no kernel and
// no library sees it (CBLAS rejects lda < 1 at K == 0): C is scaled by beta and given the
// epilogue. True when the call is done.
template <class T, class F>
inline bool trivial_product(std::size_t M, std::size_t N, std::size_t K, T alpha, T beta, T* C,
                            std::size_t ldc, const Fused<T, F>& fused) {
    if (M == 0 || N == 0) return true;
    if (K != 0 && alpha != T(0)) return false;
    scale_matrix(M, N, beta, C, ldc);
    epilogue_rows(C, M, N, ldc, fused);
    return true;
}

}  // namespace gemm

}  // namespace detail

// Row-major C[M,N] = f(alpha * op(A)[M,K] * op(B)[K,N] + beta * C + bias + residual), where
// op(X) = X^T if transX; lda/ldb/ldc are the row strides of A, B, C as stored. bias (nullptr
// for none) is indexed by row of C with bias_per_row (conv channels), else by column (Gemm);
// residual (nullptr for none) has C's layout. The built-in GEMM applies all of it as each
// register tile is stored; with a BLAS library it is one more pass over C.
// T is float or double.
template <class T, class F = Identity>
inline void gemm_fused(bool transA, bool transB, std::size_t M, std::size_t N, std::size_t K,
                       T alpha, const T* A, std::size_t lda, const T* B, std::size_t ldb, T beta,
                       T* C, std::size_t ldc, const T* bias, bool bias_per_row, const T* residual,
                       F f = {}) {
    static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                  "sofie::rt::gemm: float or double");
    const detail::gemm::Fused<T, F> fused{bias, bias_per_row, residual, f};
    if (detail::gemm::trivial_product(M, N, K, alpha, beta, C, ldc, fused)) return;
    const bool gemv = M == 1 && (!transA || lda == 1);
    // With intra-op threads (thread_pool.hxx), one block of C per thread, each this same call.
    if (!gemv && detail::split_gemm(M, N, K, [&](std::size_t i0, std::size_t i1, std::size_t j0, std::size_t j1) {
            gemm_fused<T, F>(transA, transB, i1 - i0, j1 - j0, K, alpha, A + (transA ? i0 : i0 * lda), lda,
                             B + (transB ? j0 * ldb : j0), ldb, beta, C + i0 * ldc + j0, ldc,
                             detail::gemm::block_bias(bias, bias_per_row, i0, j0), bias_per_row,
                             residual ? residual + i0 * ldc + j0 : nullptr, f);
        })) {
        return;
    }
#if defined(SOFIE_BLAS_OPENBLAS) || defined(SOFIE_BLAS_CBLAS) || defined(SOFIE_BLAS_EIGEN)
    // One row (a dense layer at batch 1) is a GEMV that streams the weights once; the
    // built-in kernel beats the BLAS libraries' GEMM setup there by 3-4x.
    if (!gemv) {
        detail::library_gemm(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        detail::gemm::epilogue_rows(C, M, N, ldc, fused);
        return;
    }
#endif
    detail::gemm::gemm(transA, transB, M, N, K, alpha, A, lda, B, ldb, static_cast<const T*>(nullptr),
                       beta, C, ldc, fused);
}

// Row-major C[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * C (gemm_fused without
// an epilogue). With beta == 0, C is only written, never read.
template <class T>
inline void gemm(bool transA, bool transB, std::size_t M, std::size_t N, std::size_t K, T alpha,
                 const T* A, std::size_t lda, const T* B, std::size_t ldb, T beta, T* C,
                 std::size_t ldc) {
    gemm_fused<T>(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, nullptr, false,
                  nullptr);
}

// B packed ahead of time (a constant weight, packed once): the layout the built-in kernels
// read, panels of 64 bytes of columns (16 floats, 8 doubles) over all of K, zero padded past
// N, independent of the ISA (the AVX-512 kernel reads 4 panels at a time, AVX2 one), so the
// compiler can pack at compile time (sofie/lowering/gemm_pack.py spells the same layout).
template <class T>
inline constexpr std::size_t packed_b_size(std::size_t K, std::size_t N) {
    constexpr std::size_t P = detail::gemm::PW<T>;
    return (N + P - 1) / P * P * K;
}

// out[packed_b_size(K, N)] = op(B)[K, N] packed (B stored [N, K] when transB).
template <class T>
inline void pack_b(bool transB, std::size_t K, std::size_t N, const T* B, std::size_t ldb, T* out) {
    detail::gemm::pack_b(transB, B, ldb, 0, K, 0, N, out, K * detail::gemm::PW<T>);
}

// A packed ahead of time for gemm_packed_a (a conv's constant weights): MR = 6-row panels over
// all of K, k-major, zero padded to a multiple of 6 rows, the same for every ISA.
template <class T>
inline constexpr std::size_t packed_a_size(std::size_t M, std::size_t K) {
    return (M + detail::gemm::MR - 1) / detail::gemm::MR * detail::gemm::MR * K;
}

// out[packed_a_size(M, K)] = op(A)[M, K] packed (A stored [K, M] when transA).
template <class T>
inline void pack_a(bool transA, std::size_t M, std::size_t K, const T* A, std::size_t lda, T* out) {
    detail::gemm::pack_a(transA, M, K, A, lda, out);
}

// gemm_fused with op(A) given packed by pack_a: one contiguous stream per 6 rows, where A as
// stored is 6 rows lda apart, each read kc at a time (too short for the prefetchers).
// Always the built-in kernel, whatever the BLAS backend.
template <class T, class F = Identity>
inline void gemm_packed_a(std::size_t M, std::size_t N, std::size_t K, T alpha, const T* packed,
                          const T* B, std::size_t ldb, T beta, T* C, std::size_t ldc, const T* bias,
                          bool bias_per_row, const T* residual, F f = {}) {
    const detail::gemm::Fused<T, F> fused{bias, bias_per_row, residual, f};
    if (detail::gemm::trivial_product(M, N, K, alpha, beta, C, ldc, fused)) return;
    constexpr std::size_t MR = detail::gemm::MR;
    detail::gemm::blocked(detail::gemm::AView<T>{packed, K * MR, 1, MR}, false, M, N, K, alpha, B, ldb,
                          static_cast<const T*>(nullptr), beta, C, ldc, fused);
}

// gemm_fused with op(B) given packed by pack_b. Always the built-in kernel, whatever the
// BLAS backend: no library reads this layout.
template <class T, class F = Identity>
inline void gemm_packed_b(bool transA, std::size_t M, std::size_t N, std::size_t K, T alpha,
                          const T* A, std::size_t lda, const T* packed, T beta, T* C,
                          std::size_t ldc, const T* bias, bool bias_per_row, const T* residual,
                          F f = {}) {
    const detail::gemm::Fused<T, F> fused{bias, bias_per_row, residual, f};
    if (detail::gemm::trivial_product(M, N, K, alpha, beta, C, ldc, fused)) return;
    // Intra-op threads: column blocks start on a panel (split_gemm aligns them to 16 columns).
    if (detail::split_gemm(M, N, K, [&](std::size_t i0, std::size_t i1, std::size_t j0, std::size_t j1) {
            gemm_packed_b<T, F>(transA, i1 - i0, j1 - j0, K, alpha, A + (transA ? i0 : i0 * lda), lda,
                                packed + j0 * K, beta, C + i0 * ldc + j0, ldc,
                                detail::gemm::block_bias(bias, bias_per_row, i0, j0), bias_per_row,
                                residual ? residual + i0 * ldc + j0 : nullptr, f);
        })) {
        return;
    }
#if defined(SOFIE_RT_REGISTER_KERNELS)
    // Batch-1 dense layers: several panels of the row in registers at once. Here, not in
    // detail::gemm::gemm, which every gemm_fused instance (one per epilogue type) inlines:
    // there it grew ResNet-18's translation unit past g++'s inlining budget, 1.14x the time.
    if constexpr (std::is_same_v<T, float>) {
        if (M == 1) {
            detail::gemm::Epilogue<float, F> e{alpha, beta, true, true, bias, bias_per_row, residual, f};
            e.split_k = K >= detail::gemm::kSplitKMinK;
            detail::gemm::gemv_packed(N, K, A, transA ? lda : 1, packed, C, e);
            return;
        }
    }
#endif
    detail::gemm::gemm(transA, false, M, N, K, alpha, A, lda, static_cast<const T*>(nullptr), 0,
                       packed, beta, C, ldc, fused);
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
