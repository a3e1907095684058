// Scalar helpers for ONNX elementwise ops where the C++ operator is undefined or traps:
// an integer remainder by zero (SIGFPE), INT_MIN % -1 (overflow) and a shift by the type's
// width or more (undefined). ONNX leaves these unspecified; sofie returns 0 for each, as the
// numpy reference in sofie.ir.dialects.scalar does.
#ifndef SOFIE_RT_ELEMENTWISE_HXX_V0_1_0
#define SOFIE_RT_ELEMENTWISE_HXX_V0_1_0

#include <cmath>
#include <type_traits>

#include "vmath.hxx"  // SOFIE_VMATH_INLINE

namespace sofie {
inline namespace v0_1_0 {
namespace rt {

// C's % and std::fmod: the remainder has the sign of the dividend (ONNX Mod, fmod=1).
template <class T>
inline T trunc_mod(T a, T b) {
    if constexpr (std::is_floating_point_v<T>) {
        return std::fmod(a, b);
    } else {
        if (b == T(0)) return T(0);
        if constexpr (std::is_signed_v<T>) {
            if (b == T(-1)) return T(0);
        }
        return static_cast<T>(a % b);
    }
}

// Python's %: the remainder has the sign of the divisor (ONNX Mod, fmod=0).
template <class T>
inline T floor_mod(T a, T b) {
    const T r = trunc_mod(a, b);
    if constexpr (std::is_unsigned_v<T>) {
        return r;
    } else {
        return (r != T(0) && ((r < T(0)) != (b < T(0)))) ? static_cast<T>(r + b) : r;
    }
}

// Spellings of the float functions that g++ vectorizes without -fno-trapping-math: rounding
// to nearest (roundps) and a compare, instead of std::floor / std::ceil, which it keeps
// scalar. Exact: the correction of +-1 is exact below 2^mantissa, and above it every value is
// an integer; the sign is x's, so -0.0 and ceil(-0.5) = -0.0 come out as std:: has them.
template <class T>
SOFIE_VMATH_INLINE T floor(T x) {
    const T t = std::nearbyint(x);
    return std::copysign(t - (t > x ? T(1) : T(0)), x);
}

template <class T>
SOFIE_VMATH_INLINE T ceil(T x) {
    const T t = std::nearbyint(x);
    return std::copysign(t + (t < x ? T(1) : T(0)), x);
}

// c ? a : b on floats as vmath's bitwise blend of both computed arms: with a plain ?: g++
// sinks an arm's vmath routine (Elu's expm1) into a branch and the loop stays scalar.
template <class T>
SOFIE_VMATH_INLINE T select(bool c, T a, T b) {
    return vmath::detail::select(c, a, b);
}

// ONNX BitShift on unsigned types: shifting out every bit gives 0.
template <class T>
inline T shift_left(T a, T b) {
    static_assert(std::is_unsigned_v<T>, "BitShift is defined on unsigned integers");
    return b >= T(sizeof(T) * 8) ? T(0) : static_cast<T>(a << b);
}

template <class T>
inline T shift_right(T a, T b) {
    static_assert(std::is_unsigned_v<T>, "BitShift is defined on unsigned integers");
    return b >= T(sizeof(T) * 8) ? T(0) : static_cast<T>(a >> b);
}

}  // namespace rt
}  // namespace v0_1_0
}  // namespace sofie

#endif  // SOFIE_RT_ELEMENTWISE_HXX_V0_1_0
