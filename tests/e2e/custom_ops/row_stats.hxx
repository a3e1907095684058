// A custom op's C++ given as a header (tests/e2e/test_custom_ops.py): Y = X * w (per column),
// S = sum or max of each row of Y, chosen by `mode`; `offset` is added to S.
#ifndef ROW_STATS_HXX
#define ROW_STATS_HXX

#include <cstring>

inline void row_stats(sofie::rt::View<const float> X, sofie::rt::View<float> Y, sofie::rt::View<float> S,
                      sofie::rt::List<float> w, const char* mode, std::int64_t offset) {
    const std::size_t cols = X.shape[X.rank - 1], rows = X.size() / cols;
    const bool use_max = std::strcmp(mode, "max") == 0;
    for (std::size_t r = 0; r < rows; ++r) {
        float acc = use_max ? -1e30f : 0.0f;
        for (std::size_t c = 0; c < cols; ++c) {
            const float v = X[r * cols + c] * w[c % w.size];
            Y[r * cols + c] = v;
            acc = use_max ? (v > acc ? v : acc) : acc + v;
        }
        S[r] = acc + float(offset);
    }
}

#endif
