// Elementwise math for generated loops (placeholder: libm; replaced by vectorizable versions).
#ifndef SOFIE_RT_VMATH_HXX_V0_1_0
#define SOFIE_RT_VMATH_HXX_V0_1_0

#include <cmath>

namespace sofie {
inline namespace v0_1_0 {
namespace rt {
namespace vmath {

template <class T> inline T exp(T x) { return std::exp(x); }
template <class T> inline T expm1(T x) { return std::expm1(x); }
template <class T> inline T log(T x) { return std::log(x); }
template <class T> inline T log1p(T x) { return std::log1p(x); }
template <class T> inline T tanh(T x) { return std::tanh(x); }
template <class T> inline T erf(T x) { return std::erf(x); }
template <class T> inline T sigmoid(T x) { return T(1) / (T(1) + std::exp(-x)); }

}  // namespace vmath
}  // namespace rt
}  // namespace v0_1_0
}  // namespace sofie

#endif
