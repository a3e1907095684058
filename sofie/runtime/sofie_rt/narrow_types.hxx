// ONNX's narrow element types, stored as their bits and converted through float (or int) by
// the generated loops: bfloat16 (std::uint16_t), the float8 family, float8e8m0 and float4e2m1
// (std::uint8_t), and the 4- and 2-bit integers (std::uint8_t holding the value's low bits,
// as ml_dtypes lays them out: int4 -3 is the byte 0x0d).
//
// The conversions follow ONNX Cast and its reference (numpy through ml_dtypes): rounding to
// nearest even from the double (or float, promoted exactly) source in one step, float8
// overflow saturating to +-max unless `saturate` is false (then inf for E5M2, NaN for the
// types without inf), and the float4e2m1 / int4 / int2 rules ml_dtypes has (see below).
#ifndef SOFIE_RT_NARROW_TYPES_HXX_V0_1_0
#define SOFIE_RT_NARROW_TYPES_HXX_V0_1_0

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

namespace sofie {
inline namespace v0_1_0 {
namespace rt {

// How a small float format spells what is not a finite number.
enum class Specials {
    ieee,  // exponent all ones: inf (mantissa 0) or NaN (bf16, E5M2)
    fn,    // no inf; all ones (exponent and mantissa) is NaN (E4M3FN)
    fnuz,  // no inf, no -0; the bits of -0 are the one NaN (E4M3FNUZ, E5M2FNUZ)
    none,  // neither inf nor NaN (E2M1)
};

struct MiniFloat {
    int exp_bits, man_bits, bias;
    Specials specials;
};

inline constexpr MiniFloat kBF16{8, 7, 127, Specials::ieee};
inline constexpr MiniFloat kE4M3FN{4, 3, 7, Specials::fn};
inline constexpr MiniFloat kE4M3FNUZ{4, 3, 8, Specials::fnuz};
inline constexpr MiniFloat kE5M2{5, 2, 15, Specials::ieee};
inline constexpr MiniFloat kE5M2FNUZ{5, 2, 16, Specials::fnuz};
inline constexpr MiniFloat kE2M1{2, 1, 1, Specials::none};

// bits -> float: exact (every value of these formats is a float).
inline float minifloat_to_float(std::uint32_t bits, const MiniFloat& f) {
    const std::uint32_t exp_mask = (1u << f.exp_bits) - 1u, man_mask = (1u << f.man_bits) - 1u;
    const bool negative = (bits >> (f.exp_bits + f.man_bits)) & 1u;
    const std::uint32_t e = (bits >> f.man_bits) & exp_mask, m = bits & man_mask;
    const float nan = std::numeric_limits<float>::quiet_NaN();
    if (f.specials == Specials::ieee && e == exp_mask) {
        const float v = m ? nan : std::numeric_limits<float>::infinity();
        return negative ? -v : v;
    }
    if (f.specials == Specials::fn && e == exp_mask && m == man_mask) return negative ? -nan : nan;
    if (f.specials == Specials::fnuz && negative && e == 0 && m == 0) return nan;
    // subnormal: m * 2^(1 - bias - M); normal: (2^M + m) * 2^(e - bias - M)
    const float v = e == 0 ? std::ldexp(static_cast<float>(m), 1 - f.bias - f.man_bits)
                           : std::ldexp(static_cast<float>(m + (1u << f.man_bits)), int(e) - f.bias - f.man_bits);
    return negative ? -v : v;
}

// The bits of a value beyond the largest finite one (or of +-inf).
inline std::uint32_t minifloat_overflow(std::uint32_t sign, const MiniFloat& f, bool saturate) {
    const std::uint32_t exp_mask = (1u << f.exp_bits) - 1u, man_mask = (1u << f.man_bits) - 1u;
    const std::uint32_t all = (exp_mask << f.man_bits) | man_mask;
    switch (f.specials) {
        case Specials::ieee: return sign | (saturate ? all - man_mask - 1u : all - man_mask);  // max or inf
        case Specials::fn: return sign | (saturate ? all - 1u : all);                         // max or NaN
        case Specials::fnuz: return saturate ? sign | all : 1u << (f.exp_bits + f.man_bits);  // max or NaN
        case Specials::none: break;
    }
    return sign | all;  // E2M1 has nothing else: +-max
}

// double (or float, promoted exactly) -> bits, rounding to nearest even in one step.
inline std::uint32_t float_to_minifloat(double x, const MiniFloat& f, bool saturate) {
    const int width = f.exp_bits + f.man_bits;
    const std::uint32_t sign = std::signbit(x) ? 1u << width : 0u;
    if (std::isnan(x)) {
        switch (f.specials) {
            case Specials::ieee: return sign | (((1u << f.exp_bits) - 1u) << f.man_bits) | (1u << (f.man_bits - 1));
            case Specials::fn: return sign | ((1u << width) - 1u);
            case Specials::fnuz: return 1u << width;
            case Specials::none: return sign ^ (1u << width);  // ml_dtypes: NaN -> -0, -NaN -> +0
        }
    }
    const double a = std::fabs(x);
    if (std::isinf(a)) return minifloat_overflow(sign, f, saturate || f.specials == Specials::none);
    const std::uint32_t zero_sign = f.specials == Specials::fnuz ? 0u : sign;  // fnuz: -0 is NaN
    const int emin = 1 - f.bias;
    std::uint32_t bits;
    if (a < std::ldexp(1.0, emin)) {
        // subnormal range: units of 2^(emin - M), exact scaling; nearbyint rounds half to even.
        // 2^M units is the smallest normal, whose bits are the same.
        bits = static_cast<std::uint32_t>(std::nearbyint(std::ldexp(a, f.man_bits - emin)));
        return bits == 0 ? zero_sign : sign | bits;
    }
    int e;
    const double m = std::frexp(a, &e);  // a = m * 2^e, m in [0.5, 1)
    std::uint32_t sig = static_cast<std::uint32_t>(std::nearbyint(std::ldexp(m, f.man_bits + 1)));
    if (sig == (2u << f.man_bits)) {  // rounded up into the next binade
        sig = 1u << f.man_bits;
        ++e;
    }
    const std::uint32_t biased = static_cast<std::uint32_t>(e - 1 + f.bias);
    bits = (biased << f.man_bits) | (sig - (1u << f.man_bits));
    const std::uint32_t largest = minifloat_overflow(0u, f, true);
    if (biased >= (1u << f.exp_bits) || bits > largest)
        return minifloat_overflow(sign, f, saturate || f.specials == Specials::none);
    return sign | bits;
}

inline float bf16_to_float(std::uint16_t b) {  // the high half of a float's bits
    const std::uint32_t bits = std::uint32_t(b) << 16;
    float v;
    std::memcpy(&v, &bits, sizeof v);
    return v;
}
inline std::uint16_t float_to_bf16(double x) {
    return static_cast<std::uint16_t>(float_to_minifloat(x, kBF16, false));
}
// The float overload (what elementwise math on bf16 rounds back through): bf16 is a float's
// high half, so rounding to nearest even is adding just under half an ulp plus the kept lsb.
inline std::uint16_t float_to_bf16(float x) {
    std::uint32_t bits;
    std::memcpy(&bits, &x, sizeof bits);
    if (std::isnan(x)) return static_cast<std::uint16_t>((bits >> 16) | 0x40u);  // quiet, sign kept
    bits += 0x7fffu + ((bits >> 16) & 1u);  // carries into the exponent; past max it is inf
    return static_cast<std::uint16_t>(bits >> 16);
}
inline float f8e4m3fn_to_float(std::uint8_t b) { return minifloat_to_float(b, kE4M3FN); }
inline float f8e4m3fnuz_to_float(std::uint8_t b) { return minifloat_to_float(b, kE4M3FNUZ); }
inline float f8e5m2_to_float(std::uint8_t b) { return minifloat_to_float(b, kE5M2); }
inline float f8e5m2fnuz_to_float(std::uint8_t b) { return minifloat_to_float(b, kE5M2FNUZ); }
inline float f4e2m1_to_float(std::uint8_t b) { return minifloat_to_float(b & 0xfu, kE2M1); }
inline std::uint8_t float_to_f8e4m3fn(double x, bool saturate) {
    return static_cast<std::uint8_t>(float_to_minifloat(x, kE4M3FN, saturate));
}
inline std::uint8_t float_to_f8e4m3fnuz(double x, bool saturate) {
    return static_cast<std::uint8_t>(float_to_minifloat(x, kE4M3FNUZ, saturate));
}
inline std::uint8_t float_to_f8e5m2(double x, bool saturate) {
    return static_cast<std::uint8_t>(float_to_minifloat(x, kE5M2, saturate));
}
inline std::uint8_t float_to_f8e5m2fnuz(double x, bool saturate) {
    return static_cast<std::uint8_t>(float_to_minifloat(x, kE5M2FNUZ, saturate));
}
// float4e2m1 has no inf or NaN: beyond +-6 (and inf) is +-6, always
inline std::uint8_t float_to_f4e2m1(double x) { return static_cast<std::uint8_t>(float_to_minifloat(x, kE2M1, true)); }

// float8e8m0: 2^(e - 127), 0xff is NaN, no sign and no zero.
inline float f8e8m0_to_float(std::uint8_t b) {
    return b == 0xffu ? std::numeric_limits<float>::quiet_NaN() : std::ldexp(1.0f, int(b) - 127);
}

enum class E8M0Round { up, down, nearest };

// From the float32 value's exponent bits, as ONNX's reference: `up` rounds any fraction away
// from zero, `down` drops it, `nearest` rounds at the first fraction bit (ties up);
// `saturate` stops rounding past 2^127. inf and NaN are 0xff; the sign is dropped.
inline std::uint8_t float_to_f8e8m0(double x, bool saturate, E8M0Round mode) {
    const float v = static_cast<float>(x);
    std::uint32_t bits;
    std::memcpy(&bits, &v, sizeof bits);
    const std::uint32_t e = (bits >> 23) & 0xffu;
    if (e == 0xffu) return 0xffu;
    bool up = false;
    if (mode == E8M0Round::up) up = (bits & 0x7fffffu) != 0;
    if (mode == E8M0Round::nearest) up = (bits & 0x400000u) && ((bits & 0x3fffffu) || e > 0);
    if (saturate && e == 0xfeu) up = false;
    return static_cast<std::uint8_t>(e + (up ? 1u : 0u));
}

// 4- and 2-bit integers: the value from the low bits (sign-extended for int4 / int2).
inline std::int32_t i4_to_int(std::uint8_t b) { return static_cast<std::int8_t>(std::uint8_t(b << 4)) >> 4; }
inline std::int32_t i2_to_int(std::uint8_t b) { return static_cast<std::int8_t>(std::uint8_t(b << 6)) >> 6; }
inline std::int32_t u4_to_int(std::uint8_t b) { return b & 0xf; }
inline std::int32_t u2_to_int(std::uint8_t b) { return b & 0x3; }

// To a `bits`-wide integer (signed or not), as ml_dtypes converts: an integer keeps its low
// bits (wraps, as ONNX's integer narrowing); a float truncates toward zero, and one whose
// truncation is out of range (or NaN) gives 0.
template <int Bits, bool Signed, class T>
inline std::uint8_t to_narrow_int(T v) {
    constexpr std::uint8_t mask = (1u << Bits) - 1u;
    if constexpr (std::is_floating_point_v<T>) {
        constexpr double lo = Signed ? -double(1 << (Bits - 1)) : 0.0;
        constexpr double hi = Signed ? double((1 << (Bits - 1)) - 1) : double(mask);
        const double t = std::trunc(static_cast<double>(v));
        if (!(t >= lo && t <= hi)) return 0;  // NaN too
        return static_cast<std::uint8_t>(static_cast<std::int32_t>(t) & mask);
    } else {
        return static_cast<std::uint8_t>(static_cast<std::uint64_t>(v) & mask);
    }
}
template <class T> inline std::uint8_t to_i4(T v) { return to_narrow_int<4, true>(v); }
template <class T> inline std::uint8_t to_u4(T v) { return to_narrow_int<4, false>(v); }
template <class T> inline std::uint8_t to_i2(T v) { return to_narrow_int<2, true>(v); }
template <class T> inline std::uint8_t to_u2(T v) { return to_narrow_int<2, false>(v); }

}  // namespace rt
}  // namespace v0_1_0
}  // namespace sofie

#endif  // SOFIE_RT_NARROW_TYPES_HXX_V0_1_0
