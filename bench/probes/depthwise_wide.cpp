// Depthwise conv shapes of MobileNet-V2 and EfficientNet-B0 alone: the phase-plane kernel
// (conv2d_depthwise) against conv2d_depthwise_small (on AVX-512 the row paths: one zmm per row
// up to 16 outputs, chunks of 16 columns beyond), one thread, Relu6 or SiLU epilogue. Inputs
// and outputs rotate over enough copies (>= 8 MB) that each call starts out of L1/L2, as in a
// model. The two kernels alternate in rounds; the minimum and median per call are printed.
//   g++ -O3 -march=native -std=c++17 -DSOFIE_BLAS_NONE -Isofie/runtime bench/probes/depthwise_wide.cpp -o dw
//   ./dw [rounds] [shape name filter]; DW_COPIES=n sets the rotated copies (1: data hot in L2/L3)
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "sofie_rt/sofie_rt.hxx"

namespace rt = sofie::rt;

struct Relu6 {
    SOFIE_EPILOGUE_INLINE float operator()(float x) const { return x < 0.0f ? 0.0f : x > 6.0f ? 6.0f : x; }
};
struct Silu {  // as the generated code's epilogue: vmath's vectorizable silu
    SOFIE_EPILOGUE_INLINE float operator()(float x) const { return rt::vmath::silu(x); }
};

struct Shape {
    const char* name;
    std::size_t C, H, k, s;
    bool silu;
};

template <class F>
void bench(const Shape& sh, int rounds, int iters) {
    const std::size_t C = sh.C, H = sh.H, W = sh.H, k = sh.k, s = sh.s, p = (k - 1) / 2;
    const std::size_t OH = (H + 2 * p - k) / s + 1, OW = OH;
    const std::size_t in = C * H * W, out = C * OH * OW;
    const std::size_t copies = getenv("DW_COPIES") ? std::size_t(std::atoi(getenv("DW_COPIES"))) : std::max<std::size_t>(2, (8u << 20) / ((in + out) * 4) + 1);
    std::mt19937 g(1);
    std::uniform_real_distribution<float> u(-1, 1);
    std::vector<float> x(in * copies), y(out * copies), w(C * k * k), b(C);
    for (auto& v : x) v = u(g);
    for (auto& v : w) v = u(g);
    for (auto& v : b) v = u(g);
    std::vector<float> scratch(rt::conv2d_depthwise_scratch_floats(k, k, s, s, OH, OW));
    F f;
    auto run = [&](int which, std::size_t i) {
        const float* xi = x.data() + (i % copies) * in;
        float* yi = y.data() + (i % copies) * out;
        if (which == 0) {
            rt::conv2d_depthwise(xi, w.data(), b.data(), static_cast<const float*>(nullptr), yi, scratch.data(),
                                 C, H, W, C, k, k, p, p, s, s, OH, OW, f);
        } else {
            rt::conv2d_depthwise_small(xi, w.data(), b.data(), yi, scratch.data(), 1, C, H, W, C, k, k, p, p, s, s,
                                       OH, OW, f, nullptr);
        }
    };
    // correctness of the new against the old on copy 0
    std::vector<float> ref(out);
    run(0, 0);
    std::copy(y.begin(), y.begin() + out, ref.begin());
    run(1, 0);
    float err = 0;
    for (std::size_t i = 0; i < out; ++i) err = std::max(err, std::fabs(ref[i] - y[i]));
    std::vector<double> t[2];
    std::size_t it = 1;
    for (int r = 0; r < rounds; ++r) {
        for (int which = 0; which < 2; ++which) {
            auto t0 = std::chrono::steady_clock::now();
            for (int j = 0; j < iters; ++j) run(which, it++);
            auto t1 = std::chrono::steady_clock::now();
            t[which].push_back(std::chrono::duration<double, std::micro>(t1 - t0).count() / iters);
        }
    }
    for (auto& v : t) std::sort(v.begin(), v.end());
    std::printf("%-26s old %8.1f us (med %8.1f)  new %8.1f us (med %8.1f)  new/old min %.2f med %.2f  err %.1e\n",
                sh.name, t[0][0], t[0][t[0].size() / 2], t[1][0], t[1][t[1].size() / 2], t[1][0] / t[0][0],
                t[1][t[1].size() / 2] / t[0][t[0].size() / 2], err);
}

int main(int argc, char** argv) {
    const Shape shapes[] = {
        {"mb 3x3 s1 112 C=32", 32, 112, 3, 1, false},   {"mb 3x3 s1 56 C=144", 144, 56, 3, 1, false},
        {"mb 3x3 s1 28 C=192", 192, 28, 3, 1, false},   {"mb 3x3 s1 14 C=384", 384, 14, 3, 1, false},
        {"mb 3x3 s1 14 C=576", 576, 14, 3, 1, false},   {"mb 3x3 s1 7 C=960", 960, 7, 3, 1, false},
        {"mb 3x3 s2 112 C=96", 96, 112, 3, 2, false},   {"mb 3x3 s2 56 C=144", 144, 56, 3, 2, false},
        {"mb 3x3 s2 28 C=192", 192, 28, 3, 2, false},   {"mb 3x3 s2 14 C=576", 576, 14, 3, 2, false},
        {"ef 3x3 s1 112 C=32", 32, 112, 3, 1, true},    {"ef 3x3 s1 56 C=144", 144, 56, 3, 1, true},
        {"ef 3x3 s2 112 C=96", 96, 112, 3, 2, true},    {"ef 3x3 s2 28 C=240", 240, 28, 3, 2, true},
        {"ef 5x5 s1 28 C=240", 240, 28, 5, 1, true},    {"ef 5x5 s1 14 C=480", 480, 14, 5, 1, true},
        {"ef 5x5 s1 14 C=672", 672, 14, 5, 1, true},    {"ef 5x5 s2 56 C=144", 144, 56, 5, 2, true},
        {"ef 5x5 s2 14 C=672", 672, 14, 5, 2, true},
    };
    const int rounds = argc > 1 ? std::atoi(argv[1]) : 15;
    const char* only = argc > 2 ? argv[2] : nullptr;
    for (const Shape& s : shapes) {
        if (only && !std::strstr(s.name, only)) continue;
        const int iters = std::max(2, int(2e6 / double(s.C * s.H * s.H * s.k * s.k)));
        if (s.silu) bench<Silu>(s, rounds, iters); else bench<Relu6>(s, rounds, iters);
    }
}
