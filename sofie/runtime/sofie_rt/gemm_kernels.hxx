// Micro-kernels of the built-in GEMM (blas.hxx): C[R, nr] (op)= alpha * A[R, kc] * Bpanel[kc, nr]
// for one register tile, with the epilogue (beta, bias, residual, activation) applied as the
// tile is stored. One kernel per ISA, chosen at build time from the -march macros:
//
//   __AVX512F__            6 x 64 floats: 24 zmm accumulators (4 per row), 4 B loads and
//                          6 A broadcasts per k (the BLIS Zen 4 "6x64m" shape: fewer loads
//                          per FMA than 12x32 or 14x32, and the same 6-row A tile as AVX2)
//   __AVX2__ && __FMA__    6 x 16 floats: 12 ymm accumulators, 2 B loads + 6 broadcasts per k
//   otherwise (and double) 6 x 2 vectors of GCC/Clang vector extensions, or plain loops
//
// Operand layouts (ISA independent, so a B packed at compile time fits every build):
//   A is read in place, a[r * a_rs + k * a_ks]: (lda, 1) as stored, (1, lda) transposed. Only
//     broadcasts read A, so packing it would buy nothing but a copy; the 6 x kc slice in use
//     stays in L1 across the tiles of a row of panels.
//   B is packed in panels of PW = 64 bytes (16 floats, 8 doubles) of columns, k-major: column j
//     of panel p at k is b[p * b_ps + k * PW + j], zero padded past N. The AVX-512 kernel reads
//     4 panels at a time, AVX2 one, the generic kernel half or all of one. The float register
//     kernels also read a B as stored, rows b_ks apart (tile_in_place): full tiles only.
#ifndef SOFIE_RT_GEMM_KERNELS_HXX_V0_1_0
#define SOFIE_RT_GEMM_KERNELS_HXX_V0_1_0

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

// The build has the register kernels (AVX-512, or AVX2 with FMA): the one place that says so,
// for this file, blas.hxx and conv_direct.hxx.
#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
#define SOFIE_RT_REGISTER_KERNELS 1
#endif

#if defined(SOFIE_RT_REGISTER_KERNELS)
#include <immintrin.h>
#endif

#if defined(__GNUC__) || defined(__clang__)
#define SOFIE_RESTRICT __restrict__
#elif defined(_MSC_VER)
#define SOFIE_RESTRICT __restrict
#else
#define SOFIE_RESTRICT
#endif

// The generated epilogue lambdas and Relu carry SOFIE_EPILOGUE_INLINE: in a large
// model g++ stops inlining plain inline functions once the translation unit has grown enough,
// and a functor left as a call inside a kernel's epilogue loop keeps that loop scalar (a SiLU
// epilogue ran 20x slower than the same loop written out).
#ifndef SOFIE_EPILOGUE_INLINE
#if defined(__GNUC__)
#define SOFIE_EPILOGUE_INLINE __attribute__((always_inline))
#else
#define SOFIE_EPILOGUE_INLINE
#endif
#endif

// The same for the runtime's compile-time unrolled helpers and the lambdas they call (a k
// step, a Winograd transform row): their loops only unroll once inlined. With the batch-1
// GEMV kernels added, ResNet-18's translation unit outgrew g++'s inlining budget and its
// Winograd input transform became calls through wino_unroll: 1.1x the model's time.
#ifndef SOFIE_ALWAYS_INLINE
#if defined(__GNUC__)
#define SOFIE_ALWAYS_INLINE __attribute__((always_inline))
#else
#define SOFIE_ALWAYS_INLINE
#endif
#endif

// An activation pass over finished outputs still in L1 (activate_tile here, store_tile in
// gemm_small_n.hxx, dw_activate in depthwise_small.hxx): out of line and flattened, so the functor is inlined into a loop of its
// own that vectorizes. On AVX-512 builds that loop takes 512-bit vectors: for the Intel parts g++
// tunes auto-vectorized loops to 256 bits, and SiLU over ymm took 1.27x its time over zmm.
#if defined(__GNUC__) && !defined(__clang__) && defined(__AVX512F__)
#define SOFIE_ACTIVATION_PASS __attribute__((noinline, flatten, target("prefer-vector-width=512"))) inline
#elif defined(__GNUC__) || defined(__clang__)
#define SOFIE_ACTIVATION_PASS __attribute__((noinline, flatten)) inline
#else
#define SOFIE_ACTIVATION_PASS inline
#endif

