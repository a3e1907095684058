// What a custom operator's C++ receives (see sofie.CustomOp): each input and output as a
// View (pointer, shape, rank), list attributes as a List. Views are plain aggregates built
// on the stack for each call, so calling a custom op allocates nothing.
#ifndef SOFIE_RT_CUSTOM_HXX_V0_1_0
#define SOFIE_RT_CUSTOM_HXX_V0_1_0

#include <array>
#include <cstddef>
#include <cstdint>

namespace sofie {
inline namespace v0_1_0 {
namespace rt {

constexpr std::size_t kMaxCustomRank = 8;

// A tensor of a custom op: `T` is `const float` for an input, `float` for an output.
template <class T>
struct View {
    T* data;
    std::array<std::size_t, kMaxCustomRank> shape;
    std::size_t rank;

    std::size_t size() const {
        std::size_t n = 1;
        for (std::size_t i = 0; i < rank; ++i) n *= shape[i];
        return n;
    }
    T& operator[](std::size_t i) const { return data[i]; }
};

// An `ints` or `floats` attribute (its values are static constants of the generated code).
template <class T>
struct List {
    const T* data;
    std::size_t size;

    const T* begin() const { return data; }
    const T* end() const { return data + size; }
    const T& operator[](std::size_t i) const { return data[i]; }
};

}  // namespace rt
}  // namespace v0_1_0
}  // namespace sofie

#endif  // SOFIE_RT_CUSTOM_HXX_V0_1_0
