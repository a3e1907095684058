// C[M, N] = f(A[M, K] B[K, N] + bias + residual) for a product with few columns (a 1x1 conv
// on a 7x7 image has N = 49; Winograd's GEMMs on a 7x7 image have 16 or 49), vectorized over
// the rows of C instead of its columns. The main GEMM (blas.hxx) covers N with vectors of 16
// floats: 49 columns take four vectors, 16 of whose 64 lanes are wasted, and packing B costs
// as much as the product when N is small. Here the lanes run along M, which the weights make
// long (hundreds of output channels), so no lane is wasted, and B is read in place.
//
// A is the constant weight matrix, packed at compile time in panels of 48 of its rows, each
// stored k-major ([ceil(M / 48)][K][48], zero padded past M; sofie/lowering/gemm_pack.py,
// packed_a_columns): a tile streams its panel contiguously.
// A register tile is up to 8 columns of C (one broadcast of B each per k) by up to 48 rows (3
// vectors of A per k): 24 accumulators, 3 loads and 8 broadcasts per 24 FMAs. The tile is
// transposed through a small stack buffer when stored, where the epilogue runs.
#ifndef SOFIE_RT_GEMM_SMALL_N_HXX_V0_1_0
#define SOFIE_RT_GEMM_SMALL_N_HXX_V0_1_0

#include <algorithm>
#include <cstddef>

#include "gemm_kernels.hxx"
#include "thread_pool.hxx"

