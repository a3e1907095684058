// What the C++ tests share: the inputs tests/cpp/reference.py computes, and the comparison of
// outputs with a stored onnxruntime reference (one value per line).
#ifndef SOFIE_TESTS_CPP_CHECK_HXX
#define SOFIE_TESTS_CPP_CHECK_HXX

#include <cmath>
#include <cstddef>
#include <cstdio>
#include <fstream>
#include <vector>

namespace sofie_test {

// x[i] = sin(0.37 i) + 0.25 cos(0.11 i), in double and then rounded, as reference.py does.
inline std::vector<float> inputs(std::size_t n) {
    std::vector<float> x(n);
    for (std::size_t i = 0; i < n; ++i) {
        const double d = static_cast<double>(i);
        x[i] = static_cast<float>(std::sin(0.37 * d) + 0.25 * std::cos(0.11 * d));
    }
    return x;
}

// 0 when every output is within rtol 1e-4 / atol 1e-5 of the reference, else 1 (says why).
inline int compare(const std::vector<float>& got, const char* reference_file) {
    std::ifstream in(reference_file);
    std::vector<float> want;
    for (float v; in >> v;) want.push_back(v);
    if (want.size() != got.size()) {
        std::printf("%s: %zu reference values, the model gave %zu\n", reference_file, want.size(), got.size());
        return 1;
    }
    double worst = 0;
    int bad = 0;
    for (std::size_t i = 0; i < got.size(); ++i) {
        const double err = std::fabs(double(got[i]) - want[i]);
        worst = std::fmax(worst, err);
        if (!(err <= 1e-5 + 1e-4 * std::fabs(want[i]))) {
            if (bad++ < 5) std::printf("output %zu: %.9g, reference %.9g\n", i, got[i], want[i]);
        }
    }
    std::printf("%zu outputs, max abs difference %.3g\n", got.size(), worst);
    return bad == 0 ? 0 : 1;
}

}  // namespace sofie_test

#endif  // SOFIE_TESTS_CPP_CHECK_HXX
