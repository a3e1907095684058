// Run-time dims: result dims computed inside infer from tensor data (a ReduceSum's axes, a
// Reshape's target shape, TopK's k given as inputs). Each bind_* function checks the data
// against the input's shape, throwing std::runtime_error naming the node on a value ONNX
// does not allow, and writes the result's dims to `out` (out_rank of them). The generated run
// body declares the run-time ones as `const std::size_t d_R0 = ...;` right after, so later
// kernels read them like the interface's dims; the memory plan sized every buffer at their
// bounds, which the checks here guarantee they do not exceed.
#ifndef SOFIE_RT_RUN_TIME_DIMS_HXX_V0_1_0
#define SOFIE_RT_RUN_TIME_DIMS_HXX_V0_1_0

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace sofie {
inline namespace v0_1_0 {
namespace rt {

namespace detail {

[[noreturn]] inline void run_time_shape_error(const char* node, const std::string& what) {
    throw std::runtime_error(std::string("sofie: node '") + node + "': " + what);
}

// axis a of a rank-`rank` tensor, in [0, rank); throws when outside [-rank, rank).
template <class I>
inline std::size_t checked_axis(I a, std::size_t rank, const char* node, const char* what) {
    const long long r = static_cast<long long>(rank), v = static_cast<long long>(a);
    if (v < -r || v >= r) {
        run_time_shape_error(node, std::string(what) + " " + std::to_string(v) + " is out of range for rank " +
                                       std::to_string(rank));
    }
    return static_cast<std::size_t>(v < 0 ? v + r : v);
}

inline std::size_t product(const std::size_t* dims, std::size_t n) {
    std::size_t p = 1;
    for (std::size_t i = 0; i < n; ++i) p *= dims[i];
    return p;
}

}  // namespace detail

// The axes a Reduce* op reduces, as a bit mask over the input's axes: every axis for an
// empty list (none with noop_with_empty_axes); an axis out of range or named twice throws.
template <class I>
inline std::uint64_t reduce_axes_mask(const I* axes, std::size_t n_axes, std::size_t rank, bool noop,
                                      const char* node) {
    if (rank > 64) detail::run_time_shape_error(node, "a rank above 64");
    if (n_axes == 0) return noop || rank == 0 ? 0 : (rank == 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << rank) - 1);
    std::uint64_t mask = 0;
    for (std::size_t k = 0; k < n_axes; ++k) {
        const std::size_t a = detail::checked_axis(axes[k], rank, node, "axis");
        if (mask >> a & 1) detail::run_time_shape_error(node, "axis " + std::to_string(a) + " is named twice");
        mask |= std::uint64_t{1} << a;
    }
    return mask;
}

// A Reduce* result's dims for axes read at run time: a reduced axis is 1 (keepdims) or gone.
template <class I>
inline void bind_reduce(const I* axes, std::size_t n_axes, const std::size_t* in, std::size_t rank, bool keepdims,
                        bool noop, std::size_t* out, std::size_t out_rank, const char* node) {
    const std::uint64_t mask = reduce_axes_mask(axes, n_axes, rank, noop, node);
    std::size_t k = 0;
    for (std::size_t i = 0; i < rank; ++i) {
        const bool reduced = mask >> i & 1;
        if (reduced && !keepdims) continue;
        if (k == out_rank) break;
        out[k++] = reduced ? 1 : in[i];
    }
    if (k != out_rank) detail::run_time_shape_error(node, "the axes give a result of another rank than declared");
}

}  // namespace rt
}  // namespace v0_1_0
}  // namespace sofie

#endif  // SOFIE_RT_RUN_TIME_DIMS_HXX_V0_1_0
