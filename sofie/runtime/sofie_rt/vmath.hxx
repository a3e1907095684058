// Vectorizable elementwise math for float and double: exp, expm1, log, log1p, tanh,
// sigmoid, silu, erf, erfc, gelu (the erf form), in namespace sofie::rt::vmath.
//
// Every function is branch-free straight-line code: range reduction through the exponent
// bits (memcpy bit casts, integer adds and shifts), polynomials evaluated with FMA when the
// target has it, and bitwise selects of already computed values instead of branches.
// They are always inlined, so g++ -O3 vectorizes a loop such as
//     for (i...) y[i] = sofie::rt::vmath::exp(x[i]);
// into ymm/zmm code (tests/runtime/test_vmath.py checks the -fopt-info report).
//
// Accuracy (max error in ulps of the exact result), measured by tests/runtime/test_vmath.py
// over dense sweeps of the whole domain against double (for float) and long double or
// __float128 (for double) references, with and without hardware FMA; float and double alike:
//   exp 0.93, expm1 1.18, log 0.79, log1p 0.83, tanh 1.37, sigmoid 1.77, silu 2.9,
//   erf 1.10 (float: 1.41), erfc 1.45, gelu 1.63 (float: 2.36) (gelu keeps its relative
//   accuracy in the negative tail, where x/2 (1 + erf(x / sqrt 2)) computed as written
//   cancels to 0). erf and gelu on float take short forms (erf_short, gelu_short) that give
//   up an ulp for less than half the time: they run over whole activations.
// Edge cases follow std::: NaN in -> NaN out, +-inf, overflow to inf, underflow to 0
// through the denormals, -0.0 kept where std:: keeps it, saturation of tanh / sigmoid /
// erf / erfc. Only round-to-nearest is supported (the default floating-point environment),
// and not -ffast-math, which folds the error-free transformations and NaN tests away.
//
// The polynomial coefficients are minimax fits made by tools/fit_vmath.py.
#ifndef SOFIE_RT_VMATH_HXX_V0_1_0
#define SOFIE_RT_VMATH_HXX_V0_1_0

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

#if defined(__GNUC__) || defined(__clang__)
#define SOFIE_VMATH_INLINE inline __attribute__((always_inline))
#elif defined(_MSC_VER)
#define SOFIE_VMATH_INLINE __forceinline
#else
#define SOFIE_VMATH_INLINE inline
#endif