namespace sofie {
inline namespace v0_1_0 {
namespace rt {

// The activation functor when there is none (kernels.hxx and generated code use it too).
struct Identity {
    template <class T>
    T operator()(T x) const { return x; }
};

// ReLU as a named functor: the GEMM's register kernels apply it before their store, where any
// other activation takes a pass over the stored tile. Same result as x < 0 ? 0 : x, NaN and -0
// included. Site tells call sites apart: the generated code spells a fused Relu relu([] {}),
// each op with a type of its own, as a lambda epilogue has, so each op keeps its own instance
// of the kernel; g++ -O3 inlines a kernel instance called once and propagates the op's constant
// dims into it, where one Relu instance called by 13 Winograd convs stayed a call (ResNet-50
// 40.4 ms against 38.0 with per-op types).
template <class Site = void>
struct Relu {
    template <class T>
    SOFIE_EPILOGUE_INLINE T operator()(T x) const { return x < T(0) ? T(0) : x; }
};

// The Relu of one call site: relu([] {}).
template <class Site>
inline Relu<Site> relu(Site) { return {}; }

// ONNX Clip with constant bounds, min(max(x, lo), hi) (ReLU6 in MobileNets, lo = 0, hi = 6):
// applied in the register kernels as ReLU is, a type per call site the same way:
// clip(lo, hi, [] {}). Same result as the scalar form, NaN and -0 included.
template <class Site = void>
struct Clip {
    float lo, hi;
    template <class T>
    SOFIE_EPILOGUE_INLINE T operator()(T x) const {
        const T t = x < T(lo) ? T(lo) : x;
        return T(hi) < t ? T(hi) : t;
    }
};

template <class Site>
inline Clip<Site> clip(float lo, float hi, Site) { return {lo, hi}; }

// Whether the register kernels apply F as a clamp to [lo, hi] (clamp_bounds).
template <class F>
inline constexpr bool is_clamp = false;
template <class Site>
inline constexpr bool is_clamp<Relu<Site>> = true;
template <class Site>
inline constexpr bool is_clamp<Clip<Site>> = true;

template <class Site>
inline void clamp_bounds(const Relu<Site>&, float& lo, float& hi) {
    lo = 0.0f;
    hi = std::numeric_limits<float>::infinity();
}
template <class Site>
inline void clamp_bounds(const Clip<Site>& f, float& lo, float& hi) {
    lo = f.lo;
    hi = f.hi;
}

namespace detail::gemm {

// Panel width of packed B: one cache line.
template <class T>
inline constexpr std::size_t PW = 64 / sizeof(T);
// Rows of a register tile, the same for every ISA.
inline constexpr std::size_t MR = 6;

// What the store of a tile does besides writing alpha * acc:
//   first: the first K block (adds beta * C, never reading C when beta == 0), else adds C
//   last:  the last K block, which adds bias (per row or per column) and residual (same
//          layout as C) and applies f
template <class T, class F>
struct Epilogue {
    T alpha, beta;
    bool first, last;
    const T* bias;      // at the tile: indexed by tile row (bias_per_row) or tile column
    bool bias_per_row;
    const T* residual;  // at the tile, row stride ldc; nullptr for none
    F f;
    // the register kernels clamp to [lo, hi] at the store (Relu, Clip; F is then Identity)
    bool clamp = false;
    float lo = 0.0f, hi = 0.0f;
    // The AVX-512 kernel sums alternate k in two sets of accumulators (1- and 2-row tiles). Set
    // for a whole product of at most 2 rows only (and K >= kSplitKMinK, blas.hxx): the order of
    // the sums must not depend on how intra-op threads split a product (split_gemm never leaves
    // a part of 2 rows or fewer from more), so every thread count gives the same bits.
    bool split_k = false;
};

// step(set, k) for every k < K, set an std::integral_constant: with split (Epilogue::split_k)
// sets 0 and 1 take alternate k, an odd last k going to set 0, else set 0 takes them all.
template <class Step>
SOFIE_ALWAYS_INLINE inline void alternate_k(std::size_t K, bool split, Step&& step) {
    std::size_t k = 0;
    if (split) {
#pragma GCC unroll 2
        for (; k + 2 <= K; k += 2) {
            step(std::integral_constant<int, 0>{}, k);
            step(std::integral_constant<int, 1>{}, k + 1);
        }
    }
    for (; k < K; ++k) step(std::integral_constant<int, 0>{}, k);
}

// Generic scalar store of one finished row of a tile.
template <class T, class F>
inline void store_row(T* c, const T* acc, std::size_t nr, std::size_t r, const Epilogue<T, F>& e) {
    for (std::size_t j = 0; j < nr; ++j) {
        T v = e.alpha * acc[j];
        if (!e.first) {
            v += c[j];
        } else if (e.beta != T(0)) {
            v += e.beta * c[j];
        }
        c[j] = v;
    }
    if (!e.last) return;
    if (e.bias) {
        if (e.bias_per_row) {
            for (std::size_t j = 0; j < nr; ++j) c[j] += e.bias[r];
        } else {
            for (std::size_t j = 0; j < nr; ++j) c[j] += e.bias[j];
        }
    }
    if (e.residual) {
        const T* res = e.residual;
        for (std::size_t j = 0; j < nr; ++j) c[j] += res[j];
    }
    if constexpr (!std::is_same_v<F, Identity>) {
        for (std::size_t j = 0; j < nr; ++j) c[j] = e.f(c[j]);
    }
}

// Applies f to a stored row (bias and residual already added).
template <class T, class F>
inline void activate_row(T* c, std::size_t nr, const F& f) {
    if constexpr (!std::is_same_v<F, Identity>) {
        for (std::size_t j = 0; j < nr; ++j) c[j] = f(c[j]);
    }
}

// ---------------------------------------------------------------------------
// Generic kernel: MR x NRG, NRG = 2 vectors (vector extensions) or 8 scalars.
// ---------------------------------------------------------------------------
#if defined(__GNUC__) || defined(__clang__)
#define SOFIE_GEMM_VECTOR_EXT 1
// Vector extensions pin the accumulator tile in registers at plain -O2, which the
// auto-vectorizer alone does not. Width follows the target flags.
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
template <class T>
inline constexpr std::size_t NR_GENERIC = 2 * VW<T>;
#else
template <class T>
inline constexpr std::size_t VW = 16 / sizeof(T);
template <class T>
inline constexpr std::size_t NR_GENERIC = 8 / (sizeof(T) / 4);
#endif
static_assert(PW<float> % NR_GENERIC<float> == 0 && PW<double> % NR_GENERIC<double> == 0,
              "a generic tile lies inside one packed panel");

// b points at the tile's first column inside its panel; rows of the panel are PW apart.
template <class T, class F>
inline void kernel_generic(std::size_t kc, std::size_t mr, std::size_t nr, const T* a, std::size_t a_rs,
                           std::size_t a_ks, const T* SOFIE_RESTRICT b, T* C, std::size_t ldc,
                           const Epilogue<T, F>& e) {
    constexpr std::size_t NR = NR_GENERIC<T>;
    T acc[MR][NR];
#if defined(SOFIE_GEMM_VECTOR_EXT)
    constexpr std::size_t NV = NR / VW<T>;
    vec<T> vacc[MR][NV] = {};
    // Rows past mr read row 0 again (always valid); their sums are never stored.
    const T* ar[MR];
    for (std::size_t r = 0; r < MR; ++r) ar[r] = a + (r < mr ? r : 0) * a_rs;
    for (std::size_t k = 0; k < kc; ++k) {
        vec<T> bk[NV];
#pragma GCC unroll 4
        for (std::size_t v = 0; v < NV; ++v) bk[v] = vload(b + k * PW<T> + v * VW<T>);
#pragma GCC unroll 8
        for (std::size_t r = 0; r < MR; ++r) {
            const T x = ar[r][k * a_ks];
#pragma GCC unroll 4
            for (std::size_t v = 0; v < NV; ++v) vacc[r][v] += x * bk[v];
        }
    }
    std::memcpy(acc, vacc, sizeof acc);
#else
    for (std::size_t r = 0; r < MR; ++r)
        for (std::size_t j = 0; j < NR; ++j) acc[r][j] = T(0);
    for (std::size_t k = 0; k < kc; ++k) {
        const T* SOFIE_RESTRICT bk = b + k * PW<T>;
        for (std::size_t r = 0; r < mr; ++r) {
            const T x = a[r * a_rs + k * a_ks];
            for (std::size_t j = 0; j < NR; ++j) acc[r][j] += x * bk[j];
        }
    }
#endif
    for (std::size_t r = 0; r < mr; ++r) {
        Epilogue<T, F> er = e;
        if (e.residual) er.residual = e.residual + r * ldc;
        store_row(C + r * ldc, acc[r], nr, r, er);
    }
}

// The store of a register tile acc[R x NV] (row-major; rows ldc apart in C, NV vectors of
// Isa::kLanes floats, the last masked to nr) with the epilogue. Each flag is tested once around a
// pass of its own over the tile: tested at every vector inside one pass, they made ~120
// branches a 6 x 64 tile, about 200 cycles (a 27-tap stem tile computes for 500, a 64-deep one
// for 770). Isa: the vector operations of one ISA (Zmm, Ymm below). The epilogue's activation
// is Relu or Clip (e.clamp) or none: any other runs over the stored tile (activate_rows).
template <class Isa, int R, int NV>
SOFIE_ALWAYS_INLINE inline void store_register_tile(typename Isa::V* acc, std::size_t nr, float* C, std::size_t ldc,
                                                    const Epilogue<float, Identity>& e) {
    using V = typename Isa::V;
    using M = typename Isa::M;
    const M last = Isa::mask(nr - Isa::kLanes * (NV - 1)), full = Isa::mask(Isa::kLanes);
    auto each = [&](auto&& fn) SOFIE_ALWAYS_INLINE {  // fn(y, r, offset of the vector in a row, mask)
#pragma GCC unroll 6
        for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
            for (int v = 0; v < NV; ++v) fn(acc[r * NV + v], r, Isa::kLanes * std::size_t(v), v == NV - 1 ? last : full);
    };
    if (e.alpha != 1.0f) {  // (a multiply by 1 is exact: skipping it changes no bit)
        const V alpha = Isa::set1(e.alpha);
        each([&](V& y, int, std::size_t, const M&) SOFIE_ALWAYS_INLINE { y = Isa::mul(alpha, y); });
    }
    if (!e.first) {
        each([&](V& y, int r, std::size_t j, const M& m) SOFIE_ALWAYS_INLINE { y = Isa::add(y, Isa::load(m, C + r * ldc + j)); });
    } else if (e.beta != 0.0f) {
        const V beta = Isa::set1(e.beta);
        each([&](V& y, int r, std::size_t j, const M& m) SOFIE_ALWAYS_INLINE {
            y = Isa::fmadd(beta, Isa::load(m, C + r * ldc + j), y);
        });
    }
    if (e.last) {
        if (e.bias && e.bias_per_row) {
            each([&](V& y, int r, std::size_t, const M&) SOFIE_ALWAYS_INLINE { y = Isa::add(y, Isa::set1(e.bias[r])); });
        } else if (e.bias) {
            each([&](V& y, int, std::size_t j, const M& m) SOFIE_ALWAYS_INLINE { y = Isa::add(y, Isa::load(m, e.bias + j)); });
        }
        if (e.residual) {
            each([&](V& y, int r, std::size_t j, const M& m) SOFIE_ALWAYS_INLINE {
                y = Isa::add(y, Isa::load(m, e.residual + r * ldc + j));
            });
        }
        if (e.clamp) {
            const V lo = Isa::set1(e.lo), hi = Isa::set1(e.hi);
            each([&](V& y, int, std::size_t, const M&) SOFIE_ALWAYS_INLINE { y = Isa::clamp(lo, hi, y); });
        }
    }
    each([&](V& y, int r, std::size_t j, const M& m) SOFIE_ALWAYS_INLINE { Isa::store(C + r * ldc + j, m, y); });
}

#if defined(__AVX512F__)
// ---------------------------------------------------------------------------
// AVX-512: R (1..6) rows x NV (1..4) zmm, the last one masked to nr.
// ---------------------------------------------------------------------------
inline constexpr std::size_t NR_FLOAT = 64;

// The vector operations store_register_tile uses, on zmm.
struct Zmm {
    using V = __m512;
    using M = __mmask16;
    static constexpr std::size_t kLanes = 16;
    SOFIE_ALWAYS_INLINE static M mask(std::size_t n) { return M((1u << n) - 1u); }  // lanes < n, n in 1..16
    SOFIE_ALWAYS_INLINE static V load(M m, const float* p) { return _mm512_maskz_loadu_ps(m, p); }
    SOFIE_ALWAYS_INLINE static void store(float* p, M m, V y) { _mm512_mask_storeu_ps(p, m, y); }
    SOFIE_ALWAYS_INLINE static V set1(float x) { return _mm512_set1_ps(x); }
    SOFIE_ALWAYS_INLINE static V add(V a, V b) { return _mm512_add_ps(a, b); }
    SOFIE_ALWAYS_INLINE static V mul(V a, V b) { return _mm512_mul_ps(a, b); }
    SOFIE_ALWAYS_INLINE static V fmadd(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
    // NaN and -0 kept: y, the second operand (maskz: _mm512_max_ps trips GCC 12 -Wmaybe-uninitialized)
    SOFIE_ALWAYS_INLINE static V clamp(V lo, V hi, V y) {
        return _mm512_maskz_min_ps(M(0xFFFF), hi, _mm512_maskz_max_ps(M(0xFFFF), lo, y));
    }
};

// kPack (full tiles of B as stored, b_vs 16): the B vectors loaded at each k are also
// stored to pack as 4 packed panels of kc x 16 (see tile_in_place). kRows: row k of B is at
// b + b_rows[k] (b_ks unused; a direct conv's taps, conv_direct.hxx).
template <int R, int NV, bool kPack = false, bool kRows = false>
inline void kernel_avx512(std::size_t kc, std::size_t nr, const float* a, std::size_t a_rs,
                          std::size_t a_ks, const float* SOFIE_RESTRICT b, std::size_t b_vs,
                          std::size_t b_ks, float* C, std::size_t ldc, const Epilogue<float, Identity>& e,
                          float* SOFIE_RESTRICT pack = nullptr, std::size_t pack_ps = 0,
                          const std::int32_t* b_rows = nullptr) {
    // With e.split_k (a product of 1 or 2 rows in all: dense layers at batch 1 and 2), two
    // accumulator sets take alternate k. One row of 4 vectors is 4 FMA chains, too few to
    // cover the FMA latency: mlp_5x200 at batch 1 ran at 4 cycles per k, the latency bound.
    constexpr int S = R <= 2 ? 2 : 1;
    __m512 acc[S][R][NV];
#pragma GCC unroll 4
    for (int s = 0; s < S; ++s)
#pragma GCC unroll 6
        for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
            for (int v = 0; v < NV; ++v) acc[s][r][v] = _mm512_setzero_ps();
    // Few integer registers: rows 0-2 of A are a0, a0 + a_rs, a0 + 2 a_rs and rows 3-5 the
    // same from a3 (scaled-index addresses), B's vectors b, b + b_vs, b + 2 b_vs, b + 3 b_vs.
    // Six row pointers and four panel pointers left GCC short of registers: it parked them in
    // mask registers, and on Intel each kmov back takes a slot of an FMA port.
#pragma GCC unroll 6
    for (int r = 0; r < R; ++r) {
        // The C tile is loaded or written after kc steps: fetched now, its misses overlap them.
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) _mm_prefetch(reinterpret_cast<const char*>(C + r * ldc + 16 * v), _MM_HINT_T0);
        if (e.last && e.residual) {  // so is the residual, which the last K block adds
#pragma GCC unroll 4
            for (int v = 0; v < NV; ++v)
                _mm_prefetch(reinterpret_cast<const char*>(e.residual + r * ldc + 16 * v), _MM_HINT_T0);
        }
    }
    const float* a0 = a;
    const float* a3 = a + 3 * a_rs;
    const std::size_t b_vs3 = 3 * b_vs;
    // One k step into the accumulator set ac.
    const float* const b_base = b;
    auto step = [&](__m512 (&ac)[R][NV]) SOFIE_EPILOGUE_INLINE {
        if constexpr (kRows) b = b_base + *b_rows++;
        __m512 bv[NV];
        bv[0] = _mm512_loadu_ps(b);
        if constexpr (NV > 1) bv[1] = _mm512_loadu_ps(b + b_vs);
        if constexpr (NV > 2) bv[2] = _mm512_loadu_ps(b + 2 * b_vs);
        if constexpr (NV > 3) bv[3] = _mm512_loadu_ps(b + b_vs3);
        if constexpr (kPack) {
            static_assert(NV == 4, "packs whole tiles");
            // B as stored is usually out of cache (the layer before wrote it) and its rows are
            // far apart, which the prefetchers do not follow
            const char* ahead = reinterpret_cast<const char*>(b + 8 * b_ks);
            _mm_prefetch(ahead, _MM_HINT_T0);
            _mm_prefetch(ahead + 64, _MM_HINT_T0);
            _mm_prefetch(ahead + 128, _MM_HINT_T0);
            _mm_prefetch(ahead + 192, _MM_HINT_T0);
            _mm512_store_ps(pack, bv[0]);
            _mm512_store_ps(pack + pack_ps, bv[1]);
            _mm512_store_ps(pack + 2 * pack_ps, bv[2]);
            _mm512_store_ps(pack + 3 * pack_ps, bv[3]);
            pack += 16;
        }
#pragma GCC unroll 6
        for (int r = 0; r < R; ++r) {
            const float* ap = (r < 3 ? a0 : a3) + std::size_t(r % 3) * a_rs;
            const __m512 x = _mm512_set1_ps(*ap);
#pragma GCC unroll 4
            for (int v = 0; v < NV; ++v) ac[r][v] = _mm512_fmadd_ps(x, bv[v], ac[r][v]);
        }
        a0 += a_ks;
        a3 += a_ks;
        if constexpr (!kRows) b += b_ks;
    };
    std::size_t k = 0;
    if constexpr (S > 1) {
        if (e.split_k) {
            for (; k + 2 <= kc; k += 2) {
                step(acc[0]);
                step(acc[1]);
            }
        }
    }
#pragma GCC unroll 2
    for (; k < kc; ++k) step(acc[0]);
    if constexpr (S > 1) {
        if (e.split_k) {
#pragma GCC unroll 6
            for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
                for (int v = 0; v < NV; ++v) acc[0][r][v] = _mm512_add_ps(acc[0][r][v], acc[1][r][v]);
        }
    }
    store_register_tile<Zmm, R, NV>(&acc[0][0][0], nr, C, ldc, e);
}

// kRows: B's rows through the table b_rows (see kernel_avx512).
template <int R, bool kRows = false>
inline void dispatch_nv(std::size_t kc, std::size_t nr, const float* a, std::size_t a_rs, std::size_t a_ks,
                        const float* b, std::size_t b_vs, std::size_t b_ks, float* C, std::size_t ldc,
                        const Epilogue<float, Identity>& e, const std::int32_t* b_rows = nullptr) {
    auto run = [&](auto nv) {
        kernel_avx512<R, decltype(nv)::value, false, kRows>(kc, nr, a, a_rs, a_ks, b, b_vs, b_ks, C, ldc, e, nullptr, 0,
                                                            b_rows);
    };
    switch ((nr + 15) / 16) {
        case 1: run(std::integral_constant<int, 1>{}); break;
        case 2: run(std::integral_constant<int, 2>{}); break;
        case 3: run(std::integral_constant<int, 3>{}); break;
        default: run(std::integral_constant<int, 4>{}); break;
    }
}

#elif defined(__AVX2__) && defined(__FMA__)
// ---------------------------------------------------------------------------
// AVX2 + FMA: R (1..6) rows x NV (1..2) ymm, the last one masked to nr.
// ---------------------------------------------------------------------------
inline constexpr std::size_t NR_FLOAT = 16;

inline __m256i avx2_mask(std::size_t n) {  // lanes < n set
    const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)), lanes);
}

// The vector operations store_register_tile uses, on ymm.
struct Ymm {
    using V = __m256;
    using M = __m256i;
    static constexpr std::size_t kLanes = 8;
    SOFIE_ALWAYS_INLINE static M mask(std::size_t n) { return avx2_mask(n); }
    SOFIE_ALWAYS_INLINE static V load(M m, const float* p) { return _mm256_maskload_ps(p, m); }
    SOFIE_ALWAYS_INLINE static void store(float* p, M m, V y) { _mm256_maskstore_ps(p, m, y); }
    SOFIE_ALWAYS_INLINE static V set1(float x) { return _mm256_set1_ps(x); }
    SOFIE_ALWAYS_INLINE static V add(V a, V b) { return _mm256_add_ps(a, b); }
    SOFIE_ALWAYS_INLINE static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
    SOFIE_ALWAYS_INLINE static V fmadd(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
    // NaN and -0 kept: y, the second operand
    SOFIE_ALWAYS_INLINE static V clamp(V lo, V hi, V y) { return _mm256_min_ps(hi, _mm256_max_ps(lo, y)); }
};

// kPack (full tiles): the B vectors loaded at each k are also stored to pack, one packed
// panel of kc x 16 (see tile_in_place). kRows: row k of B is at b + b_rows[k] (b_ks unused; a
// direct conv's taps, conv_direct.hxx).
template <int R, int NV, bool kPack = false, bool kRows = false>
inline void kernel_avx2(std::size_t kc, std::size_t nr, const float* a, std::size_t a_rs,
                        std::size_t a_ks, const float* SOFIE_RESTRICT b, std::size_t b_ks, float* C,
                        std::size_t ldc, const Epilogue<float, Identity>& e, float* SOFIE_RESTRICT pack = nullptr,
                        const std::int32_t* b_rows = nullptr) {
    // Two accumulator sets with e.split_k, as in kernel_avx512: mlp_5x200 at batch 1 built for
    // Haswell took 0.69 of the time of one set; 4 sets for one row took 1.1x the time of 2
    constexpr int S = R <= 2 ? 2 : 1;
    __m256 acc[S][R][NV];
#pragma GCC unroll 2
    for (int s = 0; s < S; ++s)
#pragma GCC unroll 6
        for (int r = 0; r < R; ++r)
#pragma GCC unroll 2
            for (int v = 0; v < NV; ++v) acc[s][r][v] = _mm256_setzero_ps();
    const float* ar[R];
#pragma GCC unroll 6
    for (int r = 0; r < R; ++r) ar[r] = a + std::size_t(r) * a_rs;
    // One k step into the accumulator set ac.
    auto step = [&](__m256 (&ac)[R][NV], std::size_t k) SOFIE_EPILOGUE_INLINE {
        __m256 bv[NV];
        const float* bk = kRows ? b + b_rows[k] : b + k * b_ks;
#pragma GCC unroll 2
        for (int v = 0; v < NV; ++v) bv[v] = _mm256_loadu_ps(bk + 8 * v);
        if constexpr (kPack) {
            static_assert(NV == 2, "packs whole tiles");
            _mm256_store_ps(pack + 16 * k, bv[0]);
            _mm256_store_ps(pack + 16 * k + 8, bv[1]);
        }
#pragma GCC unroll 6
        for (int r = 0; r < R; ++r) {
            const __m256 x = _mm256_broadcast_ss(ar[r] + k * a_ks);
#pragma GCC unroll 2
            for (int v = 0; v < NV; ++v) ac[r][v] = _mm256_fmadd_ps(x, bv[v], ac[r][v]);
        }
    };
    std::size_t k = 0;
    if constexpr (S > 1) {
        if (e.split_k) {
            for (; k + S <= kc; k += S) {
#pragma GCC unroll 4
                for (int s = 0; s < S; ++s) step(acc[s], k + s);
            }
        }
    }
#pragma GCC unroll 4
    for (; k < kc; ++k) step(acc[0], k);
    if constexpr (S > 1) {
        if (e.split_k) {
#pragma GCC unroll 4
            for (int s = 1; s < S; ++s)
#pragma GCC unroll 6
                for (int r = 0; r < R; ++r)
#pragma GCC unroll 2
                    for (int v = 0; v < NV; ++v) acc[0][r][v] = _mm256_add_ps(acc[0][r][v], acc[s][r][v]);
        }
    }
    store_register_tile<Ymm, R, NV>(&acc[0][0][0], nr, C, ldc, e);
}

// kRows: B's rows through the table b_rows (see kernel_avx2).
template <int R, bool kRows = false>
inline void dispatch_nv(std::size_t kc, std::size_t nr, const float* a, std::size_t a_rs, std::size_t a_ks,
                        const float* b, std::size_t, std::size_t b_ks, float* C, std::size_t ldc,
                        const Epilogue<float, Identity>& e, const std::int32_t* b_rows = nullptr) {
    if (nr > 8) {
        kernel_avx2<R, 2, false, kRows>(kc, nr, a, a_rs, a_ks, b, b_ks, C, ldc, e, nullptr, b_rows);
    } else {
        kernel_avx2<R, 1, false, kRows>(kc, nr, a, a_rs, a_ks, b, b_ks, C, ldc, e, nullptr, b_rows);
    }
}
#endif

// Columns one kernel call covers, per element type.
template <class T>
inline constexpr std::size_t kernel_nr() {
#if defined(SOFIE_RT_REGISTER_KERNELS)
    if constexpr (std::is_same_v<T, float>) return NR_FLOAT;
#endif
    return NR_GENERIC<T>;
}

#if defined(SOFIE_RT_REGISTER_KERNELS)
// The register kernels store with bias and residual only (and Relu or Clip, a max and a min
// in registers), so their 24 instances per ISA are shared by every activation (each op's
// epilogue is its own type: instancing the kernels per activation made a CNN's build
// minutes long); any other activation then runs over the tile's rows (activate_rows), still in L1.
template <class F>
inline Epilogue<float, Identity> register_epilogue(const Epilogue<float, F>& e) {
    Epilogue<float, Identity> ek{e.alpha, e.beta, e.first, e.last, e.bias, e.bias_per_row, e.residual, Identity{}};
    ek.split_k = e.split_k;
    if constexpr (is_clamp<F>) {
        ek.clamp = true;
        clamp_bounds(e.f, ek.lo, ek.hi);
    }
    return ek;
}

// fn(std::integral_constant<int, mr>{}) for a tile of mr rows (1..MR): the register kernels
// are instanced per row count.
template <class Fn>
inline void with_rows(std::size_t mr, Fn&& fn) {
    switch (mr) {
        case 1: fn(std::integral_constant<int, 1>{}); break;
        case 2: fn(std::integral_constant<int, 2>{}); break;
        case 3: fn(std::integral_constant<int, 3>{}); break;
        case 4: fn(std::integral_constant<int, 4>{}); break;
        case 5: fn(std::integral_constant<int, 5>{}); break;
        default: fn(std::integral_constant<int, 6>{}); break;
    }
}

// The activation register_epilogue left out, over the rows of a finished tile.
template <class F>
SOFIE_ACTIVATION_PASS void activate_tile(std::size_t mr, std::size_t nr, float* C, std::size_t ldc, const F& f) {
    for (std::size_t r = 0; r < mr; ++r) activate_row(C + r * ldc, nr, f);
}

template <class F>
inline void activate_rows(std::size_t mr, std::size_t nr, float* C, std::size_t ldc, const Epilogue<float, F>& e) {
    if constexpr (!std::is_same_v<F, Identity> && !is_clamp<F>) {
        if (e.last) activate_tile(mr, nr, C, ldc, e.f);
    }
}

// One float tile by the register kernels: B's first column at b, the next 16 columns b_vs
// further (AVX-512 only; AVX2 reads 16 columns side by side), the next k b_ks further.
template <class F>
inline void register_tile(std::size_t kc, std::size_t mr, std::size_t nr, const float* a, std::size_t a_rs,
                          std::size_t a_ks, const float* b, std::size_t b_vs, std::size_t b_ks, float* C,
                          std::size_t ldc, const Epilogue<float, F>& e, float* pack = nullptr,
                          [[maybe_unused]] std::size_t pack_ps = 0) {  // AVX2: one panel a tile
    const Epilogue<float, Identity> ek = register_epilogue(e);
    if (pack != nullptr) {  // a whole tile (mr == MR, nr == NR_FLOAT), B as stored
#if defined(__AVX512F__)
        kernel_avx512<MR, 4, true>(kc, nr, a, a_rs, a_ks, b, b_vs, b_ks, C, ldc, ek, pack, pack_ps);
#else
        kernel_avx2<MR, 2, true>(kc, nr, a, a_rs, a_ks, b, b_ks, C, ldc, ek, pack);
#endif
    } else {
        with_rows(mr, [&](auto r) {
            dispatch_nv<decltype(r)::value>(kc, nr, a, a_rs, a_ks, b, b_vs, b_ks, C, ldc, ek);
        });
    }
    activate_rows(mr, nr, C, ldc, e);
}

// One float tile (mr <= MR rows, nr <= NR_FLOAT columns) whose row k of B is the nr floats at
// b + b_rows[k], read in place: a direct conv's taps over its stride-phase planes
// (conv_direct.hxx). The floats up to the tile's last whole vector past nr must be readable.
template <class F>
inline void row_table_tile(std::size_t kc, std::size_t mr, std::size_t nr, const float* a, std::size_t a_rs,
                           std::size_t a_ks, const float* b, const std::int32_t* b_rows, float* C,
                           std::size_t ldc, const Epilogue<float, F>& e) {
    const Epilogue<float, Identity> ek = register_epilogue(e);
    with_rows(mr, [&](auto r) {
        dispatch_nv<decltype(r)::value, true>(kc, nr, a, a_rs, a_ks, b, 16, 0, C, ldc, ek, b_rows);
    });
    activate_rows(mr, nr, C, ldc, e);
}

#if defined(__AVX512F__)

// Most panels gemv_panels keeps in registers at once: two sets of 13 accumulators.
inline constexpr int kGemvPanels = 13;

// One row of A times NP packed panels of B (pack_b's layout, panel stride b_ps): every
// panel's accumulators stay in registers for the whole of K, so each k reads all NP panels'
// rows at once. mlp_5x200 at batch 1 streams its 800 KB of weights from L2: 64 columns (4
// panels) a pass took 5.55 us, all 13 panels a pass 5.34, the L2 read limit 4.79. With
// e.split_k two sets take alternate k, as in kernel_avx512; C's last vector is masked to nr.
template <int NP>
inline void gemv_panels(std::size_t K, std::size_t nr, const float* x, std::size_t x_ks,
                        const float* SOFIE_RESTRICT b, std::size_t b_ps, float* C, const Epilogue<float, Identity>& e) {
    __m512 acc[2][NP];
#pragma GCC unroll 16
    for (int v = 0; v < NP; ++v) acc[0][v] = acc[1][v] = _mm512_setzero_ps();
    // Panel v at g[v / 3] + (v % 3) b_ps: five pointers and scaled-index addresses, not 13
    // pointers (with the panel stride known only at run time, GCC kept some on the stack and
    // reloaded them every k: 5.87 against 5.36 us for mlp_5x200)
    constexpr int G = (NP + 2) / 3;
    const float* g[G];
#pragma GCC unroll 5
    for (int i = 0; i < G; ++i) g[i] = b + 3 * std::size_t(i) * b_ps;
    alternate_k(K, e.split_k, [&](auto set, std::size_t k) SOFIE_ALWAYS_INLINE {
        __m512(&ac)[NP] = acc[decltype(set)::value];
        const __m512 xk = _mm512_set1_ps(x[k * x_ks]);
#pragma GCC unroll 16
        for (int v = 0; v < NP; ++v) ac[v] = _mm512_fmadd_ps(xk, _mm512_loadu_ps(g[v / 3] + (v % 3) * b_ps), ac[v]);
#pragma GCC unroll 5
        for (int i = 0; i < G; ++i) g[i] += 16;
    });
    if (e.split_k) {
#pragma GCC unroll 16
        for (int v = 0; v < NP; ++v) acc[0][v] = _mm512_add_ps(acc[0][v], acc[1][v]);
    }
    store_register_tile<Zmm, 1, NP>(acc[0], nr, C, 0, e);
}

#else
// Most panels gemv_panels keeps in registers at once: two sets of 3 x 2 ymm accumulators.
inline constexpr int kGemvPanels = 3;

// gemv_panels for AVX2 (see the AVX-512 one): a panel is two ymm. mlp_5x200 at batch 1 built
// for AVX2 on the AVX-512 host: 7.5-8.1 us one panel a pass (kernel_avx2), 6.2-6.7 us three.
template <int NP>
inline void gemv_panels(std::size_t K, std::size_t nr, const float* x, std::size_t x_ks,
                        const float* SOFIE_RESTRICT b, std::size_t b_ps, float* C, const Epilogue<float, Identity>& e) {
    __m256 acc[2][NP][2];
#pragma GCC unroll 3
    for (int v = 0; v < NP; ++v) acc[0][v][0] = acc[0][v][1] = acc[1][v][0] = acc[1][v][1] = _mm256_setzero_ps();
    alternate_k(K, e.split_k, [&](auto set, std::size_t k) SOFIE_ALWAYS_INLINE {
        __m256(&ac)[NP][2] = acc[decltype(set)::value];
        const __m256 xk = _mm256_broadcast_ss(x + k * x_ks);
        const float* bk = b + 16 * k;
#pragma GCC unroll 3
        for (int v = 0; v < NP; ++v) {
            ac[v][0] = _mm256_fmadd_ps(xk, _mm256_loadu_ps(bk + v * b_ps), ac[v][0]);
            ac[v][1] = _mm256_fmadd_ps(xk, _mm256_loadu_ps(bk + v * b_ps + 8), ac[v][1]);
        }
    });
    if (e.split_k) {
#pragma GCC unroll 3
        for (int v = 0; v < NP; ++v) {
            acc[0][v][0] = _mm256_add_ps(acc[0][v][0], acc[1][v][0]);
            acc[0][v][1] = _mm256_add_ps(acc[0][v][1], acc[1][v][1]);
        }
    }
    // the group's columns end in its last panel's first or second vector
    if (nr > 16 * std::size_t(NP) - 8) {
        store_register_tile<Ymm, 1, 2 * NP>(&acc[0][0][0], nr, C, 0, e);
    } else {
        store_register_tile<Ymm, 1, 2 * NP - 1>(&acc[0][0][0], nr, C, 0, e);
    }
}
#endif

// fn(std::integral_constant<int, np>{}) for np in [NP, kGemvPanels]: gemv_panels per panel count.
template <int NP = 1, class Fn>
inline void with_panels(std::size_t np, Fn&& fn) {
    if constexpr (NP < kGemvPanels) {
        if (np > std::size_t(NP)) {
            with_panels<NP + 1>(np, fn);
            return;
        }
    }
    fn(std::integral_constant<int, NP>{});
}

// C[0, 0:N] = epilogue(alpha x op(B) + beta C) for one row x (element k at x[k x_ks]) and B
// packed by pack_b (whole K, panel stride K * 16): the panels in near-equal groups of at most
// kGemvPanels, each group one gemv_panels pass over K.
template <class F>
inline void gemv_packed(std::size_t N, std::size_t K, const float* x, std::size_t x_ks, const float* packed,
                        float* C, const Epilogue<float, F>& e) {
    const Epilogue<float, Identity> ek = register_epilogue(e);
    const std::size_t panels = (N + 15) / 16, groups = (panels + kGemvPanels - 1) / std::size_t(kGemvPanels);
    const std::size_t per_group = (panels + groups - 1) / groups, b_ps = 16 * K;
    for (std::size_t p0 = 0; p0 < panels; p0 += per_group) {
        const std::size_t np = std::min(per_group, panels - p0), j0 = 16 * p0, nr = std::min(16 * np, N - j0);
        Epilogue<float, Identity> eg = ek;
        if (eg.bias && !eg.bias_per_row) eg.bias += j0;
        if (eg.residual) eg.residual += j0;
        const float* b = packed + p0 * b_ps;
        with_panels(np, [&](auto n) { gemv_panels<decltype(n)::value>(K, nr, x, x_ks, b, b_ps, C + j0, eg); });
        activate_rows(1, nr, C + j0, 0, e);
    }
}

// Whether this build's float kernels can read B as stored (tile_in_place).
inline constexpr bool kReadsBInPlace = true;

// One full-width float tile (nr == NR_FLOAT) reading B as stored, row-major with row stride
// ldb: b is B at the tile's first column and the block's first k. With pack (mr == MR), the
// kernel also writes the tile's columns of B, packed, to pack (the tile's first panel): the
// other row tiles then read them packed, and packing costs stores, not a pass of its own.
// pack_ps: the panel stride of pack.
template <class F>
inline void tile_in_place(std::size_t kc, std::size_t mr, const float* a, std::size_t a_rs, std::size_t a_ks,
                          const float* b, std::size_t ldb, float* pack, std::size_t pack_ps, float* C,
                          std::size_t ldc, const Epilogue<float, F>& e) {
    register_tile(kc, mr, NR_FLOAT, a, a_rs, a_ks, b, 16, ldb, C, ldc, e, pack, pack_ps);
}
#else
inline constexpr bool kReadsBInPlace = false;

template <class F>
inline void tile_in_place(std::size_t, std::size_t, const float*, std::size_t, std::size_t, const float*,
                          std::size_t, float*, std::size_t, float*, std::size_t, const Epilogue<float, F>&) {}
#endif

// One tile: rows [0, mr) of A from a, columns [0, nr) of packed B starting at column j of
// the block (b: the block's first panel, b_ps: panel stride), C at the tile.
template <class T, class F>
inline void tile(std::size_t kc, std::size_t mr, std::size_t nr, const T* a, std::size_t a_rs,
                 std::size_t a_ks, const T* b, std::size_t b_ps, std::size_t j, T* C, std::size_t ldc,
                 const Epilogue<T, F>& e) {
#if defined(SOFIE_RT_REGISTER_KERNELS)
    if constexpr (std::is_same_v<T, float>) {
        register_tile(kc, mr, nr, a, a_rs, a_ks, b + (j / PW<float>) * b_ps, b_ps, PW<float>, C, ldc, e);
        return;
    }
#endif
    kernel_generic(kc, mr, nr, a, a_rs, a_ks, b + (j / PW<T>) * b_ps + j % PW<T>, C, ldc, e);
}

}  // namespace detail::gemm
}  // namespace rt
}  // namespace v0_1_0
}  // namespace sofie

#endif  // SOFIE_RT_GEMM_KERNELS_HXX_V0_1_0
