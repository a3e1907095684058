// Data movement through index tables and index tensors, for any element type:
// take_axes (Slice, Pad, Tile: per-axis tables fixed at compile time), Gather,
// GatherElements, GatherND, ScatterElements, ScatterND (indices known at run time,
// checked: an index outside [-n, n) throws std::out_of_range naming the node),
// ReverseSequence and Trilu. Row-major; sizes are runtime arguments (they may hold the batch).
#ifndef SOFIE_RT_INDEXING_HXX_V0_1_0
#define SOFIE_RT_INDEXING_HXX_V0_1_0

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>

namespace sofie {
inline namespace v0_1_0 {
namespace rt {

namespace detail {

// An index in [-n, n) made non-negative; anything else is the caller's error.
template <class I>
inline std::size_t checked_index(I i, std::size_t n, const char* where) {
    const auto s = static_cast<std::int64_t>(i);
    const auto m = static_cast<std::int64_t>(n);
    if (s < -m || s >= m)
        throw std::out_of_range(std::string("sofie: node '") + where + "': index " + std::to_string(s) +
                                " out of range for an axis of size " + std::to_string(n));
    return static_cast<std::size_t>(s < 0 ? s + m : s);
}

template <class T>
inline void fill_n(T* y, std::size_t n, T v) {
    std::fill(y, y + n, v);
}

// The table of the last tabled axis as runs: `len` output indices reading consecutive input
// indices from `src` on (or all the fill, src -1). A run is one memcpy (or fill) per row; a
// table of more than kMaxRuns runs, or of runs shorter than 4 on average, is read entry by entry.
struct Run {
    std::int64_t src;
    std::size_t len;
};
constexpr std::size_t kMaxRuns = 64;

inline std::size_t table_runs(const std::int64_t* t, std::size_t n, Run* runs) {
    std::size_t count = 0;
    for (std::size_t i = 0; i < n;) {
        std::size_t len = 1;
        while (i + len < n && (t[i] < 0 ? t[i + len] < 0 : t[i + len] == t[i] + std::int64_t(len))) ++len;
        if (count == kMaxRuns) return 0;
        runs[count++] = Run{t[i] < 0 ? -1 : t[i], len};
        i += len;
    }
    return count * 4 <= n ? count : 0;  // short runs: a memcpy each costs more than a load
}

// take_axes below the outermost axes: `axis` is the current axis, `last` the last one with a
// table; the axes after `last` are copied as contiguous blocks of `inner` elements.
template <class T>
struct Take {
    const std::size_t* out_dims;
    const std::size_t* in_strides;
    const std::int64_t* const* tables;
    std::size_t last, inner;
    T fill;
    const Run* runs;  // the last table as runs; none (0) when it has too many
    std::size_t n_runs;

    T* run(const T* x, T* y, std::size_t axis) const {
        const std::int64_t* t = tables[axis];
        const std::size_t n = out_dims[axis];
        if (axis == last) {
            for (std::size_t r = 0; r < n_runs; ++r) {
                const std::size_t len = runs[r].len * inner;
                if (runs[r].src < 0) fill_n(y, len, fill);
                else std::memcpy(y, x + std::size_t(runs[r].src) * inner, len * sizeof(T));
                y += len;
            }
            if (n_runs) return y;
            for (std::size_t i = 0; i < n; ++i, y += inner) {
                if (t[i] < 0) fill_n(y, inner, fill);
                else if (inner == 1) *y = x[t[i]];
                else std::memcpy(y, x + std::size_t(t[i]) * inner, inner * sizeof(T));
            }
            return y;
        }
        std::size_t block = inner;
        for (std::size_t a = axis + 1; a <= last; ++a) block *= out_dims[a];
        for (std::size_t i = 0; i < n; ++i) {
            const std::int64_t src = t ? t[i] : std::int64_t(i);
            if (src < 0) {
                fill_n(y, block, fill);
                y += block;
            } else {
                y = run(x + std::size_t(src) * in_strides[axis], y, axis + 1);
            }
        }
        return y;
    }
};

enum class Reduce { none, add, mul, max, min };

template <class T>
inline void reduce_into(T& dst, T v, Reduce r) {
    switch (r) {
        case Reduce::none: dst = v; break;
        case Reduce::add: dst = T(dst + v); break;
        case Reduce::mul: dst = T(dst * v); break;
        case Reduce::max: dst = std::max(dst, v); break;
        case Reduce::min: dst = std::min(dst, v); break;
    }
}

// Offsets of every element of an index tensor of `rank` dims, with the index along `axis`
// replaced: calls f(position in indices, offset in data without the axis term, coordinate).
template <class F>
inline void for_each_index(std::size_t rank, const std::size_t* dims, F f) {
    std::size_t total = 1;
    for (std::size_t a = 0; a < rank; ++a) total *= dims[a];
    std::size_t coord[16] = {};
    for (std::size_t p = 0; p < total; ++p) {
        f(p, coord);
        for (std::size_t a = rank; a-- > 0;) {
            if (++coord[a] < dims[a]) break;
            coord[a] = 0;
        }
    }
}

}  // namespace detail

// y[i0, ..., ir] = x[t0[i0], ..., tr[ir]], or `fill` where an entry is -1. tables[a] is
// nullptr where axis a is copied whole (in_dims[a] == out_dims[a]).
template <class T>
inline void take_axes(const T* x, T* y, std::size_t rank, const std::size_t* in_dims,
                      const std::size_t* out_dims, const std::int64_t* const* tables, T fill) {
    std::size_t last = 0;
    bool any = false;
    for (std::size_t a = 0; a < rank; ++a)
        if (tables[a]) last = a, any = true;
    std::size_t total = 1;
    for (std::size_t a = 0; a < rank; ++a) total *= out_dims[a];
    if (total == 0) return;
    if (!any) {
        std::memcpy(y, x, total * sizeof(T));
        return;
    }
    std::size_t inner = 1;
    for (std::size_t a = last + 1; a < rank; ++a) inner *= in_dims[a];
    std::size_t in_strides[16];
    std::size_t s = 1;
    for (std::size_t a = rank; a-- > 0;) in_strides[a] = s, s *= in_dims[a];
    detail::Run runs[detail::kMaxRuns];
    const std::size_t n_runs = detail::table_runs(tables[last], out_dims[last], runs);
    detail::Take<T> take{out_dims, in_strides, tables, last, inner, fill, runs, n_runs};
    take.run(x, y, 0);
}

// Gather along an axis: x is [outer, n, inner], indices has `count` entries, y [outer, count, inner].
template <class T, class I>
inline void gather(const T* x, const I* indices, T* y, std::size_t outer, std::size_t n,
                   std::size_t inner, std::size_t count, const char* where) {
    for (std::size_t o = 0; o < outer; ++o)
        for (std::size_t j = 0; j < count; ++j) {
            const std::size_t i = detail::checked_index(indices[j], n, where);
            T* dst = y + (o * count + j) * inner;
            const T* src = x + (o * n + i) * inner;
            if (inner == 1) *dst = *src;
            else std::memcpy(dst, src, inner * sizeof(T));
        }
}

// ReverseSequence over x[steps, batch, inner] (time_major) or x[batch, steps, inner]: for each
// batch entry b, steps t < lens[b] read step lens[b] - 1 - t, the others step t. A length
// outside [0, steps] throws std::out_of_range naming the node.
template <class T, class L>
inline void reverse_sequence(const T* x, const L* lens, T* y, std::size_t batch, std::size_t steps,
                             std::size_t inner, bool time_major, const char* where) {
    for (std::size_t b = 0; b < batch; ++b) {
        const auto len = static_cast<std::int64_t>(lens[b]);
        if (len < 0 || len > static_cast<std::int64_t>(steps))
            throw std::out_of_range(std::string("sofie: node '") + where + "': sequence length " +
                                    std::to_string(len) + " outside [0, " + std::to_string(steps) + "]");
        for (std::size_t t = 0; t < steps; ++t) {
            const std::size_t src = std::int64_t(t) < len ? std::size_t(len) - 1 - t : t;
            const std::size_t to = time_major ? t * batch + b : b * steps + t;
            const std::size_t from = time_major ? src * batch + b : b * steps + src;
            std::memcpy(y + to * inner, x + from * inner, inner * sizeof(T));
        }
    }
}

// GatherElements: y has the indices' shape; along `axis` the index replaces the coordinate.
template <class T, class I>
inline void gather_elements(const T* x, const I* indices, T* y, std::size_t rank, const std::size_t* x_dims,
                            const std::size_t* idx_dims, std::size_t axis, const char* where) {
    std::size_t strides[16];
    for (std::size_t a = rank, s = 1; a-- > 0;) strides[a] = s, s *= x_dims[a];
    detail::for_each_index(rank, idx_dims, [&](std::size_t p, const std::size_t* c) {
        std::size_t off = 0;
        for (std::size_t a = 0; a < rank; ++a)
            off += (a == axis ? detail::checked_index(indices[p], x_dims[a], where) : c[a]) * strides[a];
        y[p] = x[off];
    });
}

// GatherND: per batch, `count` index tuples of k entries into the k dims `dims`, each picking
// a slice of `slice` elements; x holds batch blocks of (prod dims) * slice elements.
template <class T, class I>
inline void gather_nd(const T* x, const I* indices, T* y, std::size_t batch, std::size_t count, std::size_t k,
                      const std::size_t* dims, std::size_t slice, const char* where) {
    std::size_t block = slice;
    for (std::size_t m = 0; m < k; ++m) block *= dims[m];
    for (std::size_t b = 0; b < batch; ++b)
        for (std::size_t j = 0; j < count; ++j) {
            const I* t = indices + (b * count + j) * k;
            std::size_t off = 0;
            for (std::size_t m = 0; m < k; ++m) off = off * dims[m] + detail::checked_index(t[m], dims[m], where);
            std::memcpy(y + (b * count + j) * slice, x + b * block + off * slice, slice * sizeof(T));
        }
}

// ScatterElements: y = x, then y[..., indices[p], ...] (op)= updates[p] in index order.
template <class T, class I>
inline void scatter_elements(const T* x, const I* indices, const T* updates, T* y, std::size_t rank,
                             const std::size_t* x_dims, const std::size_t* idx_dims, std::size_t axis,
                             detail::Reduce r, const char* where) {
    std::size_t strides[16], total = 1;
    for (std::size_t a = rank; a-- > 0;) strides[a] = total, total *= x_dims[a];
    if (x != y) std::memcpy(y, x, total * sizeof(T));
    detail::for_each_index(rank, idx_dims, [&](std::size_t p, const std::size_t* c) {
        std::size_t off = 0;
        for (std::size_t a = 0; a < rank; ++a)
            off += (a == axis ? detail::checked_index(indices[p], x_dims[a], where) : c[a]) * strides[a];
        detail::reduce_into(y[off], updates[p], r);
    });
}

// ScatterND: y = x, then for each of `count` index tuples of k entries into `dims`, the slice
// of `slice` elements there (op)= the next slice of updates.
template <class T, class I>
inline void scatter_nd(const T* x, const I* indices, const T* updates, T* y, std::size_t count, std::size_t k,
                       const std::size_t* dims, std::size_t slice, detail::Reduce r, const char* where) {
    std::size_t total = slice;
    for (std::size_t m = 0; m < k; ++m) total *= dims[m];
    if (x != y) std::memcpy(y, x, total * sizeof(T));
    for (std::size_t j = 0; j < count; ++j) {
        std::size_t off = 0;
        for (std::size_t m = 0; m < k; ++m)
            off = off * dims[m] + detail::checked_index(indices[j * k + m], dims[m], where);
        for (std::size_t e = 0; e < slice; ++e) detail::reduce_into(y[off * slice + e], updates[j * slice + e], r);
    }
}

// Trilu on [batch, rows, cols]: keeps column c of row r where c - r >= k (upper) or <= k (lower).
template <class T>
inline void trilu(const T* x, const std::int64_t* k, T* y, std::size_t batch, std::size_t rows,
                  std::size_t cols, bool upper) {
    const std::int64_t kk = k ? *k : 0;
    for (std::size_t b = 0; b < batch; ++b)
        for (std::size_t r = 0; r < rows; ++r) {
            const T* src = x + (b * rows + r) * cols;
            T* dst = y + (b * rows + r) * cols;
            // the kept columns are one range: [r + k, cols) for upper, [0, r + k] for lower
            const std::int64_t edge = std::int64_t(r) + kk + (upper ? 0 : 1);
            const std::size_t cut = std::size_t(std::clamp<std::int64_t>(edge, 0, std::int64_t(cols)));
            for (std::size_t c = 0; c < cols; ++c) dst[c] = (c < cut) != upper ? src[c] : T(0);
        }
}

}  // namespace rt
}  // namespace v0_1_0
}  // namespace sofie

#endif  // SOFIE_RT_INDEXING_HXX_V0_1_0