namespace sofie {
inline namespace v0_1_0 {
namespace rt {
namespace vmath {
namespace detail {

// ---------------------------------------------------------------------------
// Per-type constants
// ---------------------------------------------------------------------------
template <class T>
struct Fp;

template <>
struct Fp<float> {
    using U = std::uint32_t;
    static constexpr int kMant = 23;                // stored mantissa bits
    static constexpr U kBias = 127;
    static constexpr U kMantMask = 0x007fffffu;
    static constexpr U kSignMask = 0x80000000u;
    static constexpr U kSplitMask = 0xfffff000u;    // keeps the top 12 of 24 significant bits
    static constexpr U kHalfOffset = 512;           // even, > |n| for every exponent n used
    static constexpr float kRound = 12582912.0f;    // 1.5 * 2^23: x + kRound = x rounded to an integer
    static constexpr U kRoundBits = 0x4b400000u;    // bits of kRound
    static constexpr U kSqrtHalfBits = 0x3f3504f3u;
    static constexpr U kOneBits = 0x3f800000u;
    static constexpr float kMinNormal = 1.17549435e-38f;
    static constexpr float kDenormScale = 16777216.0f;  // 2^24
    static constexpr float kDenormShift = 24.0f;
    static constexpr bool kFma =
#if defined(__FP_FAST_FMAF)
        true;
#else
        false;
#endif
    static constexpr float kLog2e = 1.44269502f;
    static constexpr float kLn2Hi = 0.693359375f;       // 9 significant bits: n * kLn2Hi is exact
    static constexpr float kLn2Lo = -2.12194440e-4f;    // ln 2 - kLn2Hi
    static constexpr float kExpMin = -120.0f;           // exp is +0 below
    static constexpr float kExpMax = 89.0f;             // exp overflows to +inf above
    static constexpr float kExpm1Min = -18.0f;          // expm1 rounds to -1 below
    static constexpr float kNMax = 127.0f;              // largest exponent of a normal float
    static constexpr float kTanhMax = 9.5f;             // tanh rounds to +-1 above
    static constexpr float kErfMax = 4.5f;              // erf rounds to +-1 above
    static constexpr float kErfcMax = 10.5f;            // erfc underflows to +0 above
    static constexpr float kInvSqrt2Hi = 0.707106769f;  // 1/sqrt(2) = kInvSqrt2Hi + kInvSqrt2Lo
    static constexpr float kInvSqrt2Lo = 1.21016175e-08f;
    static constexpr U kScaleOff = 64;                 // 2^(n + 64) is normal for n in [-190, 63]
    static constexpr float kScaleInv = 5.42101086e-20f;  // 2^-64
};

template <>
struct Fp<double> {
    using U = std::uint64_t;
    static constexpr int kMant = 52;
    static constexpr U kBias = 1023;
    static constexpr U kMantMask = 0x000fffffffffffffull;
    static constexpr U kSignMask = 0x8000000000000000ull;
    static constexpr U kSplitMask = 0xfffffffff8000000ull;  // keeps the top 26 of 53 bits
    static constexpr U kHalfOffset = 4096;
    static constexpr double kRound = 6755399441055744.0;    // 1.5 * 2^52
    static constexpr U kRoundBits = 0x4338000000000000ull;
    static constexpr U kSqrtHalfBits = 0x3fe6a09e667f3bcdull;
    static constexpr U kOneBits = 0x3ff0000000000000ull;
    static constexpr double kMinNormal = 2.2250738585072014e-308;
    static constexpr double kDenormScale = 18014398509481984.0;  // 2^54
    static constexpr double kDenormShift = 54.0;
    static constexpr bool kFma =
#if defined(__FP_FAST_FMA)
        true;
#else
        false;
#endif
    static constexpr double kLog2e = 1.4426950408889634;
    static constexpr double kLn2Hi = 6.93147180369123816490e-01;  // 32 significant bits
    static constexpr double kLn2Lo = 1.90821492927058770002e-10;
    static constexpr double kExpMin = -760.0;
    static constexpr double kExpMax = 710.0;
    static constexpr double kExpm1Min = -40.0;
    static constexpr double kNMax = 1023.0;
    static constexpr double kTanhMax = 20.0;
    static constexpr double kErfMax = 6.5;
    static constexpr double kErfcMax = 27.5;
    static constexpr double kInvSqrt2Hi = 0.70710678118654757;
    static constexpr double kInvSqrt2Lo = -4.8336466567264567e-17;
    static constexpr U kScaleOff = 128;
    static constexpr double kScaleInv = 2.9387358770557188e-39;  // 2^-128
};

// ---------------------------------------------------------------------------
// Building blocks
// ---------------------------------------------------------------------------
template <class T>
SOFIE_VMATH_INLINE typename Fp<T>::U to_bits(T x) {
    typename Fp<T>::U u;
    std::memcpy(&u, &x, sizeof u);
    return u;
}

template <class T>
SOFIE_VMATH_INLINE T from_bits(typename Fp<T>::U u) {
    T x;
    std::memcpy(&x, &u, sizeof x);
    return x;
}

// a * b + c, fused when the target has an FMA instruction (then std::fma is inlined and
// vectorized), else two roundings. The algorithms are accurate either way.
template <class T>
SOFIE_VMATH_INLINE T fmadd(T a, T b, T c) {
    if constexpr (Fp<T>::kFma) {
        return std::fma(a, b, c);
    } else {
        return a * b + c;
    }
}

// Horner: horner(x, c0, c1, ..., cn) = c0 + x (c1 + x (... + x cn)).
template <class T>
SOFIE_VMATH_INLINE T horner(T, T c0) {
    return c0;
}
template <class T, class... C>
SOFIE_VMATH_INLINE T horner(T x, T c0, C... c) {
    return fmadd(horner<T>(x, c...), x, c0);
}

// c ? a : b as a bitwise blend. A plain ?: lets g++ sink the computation of a or b into
// a branch, which it then refuses to if-convert under the default -ftrapping-math, and
// the loop is not vectorized; the blend uses both.
template <class T>
SOFIE_VMATH_INLINE T select(bool c, T a, T b) {
    using U = typename Fp<T>::U;
    const U m = U(0) - U(c);
    return from_bits<T>((to_bits(a) & m) | (to_bits(b) & ~m));
}

template <class T>
SOFIE_VMATH_INLINE T clamp_nan(T x, T lo, T hi) {  // NaN stays NaN
    x = select(x < lo, lo, x);
    return select(x > hi, hi, x);
}

// The sign bit of x as a condition (an integer compare: -0 and -NaN count as negative).
template <class T>
SOFIE_VMATH_INLINE bool is_negative(T x) {
    using I = std::make_signed_t<typename Fp<T>::U>;
    return I(to_bits(x)) < 0;
}

// x with the low half of the significand cleared: x = hi(x) + (x - hi(x)), both exact, and
// products of two such high parts are exact.
template <class T>
SOFIE_VMATH_INLINE T high_half(T x) {
    return from_bits<T>(to_bits(x) & Fp<T>::kSplitMask);
}

// The exact a * b - p for p = fl(a * b): fma, or Dekker's product on split halves.
template <class T>
SOFIE_VMATH_INLINE T prod_err(T a, T b, T p) {
    if constexpr (Fp<T>::kFma) {
        return std::fma(a, b, -p);
    } else {
        const T ah = high_half(a), al = a - ah, bh = high_half(b), bl = b - bh;
        return al * bl - (((p - ah * bh) - al * bh) - ah * bl);
    }
}

// c - a * b, exact (up to a rounding far below its size) when a * b is close to c.
template <class T>
SOFIE_VMATH_INLINE T fnma_exact(T a, T b, T c) {
    if constexpr (Fp<T>::kFma) {
        return std::fma(-a, b, c);
    } else {
        const T p = a * b;
        return (c - p) - prod_err(a, b, p);
    }
}

// The exact a + b - s for s = fl(a + b) (Knuth's TwoSum, no ordering needed).
template <class T>
SOFIE_VMATH_INLINE T sum_err(T a, T b, T s) {
    const T bb = s - a;
    return (a - (s - bb)) + (b - bb);
}

// y * 2^n for integer n in [kExpMin * log2(e) - 1, kExpMax * log2(e) + 1] given as the low
// bits of an unsigned integer. Two factors 2^(n/2) keep each one a normal number, so the
// result underflows through the denormals and overflows to inf with one rounding.
template <class T>
SOFIE_VMATH_INLINE T scale_pow2(T y, typename Fp<T>::U n) {
    using F = Fp<T>;
    using U = typename F::U;
    const U n1 = ((n + F::kHalfOffset) >> 1) - (F::kHalfOffset >> 1);  // floor(n / 2)
    const U n2 = n - n1;
    const T s1 = from_bits<T>((n1 + F::kBias) << F::kMant);
    const T s2 = from_bits<T>((n2 + F::kBias) << F::kMant);
    return (y * s1) * s2;
}

// q(r) with e^r = 1 + r + r^2 q(r), |r| <= ln2 / 2.
// (Estrin's scheme for float: the same four FMAs as Horner, a shorter dependency chain.)
SOFIE_VMATH_INLINE float exp_q(float r) {
    const float r2 = r * r;
    const float lo = fmadd(r, 0.1666654348373413f, 0.4999999701976776f);
    const float hi = fmadd(r, 0.008366529829800129f, 0.04166720062494278f);
    return fmadd(r2, fmadd(r2, 0.0013882520142942667f, hi), lo);
}
SOFIE_VMATH_INLINE double exp_q(double r) {
    return horner(r, 0.5000000000000006, 0.16666666666666588, 0.04166666666657665,
                  0.008333333333389616, 0.0013888888931601724, 0.00019841269718903166,
                  2.480150522653898e-05, 2.7557407592206333e-06, 2.762605769633456e-07,
                  2.505377579335298e-08);
}

template <class T>
struct ExpReduced {
    T em1;                 // e^r - 1, |r| <= ln2 / 2
    typename Fp<T>::U k;   // the bits of n + kRound (+ kBias + kScaleOff with kOffset)
};

// e^(hi + mid + lo) = 2^n e^r: n = round((hi + mid + lo) / ln2), r = hi + mid + lo - n ln2
// by Cody-Waite (n ln2hi and hi - n ln2hi exact), r kept as r1 + r2 with r2 small (the
// rounding errors are carried in r2 rather than made), e^r - 1 = r1 + (r2 + r^2 q(r)) with
// a single rounding that matters. Without kOffset, hi is clamped to [kExpMin, kExpMax]
// (NaN passes through) so that -inf gives 0 and +inf gives inf; with it, hi must already be
// in [kExpMin, 0] and k's low bits are the biased exponent of 2^(n + kScaleOff). mid and lo
// (only with kExtra) must be small (|mid| <= 1, |lo| <= 1/4); mid is added exactly
// (TwoSum), lo's rounding error is ignored.
template <class T, bool kExtra, bool kOffset>
SOFIE_VMATH_INLINE ExpReduced<T> exp_reduce(T hi, T mid, T lo) {
    using F = Fp<T>;
    constexpr T kMagic = kOffset ? F::kRound + T(F::kBias + F::kScaleOff) : F::kRound;
    if constexpr (!kOffset) hi = clamp_nan(hi, F::kExpMin, F::kExpMax);
    T s = hi;
    if constexpr (kExtra) s = hi + (mid + lo);
    const T k = fmadd(s, F::kLog2e, kMagic);
    const T nf = k - kMagic;
    const T a = fmadd(nf, -F::kLn2Hi, hi);
    T r1 = a, r2 = nf * -F::kLn2Lo;
    if constexpr (kExtra) {
        r1 = a + mid;
        r2 = fmadd(nf, -F::kLn2Lo, sum_err(a, mid, r1) + lo);
    }
    const T r = r1 + r2;
    return {r1 + fmadd(r * r, exp_q(r), r2), to_bits(k)};
}

// (m + m_lo) e^(hi + mid + lo) with one rounding before the exact scaling by 2^n (which
// rounds once more only when the result is denormal): by two factors 2^(n/2) in general,
// by 2^(n + kScaleOff) 2^-kScaleOff with kOffset (cheaper; for hi in [kExpMin, 0]).
template <class T, bool kExtra, bool kMLo, bool kOffset = false>
SOFIE_VMATH_INLINE T exp_mul(T hi, T mid, T lo, T m, T m_lo) {
    using F = Fp<T>;
    const ExpReduced<T> e = exp_reduce<T, kExtra, kOffset>(hi, mid, lo);
    T y;
    if constexpr (kMLo) {
        y = m + fmadd(m, e.em1, fmadd(m_lo, e.em1, m_lo));
    } else {
        y = fmadd(m, e.em1, m);
    }
    if constexpr (kOffset) {
        return (y * from_bits<T>(e.k << F::kMant)) * F::kScaleInv;
    } else {
        return scale_pow2(y, e.k - F::kRoundBits);
    }
}

template <class T>
SOFIE_VMATH_INLINE T exp_plain(T x) {
    return exp_mul<T, false, false>(x, T(0), T(0), T(1), T(0));
}

// R(z) / z with log1p(f) = 2s + s R(z), s = f / (2 + f), z = s^2, f in [sqrt(1/2) - 1, sqrt(2) - 1].
SOFIE_VMATH_INLINE float log_c(float z) {
    return horner(z, 0.6666666865348816f, 0.3998589515686035f, 0.2971407473087311f);
}
SOFIE_VMATH_INLINE double log_c(double z) {
    return horner(z, 0.6666666666666666, 0.39999999999857255, 0.28571428665929727,
                  0.22222203769514132, 0.18183418464211004, 0.15315154516882548,
                  0.1480591743608826);
}

// log(x) + corr, corr being a small correction (the rounding error of 1 + x in log1p).
// x = 2^k m with m in [sqrt(1/2), sqrt(2)): the exponent bits are offset so that one shift
// gives k and one mask gives m; denormals are first scaled up by 2^24 (2^54 for double).
template <class T>
SOFIE_VMATH_INLINE T log_core(T x, T corr) {
    using F = Fp<T>;
    using U = typename F::U;
    const bool denormal = x < F::kMinNormal;
    const T xs = select(denormal, x * F::kDenormScale, x);
    const T kadj = select(denormal, F::kDenormShift + T(F::kBias), T(F::kBias));
    const U ix = to_bits(xs) + (F::kOneBits - F::kSqrtHalfBits);
    const T kb = from_bits<T>((ix >> F::kMant) + F::kRoundBits) - F::kRound;  // biased k, exact
    const T k = kb - kadj;
    const T f = from_bits<T>((ix & F::kMantMask) + F::kSqrtHalfBits) - T(1);
    const T s = f / (T(2) + f);
    const T z = s * s;
    const T R = z * log_c(z);
    const T hfsq = T(0.5) * f * f;
    // log1p(f) = f - hfsq + s (hfsq + R); k ln2 split so that k * kLn2Hi is exact.
    const T lo = fmadd(k, F::kLn2Lo, corr);
    T y = fmadd(k, F::kLn2Hi, f - (hfsq - fmadd(s, hfsq + R, lo)));
    y = select(x == std::numeric_limits<T>::infinity(), x, y);
    y = select(x == T(0), -std::numeric_limits<T>::infinity(), y);
    y = select(x < T(0), std::numeric_limits<T>::quiet_NaN(), y);
    y = select(x != x, x, y);
    return y;
}

// p(z) with tanh(x) = x + x z p(z), z = x^2 <= 0.625^2.
SOFIE_VMATH_INLINE float tanh_p(float z) {
    return horner(z, -0.3333333432674408f, 0.13333286345005035f, -0.05395342409610748f,
                  0.02172175794839859f, -0.008201420307159424f, 0.0021465462632477283f);
}
SOFIE_VMATH_INLINE double tanh_p(double z) {
    return horner(z, -0.3333333333333333, 0.13333333333333278, -0.053968253968068994,
                  0.021869488521546313, -0.008863235062545032, 0.003592120288875692,
                  -0.0014557586254813624, 0.000589558531029077, -0.0002372264121731157,
                  9.180547716395796e-05, -3.0320658419540167e-05, 6.057307230300633e-06);
}

// p(z) with erf(x) = x + x p(z), z = x^2 <= 0.84375^2.
SOFIE_VMATH_INLINE float erf_p(float z) {
    return horner(z, 0.12837916612625122f, -0.3761257529258728f, 0.11282775551080704f,
                  -0.026805104687809944f, 0.005055622663348913f, -0.0006342921406030655f);
}
SOFIE_VMATH_INLINE double erf_p(double z) {
    return horner(z, 0.12837916709551256, -0.37612638903183376, 0.11283791670934191,
                  -0.026866170640580816, 0.005223977574577571, -0.0008548323697509929,
                  0.00012055196972106312, -1.4922063262019045e-05, 1.640093713890577e-06,
                  -1.5709904374346508e-07, 1.0713825050341069e-08);
}

// The erfc tail, a in [15/32, kErfcMax]: erfc(a) = (t/2) exp(-a^2 + q(u)), t = 1/(1 + a/2),
// u = t - 1/2, q(u) = c1hi u + rest(u) (the fitted c1 split in two). s(u) approximates
// dlog(erfc(a) e^(a^2)) / dlog(t) to 2%.
SOFIE_VMATH_INLINE float erfc_c1hi(float) { return 1.3452863693237305f; }
SOFIE_VMATH_INLINE double erfc_c1hi(double) { return 1.3452864479553135; }
SOFIE_VMATH_INLINE float erfc_rest(float u) {
    return horner(u, 0.021353095769882202f, 3.3698096757461826e-08f, 0.18937356770038605f,
                  -0.3751565217971802f, -0.15799351036548615f, 0.2819608151912689f,
                  0.11356078833341599f, -0.29081419110298157f, -0.05173109471797943f,
                  0.2530919909477234f);
}
SOFIE_VMATH_INLINE double erfc_rest(double u) {
    return horner(u, 0.021353096503253042, 1.0518272464495172e-16, 0.18937322736761888,
                  -0.3751648818494821, -0.15796302986282004, 0.28239803383892753,
                  0.11257174780096992, -0.30026400098644246, -0.03743920572161694,
                  0.3449235752180745, -0.09598425267771318, -0.35697284456944933,
                  0.29244627569319454, 0.26004926315055943, -0.49437364687981655,
                  0.00488761035449356, 0.5586298020576049, -0.3930033052279824,
                  -0.31745742952937106, 0.7175369279137228, -0.21602044193458478,
                  -0.8392629810236396, 0.5360825149884558, 0.743341089023552);
}
SOFIE_VMATH_INLINE float erfc_s(float u) {
    return horner(u, 1.6712901592254639f, 1.4330819845199585f, -0.1277843713760376f);
}
SOFIE_VMATH_INLINE double erfc_s(double u) {
    return horner(u, 1.666679483234428, 1.4175018577311442, 0.013395414011045149);
}

// m erfc(a) for a = a_hi + a_lo in [15/32, kErfcMax], given a^2 = sq_hi + sq_lo exactly
// (e^(-a^2) is too sensitive to take a rounded square). t = 1/(1 + a/2) is rounded twice
// (the sum, the quotient); its exact relative error delta is computed and its effect
// s(u) delta added to the exponent. The exponent -a^2 + q(u) goes to exp_reduce as
// -sq_hi (exact) + c1hi u (exact with its low part) + the small rest, and m (t/2) as a
// product with its low part, so that the last rounding is the only large one.
template <class T, bool kMul>
SOFIE_VMATH_INLINE T erfc_tail(T a_hi, T a_lo, T sq_hi, T sq_lo, T m) {
    const T h = T(0.5) * a_hi;
    const T d = T(1) + h;
    const T d_lo = fmadd(T(0.5), a_lo, sum_err(T(1), h, d));  // d + d_lo = 1 + a/2
    const T t = T(1) / d;
    const T delta = fmadd(-t, d_lo, fnma_exact(t, d, T(1)));  // 1/(d + d_lo) = t (1 + delta)
    const T u = t - T(0.5);
    const T c1u = erfc_c1hi(u) * u;
    const T lo = erfc_rest(u) + (prod_err(erfc_c1hi(u), u, c1u) + fmadd(erfc_s(u), delta, -sq_lo));
    const T th = T(0.5) * t;
    if constexpr (kMul) {
        const T mh = m * th;
        return exp_mul<T, true, true, true>(-sq_hi, c1u, lo, mh, prod_err(m, th, mh));
    } else {
        return exp_mul<T, true, false, true>(-sq_hi, c1u, lo, th, T(0));
    }
}

// a^2 = sq_hi + sq_lo for a >= 0 (sq_hi exact, sq_lo rounded: far below an ulp of sq_hi).
template <class T>
SOFIE_VMATH_INLINE void square_split(T a, T& sq_hi, T& sq_lo) {
    const T ah = high_half(a);
    sq_hi = ah * ah;
    sq_lo = (a - ah) * (a + ah);
}

template <class T>
SOFIE_VMATH_INLINE T exp(T x) {
    return exp_plain(x);
}

// expm1: x = n ln2 + r (r kept with its exact rounding error c); then
// 2^n e^r - 1 = (2^n - 1) + 2^n r + 2^n (r^2 q(r) + c), the first sum done exactly
// (Fast2Sum: |2^n - 1| >= |2^n r| for n != 0). n is capped at the largest normal exponent
// and the result doubled when it was capped, so e.g. expm1(88.7f) is finite.
template <class T>
SOFIE_VMATH_INLINE T expm1(T x) {
    using F = Fp<T>;
    const T xc = clamp_nan(x, F::kExpm1Min, F::kExpMax);
    const T k = fmadd(xc, F::kLog2e, F::kRound);
    const T nf = k - F::kRound;
    const bool capped = nf > F::kNMax;
    const typename F::U n = to_bits(k) - F::kRoundBits - typename F::U(capped);
    const T rh = fmadd(nf, -F::kLn2Hi, xc);
    const T rl = nf * F::kLn2Lo;
    const T r = rh - rl;
    const T c = (rh - r) - rl;
    const T t = fmadd(r * r, exp_q(r), c);
    const T scale = from_bits<T>((n + F::kBias) << F::kMant);
    const T a = scale - T(1);
    const T b = scale * r;
    const T s = a + b;
    const T e = (a - s) + b;
    T y = s + fmadd(scale, t, e);
    y = select(capped, y * T(2), y);
    return select(x == T(0), x, y);
}

template <class T>
SOFIE_VMATH_INLINE T log(T x) {
    return log_core(x, T(0));
}

// log1p: u = 1 + x rounded; log(u) plus (the rounding error of u) / u.
template <class T>
SOFIE_VMATH_INLINE T log1p(T x) {
    const T u = T(1) + x;
    const T corr = (x - (u - T(1))) / u;
    const T y = log_core(u, corr);
    return select(std::fabs(x) < T(std::numeric_limits<T>::epsilon() / 4), x, y);
}

// tanh(|x|): odd polynomial below 0.625; above, with -2|x| = n ln2 + r (n in [-58, -1]),
// E = e^-2|x| = 2^n e^r and tanh = 1 - 2E / (1 + E), the quotient corrected for the
// rounding error of 1 + E (which alone could cost an ulp near tanh = 1). The sign is copied
// last, so -0 stays -0.
template <class T>
SOFIE_VMATH_INLINE T tanh(T x) {
    using F = Fp<T>;
    const T ax = std::fabs(x);
    const T z = x * x;
    const T small = fmadd(ax * z, tanh_p(z), ax);
    const T a = select(ax > F::kTanhMax, F::kTanhMax, ax);  // NaN stays
    constexpr T kRoundBiased = F::kRound + T(F::kBias);
    const T k = fmadd(a, T(-2) * F::kLog2e, kRoundBiased);
    const T nf = k - kRoundBiased;
    const T r = fmadd(nf, -F::kLn2Lo, fmadd(nf, -F::kLn2Hi, T(-2) * a));
    const T em1 = fmadd(r * r, exp_q(r), r);             // e^r - 1
    const T sc = from_bits<T>(to_bits(k) << F::kMant);  // 2^n
    const T one_sc = T(1) + sc;  // exact while E matters
    const T den = fmadd(sc, em1, one_sc);
    const T den_lo = fmadd(sc, em1, one_sc - den);  // 1 + E - den
    // t = 2E / (1 + E) = q (1 - den_lo / den), and 1 / den is 1 to 29%: plenty for a term
    // that small. tanh = 1 - t: t's errors are scaled down by t / tanh <= 0.8.
    const T q = fmadd(T(2) * sc, em1, T(2) * sc) / den;
    const T big = T(1) - fmadd(-q, den_lo, q);
    return std::copysign(select(ax < T(0.625), small, big), x);
}

// sigmoid: with -|x| = n ln2 + r (n <= 0), e^-|x| = 2^n e^r never overflows, and
//   x >= 0: 1 / (1 + e^-x) = 1 / (1 + 2^n e^r)
//   x <  0: e^x / (1 + e^x) = 2^n / (2^n + e^-r)
// so one polynomial, at rho = +-r, gives both as N / D, D = A e^rho + B, with N, A, B
// either 1 or 2^n: one exp, one division, and D rounded once (its small parts are summed
// first; 1 + 2^n exactly with its Fast2Sum error). The rounding of D and of the quotient
// are the error (<= 1.8 ulp measured). Correcting D and the quotient with their exact
// residuals gives < 1 ulp but costs a quarter more time, so it is not done. 2^n is formed
// as 2^(n + kScaleOff) 2^-kScaleOff: k's low bits are the biased exponent of the first
// factor. Sets num = N and neg, returns D.
template <class T>
SOFIE_VMATH_INLINE T sigmoid_parts(T x, T& num, bool& neg) {
    using F = Fp<T>;
    const T nax = from_bits<T>(to_bits(x) | F::kSignMask);  // -|x|
    const T na = select(nax < F::kExpMin, F::kExpMin, nax);  // NaN stays
    constexpr T kRoundBiased = F::kRound + T(F::kBias + F::kScaleOff);
    const T k = fmadd(na, F::kLog2e, kRoundBiased);
    const T nf = k - kRoundBiased;
    const T r = fmadd(nf, -F::kLn2Lo, fmadd(nf, -F::kLn2Hi, na));
    neg = is_negative(x);  // by the sign bit: -0 gives 1/2 either way
    const T rho = select(neg, -r, r);
    const T em1 = fmadd(rho * rho, exp_q(rho), rho);  // e^rho - 1
    const T s = from_bits<T>(to_bits(k) << F::kMant);  // 2^(n + kScaleOff)
    const T sc = s * F::kScaleInv;                      // 2^n (0 far below)
    const T sum = T(1) + sc;             // A + B
    const T sum_lo = (T(1) - sum) + sc;  // exact: sc <= 1
    num = select(neg, s, T(1));          // N 2^kScaleOff when neg
    return fmadd(select(neg, T(1), sc), em1, sum_lo) + sum;
}

template <class T>
SOFIE_VMATH_INLINE T sigmoid(T x) {
    using F = Fp<T>;
    T num;
    bool neg;
    const T d = sigmoid_parts(x, num, neg);
    return select(neg, num * F::kScaleInv, num) / d;  // 2^n / D rounds once, even at denormals
}

// silu(x) = x sigmoid(x) = x / (1 + E) for x >= 0 and x E / (1 + E) below, E = e^-|x| = 2^n e^r.
// SiLU runs over whole feature maps and the loop is bound by the FMA pipes (one 512-bit FMA
// per cycle on AMD Zen 4), so this is the short form: 11 multiply-adds and a division per
// vector against sigmoid's 17. E, x E and 1 + E round once each, without sigmoid's exact-sum
// correction: <= 2.9 ulp measured, against 1.8 (x E as fma(x 2^n, e^r - 1, x 2^n) gives 2.6
// ulp for one more multiply, 5% of the time). -|x| is clamped at kExpMin, where e^x has long
// underflowed; below 0 it is x, so the product uses it (-inf * 0 would be a NaN). E is formed
// as Es = 2^(n + kScaleOff) e^r; below 0 the quotient is x Es / (Es + 2^kScaleOff), so that
// results in the denormals round once. A NaN goes through x.
template <class T>
SOFIE_VMATH_INLINE T silu(T x) {
    using F = Fp<T>;
    const T nax = from_bits<T>(to_bits(x) | F::kSignMask);  // -|x|
    const T na = nax < F::kExpMin ? F::kExpMin : nax;
    constexpr T kRoundBiased = F::kRound + T(F::kBias + F::kScaleOff);
    const T k = fmadd(na, F::kLog2e, kRoundBiased);
    const T nf = k - kRoundBiased;
    const T r = fmadd(nf, -F::kLn2Lo, fmadd(nf, -F::kLn2Hi, na));
    const T em1 = fmadd(r * r, exp_q(r), r);           // e^r - 1
    const T s = from_bits<T>(to_bits(k) << F::kMant);  // 2^(n + kScaleOff)
    const T es = fmadd(s, em1, s);                      // E 2^kScaleOff
    const bool neg = x < T(0);
    // 1 + E in the scale of the numerator: (1 + E) 2^kScaleOff below 0
    const T d = fmadd(es, select(neg, T(1), F::kScaleInv), select(neg, T(1) / F::kScaleInv, T(1)));
    return select(neg, na * es, x) / d;
}

// r(a) ~ log(erfc(a)) on [0.84375, 4] for float, fitted with weight erfc(a) / erf(a) (the
// relative error it makes in erf = 1 - e^r): r's rounding errors shrink by that weight too.
SOFIE_VMATH_INLINE float erf_log_erfc(float a) {
    return horner(a, -9.782711276784539e-05f, -1.1280901432037354f, -0.6364675164222717f,
                  -0.10457313805818558f, 0.02254278026521206f, -0.003124041948467493f,
                  0.00020433060126379132f);
}

// erf for float, the short form (erf runs over whole feature maps): below 0.84375 the odd
// polynomial, above 1 - e^r(|x|) with |x| clamped at 4 (where erf rounds to 1): one
// polynomial and one exp (the offset form: r is in [kExpMin, 0]) against the accurate
// tail's division, exact squares and corrections. The rounding of e^r costs at most
// erfc / erf < 0.3 ulp of erf.
SOFIE_VMATH_INLINE float erf_short(float x) {
    const float ax = std::fabs(x);
    const float small = fmadd(x, erf_p(x * x), x);
    const float r = erf_log_erfc(clamp_nan(ax, 0.84375f, 4.0f));
    const float big = std::copysign(1.0f - exp_mul<float, false, false, true>(r, 0.0f, 0.0f, 1.0f, 0.0f), x);
    return select(ax < 0.84375f, small, big);
}

template <class T>
SOFIE_VMATH_INLINE T erf(T x) {
    using F = Fp<T>;
    if constexpr (std::is_same_v<T, float>) return erf_short(x);
    const T ax = std::fabs(x);
    const T small = fmadd(x, erf_p(x * x), x);
    const T a = clamp_nan(ax, T(0.46875), F::kErfMax);
    T sq_hi, sq_lo;
    square_split(a, sq_hi, sq_lo);
    const T big = std::copysign(T(1) - erfc_tail<T, false>(a, T(0), sq_hi, sq_lo, T(1)), x);
    return select(ax < T(0.84375), small, big);
}

template <class T>
SOFIE_VMATH_INLINE T erfc(T x) {
    using F = Fp<T>;
    const T ax = std::fabs(x);
    const T erf_ax = fmadd(ax, erf_p(x * x), ax);
    const T a = clamp_nan(ax, T(0.46875), F::kErfcMax);
    T sq_hi, sq_lo;
    square_split(a, sq_hi, sq_lo);
    const T tail = erfc_tail<T, false>(a, T(0), sq_hi, sq_lo, T(1));
    const T e = select(ax < T(0.46875), T(1) - erf_ax, tail);  // erfc(|x|)
    return select(x < T(0), T(2) - e, e);
}

// gelu(x) = x Phi(x) = x/2 (1 + erf(x / sqrt 2)): x/2 + x/2 erf(x / sqrt 2) near 0, else
// x - x/2 erfc(a) or x/2 erfc(a), a = |x| / sqrt 2, which keeps full relative accuracy in
// the negative tail where 1 + erf cancels. a and a^2 = x^2 / 2 are passed exactly, and
// x/2 erfc(a) is rounded once (x/2 goes into the tail as its multiplier).
// g(u) ~ G(a) / sqrt 2 for float, G(a) = a e^(a^2) erfc(a), u = t - 1/2, t = 1/(1 + a/2),
// a in [15/32, kErfcMax]; relative minimax fit. G is smooth and flat (it tends to
// 1/sqrt(pi)), so a small relative error of a costs little in G.
SOFIE_VMATH_INLINE float gelu_g(float u) {
    return horner(u, 0.3611840307712555f, -0.23647211492061615f, -0.5765596032142639f,
                  -0.6873859167098999f, -0.327769011259079f, 0.1697746068239212f,
                  0.21492522954940796f, -0.0967210978269577f, -0.11847781389951706f,
                  0.07208501547574997f);
}

// gelu for float, the short form: with a = |x| / sqrt 2 and x/2 = +-a / sqrt 2,
// x/2 erfc(a) = +-(G(a) / sqrt 2) e^(-a^2), so the tail needs no division by a and keeps its
// relative accuracy down to the underflow: y = x - tail above 0, -tail below, tail =
// g(u) e^(-x^2 / 2) with x^2 split exactly (e^(-a^2) is too sensitive for a rounded square).
// t's two roundings would cost up to 3 ulp near a = 1/2, where G is steep in t: their exact
// residual e (1/(d + d_lo) = t (1 + e)) moves u instead, u = t - 1/2 + t e, which rounds
// at a quarter of t's ulp. Near 0 the erf polynomial, as in the accurate form.
SOFIE_VMATH_INLINE float gelu_short(float x) {
    using F = Fp<float>;
    const float h = 0.5f * x;
    const float as = x * F::kInvSqrt2Hi;
    const float small = fmadd(h, fmadd(as, erf_p(as * as), as), h);
    const float xmax = F::kErfcMax * 1.4142135623730951f;
    const float xa = clamp_nan(std::fabs(x), 0.66291261f, xmax);  // 15/32 sqrt 2
    constexpr float kHalfInvSqrt2 = 0.353553385f;
    const float d = fmadd(xa, kHalfInvSqrt2, 1.0f);
    const float d_lo = fmadd(xa, kHalfInvSqrt2, 1.0f - d);  // exact while d <= 2
    const float t = 1.0f / d;
    const float e = fmadd(-t, d_lo, fnma_exact(t, d, 1.0f));
    float sq_hi, sq_lo;
    square_split(xa, sq_hi, sq_lo);
    const float g = gelu_g(fmadd(t, e, t - 0.5f));
    const float tail = exp_mul<float, true, false, true>(-0.5f * sq_hi, 0.0f, -0.5f * sq_lo, g, 0.0f);
    const float y = select(x >= 0.0f, x - tail, -tail);
    const float z = select(std::fabs(as) < 0.46875f, small, y);
    // x/2 alone (exact to rounding) for tiny |x|; this keeps -0 and the sign of denormals.
    return select(std::fabs(x) < std::numeric_limits<float>::epsilon() / 4, h, z);
}

template <class T>
SOFIE_VMATH_INLINE T gelu(T x) {
    using F = Fp<T>;
    if constexpr (std::is_same_v<T, float>) return gelu_short(x);
    const T h = T(0.5) * x;
    const T as = x * F::kInvSqrt2Hi;
    const T small = fmadd(h, fmadd(as, erf_p(as * as), as), h);
    const T xmax = F::kErfcMax * T(1.4142135623730951);  // erfc(xmax / sqrt 2) = 0
    const T xa = clamp_nan(std::fabs(x), T(0), xmax);
    const T a = xa * F::kInvSqrt2Hi;
    const T a_lo = fmadd(xa, F::kInvSqrt2Lo, prod_err(xa, F::kInvSqrt2Hi, a));
    T sq_hi, sq_lo;
    square_split(xa, sq_hi, sq_lo);
    const T hc = std::copysign(T(0.5) * xa, x);  // h, clamped as xa is
    const T tail = erfc_tail<T, true>(select(a < T(0.46875), T(0.46875), a), a_lo, T(0.5) * sq_hi,
                                      T(0.5) * sq_lo, hc);  // x/2 erfc(a)
    T y = select(x >= T(0), x - tail, tail);
    y = select(a < T(0.46875), small, y);
    // x/2 alone (exact to rounding) for tiny |x|; this keeps -0 and the sign of denormals.
    return select(xa < T(std::numeric_limits<T>::epsilon() / 4), h, y);
}

}  // namespace detail

// The public overloads, float and double.
#define SOFIE_VMATH_UNARY(name)                                                  \
    SOFIE_VMATH_INLINE float name(float x) { return detail::name<float>(x); }    \
    SOFIE_VMATH_INLINE double name(double x) { return detail::name<double>(x); }
SOFIE_VMATH_UNARY(exp)
SOFIE_VMATH_UNARY(expm1)
SOFIE_VMATH_UNARY(log)
SOFIE_VMATH_UNARY(log1p)
SOFIE_VMATH_UNARY(tanh)
SOFIE_VMATH_UNARY(sigmoid)
SOFIE_VMATH_UNARY(silu)
SOFIE_VMATH_UNARY(erf)
SOFIE_VMATH_UNARY(erfc)
SOFIE_VMATH_UNARY(gelu)
#undef SOFIE_VMATH_UNARY

}  // namespace vmath
}  // namespace rt
}  // namespace v0_1_0
}  // namespace sofie

#endif  // SOFIE_RT_VMATH_HXX_V0_1_0
