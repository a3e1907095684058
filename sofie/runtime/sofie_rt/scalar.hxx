// Scalar helpers the generated loops call for element types C++ has no operator for:
// float16 (stored as its IEEE binary16 bits in a std::uint16_t) and integer powers.
#ifndef SOFIE_RT_SCALAR_HXX_V0_1_0
#define SOFIE_RT_SCALAR_HXX_V0_1_0

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

namespace sofie {
inline namespace v0_1_0 {
namespace rt {

// binary16 bits -> float: exact (every half is a float).
inline float half_to_float(std::uint16_t h) {
    const std::uint32_t sign = std::uint32_t(h & 0x8000u) << 16;
    const std::uint32_t exp = (h >> 10) & 0x1fu;
    const std::uint32_t mant = h & 0x3ffu;
    std::uint32_t bits;
    if (exp == 0x1fu) {
        bits = sign | 0x7f800000u | (mant << 13);  // inf, NaN (payload kept)
    } else if (exp != 0) {
        bits = sign | ((exp + 112u) << 23) | (mant << 13);  // rebias 15 -> 127
    } else {
        // zero or subnormal: mant * 2^-24, exact in float
        const float v = std::ldexp(static_cast<float>(mant), -24);
        std::memcpy(&bits, &v, sizeof bits);
        bits |= sign;
    }
    float f;
    std::memcpy(&f, &bits, sizeof f);
    return f;
}

// double (or float, promoted exactly) -> binary16 bits, rounding to nearest even as numpy's
// astype(float16) does: one rounding from the source value, +-inf beyond the range.
inline std::uint16_t float_to_half(double x) {
    std::uint64_t bits;
    std::memcpy(&bits, &x, sizeof bits);
    const std::uint16_t sign = static_cast<std::uint16_t>((bits >> 48) & 0x8000u);
    if (std::isnan(x)) return static_cast<std::uint16_t>(sign | 0x7e00u);
    const double a = std::fabs(x);
    if (a >= 65520.0) return static_cast<std::uint16_t>(sign | 0x7c00u);  // rounds past 65504
    if (a < 6.103515625e-05) {
        // subnormal range (below 2^-14): units of 2^-24; nearbyint rounds half to even and the
        // scaling is exact. 1024 units is the smallest normal, whose bits are the same 0x400.
        return static_cast<std::uint16_t>(sign | static_cast<std::uint16_t>(std::nearbyint(a * 16777216.0)));
    }
    int e;
    const double m = std::frexp(a, &e);  // a = m * 2^e, m in [0.5, 1)
    // 11 significant bits: m * 2^11 in [1024, 2048), rounded half to even (exact scaling)
    std::uint32_t sig = static_cast<std::uint32_t>(std::nearbyint(m * 2048.0));
    if (sig == 2048u) {  // rounded up to the next binade
        sig = 1024u;
        ++e;
    }
    const std::uint32_t biased = static_cast<std::uint32_t>(e - 1 + 15);  // 1..30 here
    return static_cast<std::uint16_t>(sign | (biased << 10) | (sig - 1024u));
}

// Integer power, exact and wrapping like the other integer ops (ONNX Pow on integers). A
// negative exponent gives the truncated 1 / base^-exp: 0 unless base is 1 or -1 (0 for 0).
template <class T>
inline T ipow(T base, T exp) {
    static_assert(std::is_integral_v<T>, "ipow takes integers");
    if constexpr (std::is_signed_v<T>) {
        if (exp < 0) {
            if (base == 1) return T(1);
            if (base == -1) return (exp % 2) ? T(-1) : T(1);
            return T(0);
        }
    }
    using U = std::make_unsigned_t<decltype(+base)>;  // wrap in unsigned arithmetic: no UB
    U result = 1, b = static_cast<U>(base);
    for (auto e = exp; e > 0; e /= 2) {
        if (e % 2) result = static_cast<U>(result * b);
        b = static_cast<U>(b * b);
    }
    return static_cast<T>(result);
}

}  // namespace rt
}  // namespace v0_1_0
}  // namespace sofie

#endif  // SOFIE_RT_SCALAR_HXX_V0_1_0
