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

// A run-time dim against its bound (its bound's expression at this call's dims, each at least
// 1): the arena and the caller's outputs were sized at bounds, so a larger value is refused.
inline std::size_t checked_run_time_dim(std::size_t value, std::size_t bound, const char* dim, const char* node) {
    if (value > bound) {
        detail::run_time_shape_error(node, std::string("the run-time dim ") + dim + " = " + std::to_string(value) +
                                               " exceeds its bound " + std::to_string(bound));
    }
    return value;
}

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

// Reshape to a target shape read at run time: 0 copies the input dim (unless allowzero), one
// -1 takes what is left; the element counts must agree.
template <class I>
inline void bind_reshape(const I* target, std::size_t n, const std::size_t* in, std::size_t rank, bool allowzero,
                         std::size_t* out, std::size_t out_rank, const char* node) {
    if (n != out_rank) detail::run_time_shape_error(node, "the target shape has another length than declared");
    const std::size_t count = detail::product(in, rank);
    std::size_t known = 1, infer_at = n;
    for (std::size_t i = 0; i < n; ++i) {
        const long long t = static_cast<long long>(target[i]);
        if (t == -1) {
            if (infer_at != n) detail::run_time_shape_error(node, "the target shape has more than one -1");
            infer_at = i;
            continue;
        }
        if (t < -1) detail::run_time_shape_error(node, "the target shape holds " + std::to_string(t));
        if (t == 0 && !allowzero) {
            if (i >= rank) detail::run_time_shape_error(node, "a 0 at position " + std::to_string(i) +
                                                                  " copies a dim the input lacks");
            out[i] = in[i];
        } else {
            out[i] = static_cast<std::size_t>(t);
        }
        known *= out[i];
    }
    if (infer_at != n) {
        if (known == 0 || count % known != 0) {
            detail::run_time_shape_error(node, "cannot infer the -1 of the target shape from " + std::to_string(count) +
                                                   " elements");
        }
        out[infer_at] = count / known;
        known *= out[infer_at];
    }
    if (known != count) {
        detail::run_time_shape_error(node, "the target shape holds " + std::to_string(known) + " elements, the input " +
                                               std::to_string(count));
    }
}

// Squeeze of axes read at run time: each must be in range, named once, and of size 1.
template <class I>
inline void bind_squeeze(const I* axes, std::size_t n, const std::size_t* in, std::size_t rank, std::size_t* out,
                         std::size_t out_rank, const char* node) {
    std::uint64_t mask = 0;
    if (rank > 64) detail::run_time_shape_error(node, "a rank above 64");
    for (std::size_t k = 0; k < n; ++k) {
        const std::size_t a = detail::checked_axis(axes[k], rank, node, "axis");
        if (mask >> a & 1) detail::run_time_shape_error(node, "axis " + std::to_string(a) + " is named twice");
        if (in[a] != 1) {
            detail::run_time_shape_error(node, "cannot squeeze axis " + std::to_string(a) + " of size " +
                                                   std::to_string(in[a]));
        }
        mask |= std::uint64_t{1} << a;
    }
    if (n == 0) {  // every axis of size 1
        for (std::size_t a = 0; a < rank; ++a) mask |= std::uint64_t{in[a] == 1} << a;
    }
    std::size_t k = 0;
    for (std::size_t a = 0; a < rank; ++a) {
        if (mask >> a & 1) continue;
        if (k == out_rank) detail::run_time_shape_error(node, "the axes give another rank than declared");
        out[k++] = in[a];
    }
    if (k != out_rank) detail::run_time_shape_error(node, "the axes give another rank than declared");
}

// Unsqueeze at axes read at run time (axes of the result, in range and named once).
template <class I>
inline void bind_unsqueeze(const I* axes, std::size_t n, const std::size_t* in, std::size_t rank, std::size_t* out,
                           std::size_t out_rank, const char* node) {
    if (out_rank != rank + n || out_rank > 64) detail::run_time_shape_error(node, "the axes give another rank than declared");
    std::uint64_t mask = 0;
    for (std::size_t k = 0; k < n; ++k) {
        const std::size_t a = detail::checked_axis(axes[k], out_rank, node, "axis");
        if (mask >> a & 1) detail::run_time_shape_error(node, "axis " + std::to_string(a) + " is named twice");
        mask |= std::uint64_t{1} << a;
    }
    for (std::size_t j = 0, i = 0; j < out_rank; ++j) out[j] = mask >> j & 1 ? 1 : in[i++];
}

// TopK with k read at run time: 0 <= k <= the axis size.
template <class I>
inline void bind_top_k(const I* k, std::size_t n, const std::size_t* in, std::size_t rank, std::size_t axis,
                       std::size_t* out, std::size_t out_rank, const char* node) {
    if (n != 1) detail::run_time_shape_error(node, "K must hold one value");
    const long long v = static_cast<long long>(k[0]);
    if (v < 0 || static_cast<unsigned long long>(v) > in[axis]) {
        detail::run_time_shape_error(node, "k = " + std::to_string(v) + " is outside [0, " + std::to_string(in[axis]) +
                                               "] (the axis size)");
    }
    for (std::size_t a = 0; a < rank && a < out_rank; ++a) out[a] = a == axis ? static_cast<std::size_t>(v) : in[a];
}

}  // namespace rt
}  // namespace v0_1_0
}  // namespace sofie

#endif  // SOFIE_RT_RUN_TIME_DIMS_HXX_V0_1_0