namespace sofie {
inline namespace v0_1_0 {
namespace rt {

// Rows of A per packed panel, and of C per register tile (3 AVX-512 vectors).
inline constexpr std::size_t kSmallNPanel = 48;

namespace detail::small_n {

inline constexpr std::size_t kTileRows = kSmallNPanel;
inline constexpr std::size_t kTileCols = 8;   // columns of C per register tile
// K per block: the block of At a row of tiles reads (kc x 48 floats) and the block of B every
// tile reads (kc x N) stay in L2 while the tiles run over them.
inline constexpr std::size_t kBlockK = 1024;
inline constexpr std::size_t kPrefetchK = 64;  // 12 KiB ahead: measured 32-128 alike

// The next block of packed A, fetched into L2 while this block's column tiles run: every
// `every` k steps a tile fetches one more k row (3 lines) of it, from `next` on. A block is read
// from memory by its first column tile only, and the tiles after it read it from L2: without
// this, memory sat idle while they ran, and a weight stream of 17 MB (ResNet-18's 512-channel
// Winograd convs at 7x7, 2 column tiles) came in at 6.5 GB/s against 14 for a plain read.
struct Ahead {
    const char* next;  // nullptr: nothing to fetch
    std::size_t every;
};

// What a tile's store does: first K block or not, last (bias, residual, f) or not.
template <class F>
struct Store {
    bool first, last;
    const float* bias;      // per row of C, or nullptr
    const float* residual;  // C's layout, or nullptr
    F f;
};

// acc[c][r] (column c of the tile, row r) into C[r, c] for r < rows, c < cols, in three
// passes: what the product adds to, read across (C's partial sums, the residual); bias and f
// down each column, where rows are contiguous and the loop vectorizes; the transposed copy.
// Every test of a pointer stands outside its loop: with it inside, GCC turns `res[j]` into a
// masked load even when res is null, and a masked load from an unmapped page costs AMD a
// microcode assist per row (measured: 3x the product's time).
template <class F>
SOFIE_ACTIVATION_PASS void store_tile(float (*acc)[kTileRows], std::size_t rows, std::size_t cols, float* C,
                       std::size_t ldc, std::size_t i0, std::size_t j0, const Store<F>& s) {
    const float* res = s.last ? s.residual : nullptr;
    if (!s.first) {
        for (std::size_t r = 0; r < rows; ++r)
            for (std::size_t j = 0; j < cols; ++j) acc[j][r] += C[(i0 + r) * ldc + j0 + j];
    }
    if (res) {
        for (std::size_t r = 0; r < rows; ++r)
            for (std::size_t j = 0; j < cols; ++j) acc[j][r] += res[(i0 + r) * ldc + j0 + j];
    }
    if (s.last) {
        for (std::size_t j = 0; j < cols; ++j) {
            float* SOFIE_RESTRICT a = acc[j];
            if (s.bias) {
                const float* SOFIE_RESTRICT b = s.bias + i0;
                for (std::size_t r = 0; r < rows; ++r) a[r] = s.f(a[r] + b[r]);
            } else {
                for (std::size_t r = 0; r < rows; ++r) a[r] = s.f(a[r]);
            }
        }
    }
    for (std::size_t r = 0; r < rows; ++r) {
        float* SOFIE_RESTRICT c = C + (i0 + r) * ldc + j0;
        for (std::size_t j = 0; j < cols; ++j) c[j] = acc[j][r];
    }
}

#if defined(__AVX512F__)
// COLS (1..8) columns of C x RV (1..3) vectors of rows, k in [0, kc).
template <int COLS, int RV>
inline void tile_avx512(std::size_t kc, const float* at, const float* b, std::size_t ldb,
                        float (*out)[kTileRows], const Ahead& ahead) {
    const char* next = ahead.next;
    std::size_t count = 0;
    __m512 acc[COLS][RV];
#pragma GCC unroll 8
    for (int c = 0; c < COLS; ++c)
#pragma GCC unroll 3
        for (int v = 0; v < RV; ++v) acc[c][v] = _mm512_setzero_ps();
#pragma GCC unroll 2
    for (std::size_t k = 0; k < kc; ++k) {
        __m512 a[RV];
#pragma GCC unroll 3
        for (int v = 0; v < RV; ++v) {
            a[v] = _mm512_loadu_ps(at + k * kTileRows + 16 * v);
            // The weights stream from memory once per inference, and the hardware prefetcher
            // trails a stream this short: fetched kPrefetchK steps ahead (a prefetch never
            // faults past the end). With weights out of cache, MobileNet and ResNet shapes ran
            // in 0.80-0.90 of the time without it.
            _mm_prefetch(reinterpret_cast<const char*>(at + (k + kPrefetchK) * kTileRows + 16 * v), _MM_HINT_T0);
        }
        if (next != nullptr && ++count == ahead.every) {
            count = 0;
            _mm_prefetch(next, _MM_HINT_T1);
            _mm_prefetch(next + 64, _MM_HINT_T1);
            _mm_prefetch(next + 128, _MM_HINT_T1);
            next += kTileRows * sizeof(float);
        }
        const float* bk = b + k * ldb;
#pragma GCC unroll 8
        for (int c = 0; c < COLS; ++c) {
            const __m512 x = _mm512_set1_ps(bk[c]);
#pragma GCC unroll 3
            for (int v = 0; v < RV; ++v) acc[c][v] = _mm512_fmadd_ps(x, a[v], acc[c][v]);
        }
    }
#pragma GCC unroll 8
    for (int c = 0; c < COLS; ++c)
#pragma GCC unroll 3
        for (int v = 0; v < RV; ++v) _mm512_storeu_ps(out[c] + 16 * v, acc[c][v]);
}

template <int RV>
inline void tile_cols(std::size_t cols, std::size_t kc, const float* at, const float* b,
                      std::size_t ldb, float (*out)[kTileRows], const Ahead& ah) {
    switch (cols) {
        case 1: tile_avx512<1, RV>(kc, at, b, ldb, out, ah); break;
        case 2: tile_avx512<2, RV>(kc, at, b, ldb, out, ah); break;
        case 3: tile_avx512<3, RV>(kc, at, b, ldb, out, ah); break;
        case 4: tile_avx512<4, RV>(kc, at, b, ldb, out, ah); break;
        case 5: tile_avx512<5, RV>(kc, at, b, ldb, out, ah); break;
        case 6: tile_avx512<6, RV>(kc, at, b, ldb, out, ah); break;
        case 7: tile_avx512<7, RV>(kc, at, b, ldb, out, ah); break;
        default: tile_avx512<8, RV>(kc, at, b, ldb, out, ah); break;
    }
}
#endif

// The tile's product into out[c][r]: rows r < 16 * vectors (the panel is padded that far).
inline void tile(std::size_t vectors, std::size_t cols, std::size_t kc, const float* at,
                 const float* b, std::size_t ldb, float (*out)[kTileRows], const Ahead& ah) {
#if defined(__AVX512F__)
    switch (vectors) {
        case 1: tile_cols<1>(cols, kc, at, b, ldb, out, ah); return;
        case 2: tile_cols<2>(cols, kc, at, b, ldb, out, ah); return;
        default: tile_cols<3>(cols, kc, at, b, ldb, out, ah); return;
    }
#else
    (void)ah;
    // Other builds: the compiler vectorizes the row loop (16 rows per pass over k).
    const std::size_t rows = 16 * vectors;
    for (std::size_t c = 0; c < cols; ++c)
        for (std::size_t r = 0; r < rows; ++r) out[c][r] = 0.0f;
    for (std::size_t r0 = 0; r0 < rows; r0 += 16) {
        for (std::size_t k = 0; k < kc; ++k) {
            const float* SOFIE_RESTRICT a = at + k * kTileRows + r0;
            for (std::size_t c = 0; c < cols; ++c) {
                const float x = b[k * ldb + c];
                float* SOFIE_RESTRICT o = out[c] + r0;
                for (std::size_t r = 0; r < 16; ++r) o[r] += x * a[r];
            }
        }
    }
#endif
}

}  // namespace detail::small_n

namespace detail::small_n {

// The first two lines of every 4 KiB page of [p, p + bytes), fetched into L2 at once: each
// page is then a stream of its own for the L2 prefetcher, which runs ahead of the fetches of
// Ahead (a 17 MB weight stream: 2.03-2.05 ms with this against 2.10-2.26 without).
inline void fetch_pages([[maybe_unused]] const char* p, [[maybe_unused]] std::size_t bytes) {
#if defined(__AVX512F__)
    for (std::size_t o = 0; o < bytes; o += 4096) {
        _mm_prefetch(p + o, _MM_HINT_T2);
        _mm_prefetch(p + o + 64, _MM_HINT_T2);
    }
#endif
}

// Rows [r0, r1) of C (r0 a multiple of kTileRows): gemm_small_n's work on one thread.
template <class F>
inline void rows(std::size_t r0, std::size_t r1, std::size_t N, std::size_t K, const float* packed,
                 const float* B, std::size_t ldb, float* C, std::size_t ldc, const float* bias,
                 const float* residual, F f) {
    if (K == 0) {
        for (std::size_t i0 = r0; i0 < r1; i0 += kTileRows)
            for (std::size_t j0 = 0; j0 < N; j0 += kTileCols) {
                float zero[kTileCols][kTileRows] = {};
                store_tile(zero, std::min(kTileRows, r1 - i0), std::min(kTileCols, N - j0), C, ldc, i0, j0,
                           Store<F>{true, true, bias, residual, f});
            }
        return;
    }
    // K blocks of equal size; columns in tiles of equal size (49 = 7 x 7, not 6 x 8 + 1)
    const std::size_t k_blocks = (K + kBlockK - 1) / kBlockK, kb = (K + k_blocks - 1) / k_blocks;
    const std::size_t col_tiles = (N + kTileCols - 1) / kTileCols, nt = (N + col_tiles - 1) / col_tiles;
    alignas(64) float acc[kTileCols][kTileRows];
    for (std::size_t i0 = r0; i0 < r1; i0 += kTileRows) {
        const std::size_t rows = std::min(kTileRows, r1 - i0);
        const std::size_t vectors = (rows + 15) / 16;
        for (std::size_t k0 = 0; k0 < K; k0 += kb) {
            const std::size_t kc = std::min(kb, K - k0);
            const Store<F> s{k0 == 0, k0 + kc == K, bias, residual, f};
            const float* at = packed + i0 * K + k0 * kTileRows;
            // The next block follows this one in memory (the next K block, or the next panel's
            // first); its k rows are shared out over the column tiles (see Ahead).
            const std::size_t next_rows = k0 + kc < K ? std::min(kb, K - k0 - kc) : i0 + kTileRows < r1 ? kb : 0;
            const std::size_t per_tile = (next_rows + col_tiles - 1) / col_tiles;
            const std::size_t every = per_tile ? std::max<std::size_t>(1, kc / per_tile) : 1;
            const char* next = reinterpret_cast<const char*>(at + kc * kTileRows);
            fetch_pages(next, next_rows * kTileRows * sizeof(float));
            for (std::size_t j0 = 0, t = 0; j0 < N; j0 += nt, ++t) {
                const std::size_t cols = std::min(nt, N - j0);
                const Ahead ah{next_rows ? next + t * per_tile * kTileRows * sizeof(float) : nullptr, every};
                tile(vectors, cols, kc, at, B + k0 * ldb + j0, ldb, acc, ah);
                store_tile(acc, rows, cols, C, ldc, i0, j0, s);
            }
        }
    }
}

}  // namespace detail::small_n

// C[M, N] (row stride ldc) = f(A B + bias + residual), A packed in panels (see above), B [K, N]
// with row stride ldb read in place; bias per row of C (nullptr for none), residual in C's
// layout (nullptr for none). C is only written. With intra-op threads (thread_pool.hxx), a
// product of kMinSplitMacs or more runs as blocks of whole panels of rows, one per thread.
template <class F = Identity>
inline void gemm_small_n(std::size_t M, std::size_t N, std::size_t K, const float* packed, const float* B,
                         std::size_t ldb, float* C, std::size_t ldc, const float* bias,
                         const float* residual, F f = {}) {
    using detail::small_n::kTileRows;
    ThreadPool* pool = intra_op_pool();
    if (pool != nullptr && M > kTileRows && M * N * K >= detail::kMinSplitMacs) {
        const std::size_t parts = std::min(pool->size(), (M + kTileRows - 1) / kTileRows);
        pool->run(parts, [&](std::size_t p, std::size_t) {
            std::size_t r0, r1;
            detail::split_range(M, parts, p, kTileRows, r0, r1);
            if (r0 < r1) detail::small_n::rows(r0, r1, N, K, packed, B, ldb, C, ldc, bias, residual, f);
        });
        return;
    }
    detail::small_n::rows(0, M, N, K, packed, B, ldb, C, ldc, bias, residual, f);
}

}  // namespace rt
}  // namespace v0_1_0
}  // namespace sofie

#endif  // SOFIE_RT_GEMM_SMALL_N_HXX_V0_1_0
