// GFLOP/s of sofie's built-in sgemm (sofie_rt/blas.hxx, SOFIE_BLAS_NONE) on conv- and
// MLP-sized shapes, one thread. Built with -O3 -march=native by bench/probes.py (which adds
// the runtime include path); prints {"M,N,K": gflops, ..., "kernel": ...} as JSON. Like
// fma_peak, the best of short repeated blocks: the machine is shared, and a block that ran
// undisturbed shows what the kernel does. A is [M, K] and B [K, N], not transposed: a conv's
// weights times its im2col matrix. Shapes may be given as arguments "M,N,K".
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "sofie_rt/blas.hxx"

namespace {

struct Shape {
    std::size_t M, N, K;
};

double best_gflops(const Shape& s, double seconds) {
    std::vector<float> a(s.M * s.K), b(s.K * s.N), c(s.M * s.N);
    for (std::size_t i = 0; i < a.size(); ++i) a[i] = float(i % 7) * 0.125f - 0.375f;
    for (std::size_t i = 0; i < b.size(); ++i) b[i] = float(i % 5) * 0.25f - 0.5f;
    const double flop = 2.0 * double(s.M) * double(s.N) * double(s.K);
    // repetitions per block: about 2 ms of work at 200 GFLOP/s
    const long reps = std::max(1L, long(2e-3 * 200e9 / flop));
    double best = 0.0;
    const auto start = std::chrono::steady_clock::now();
    while (std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() < seconds) {
        const auto t0 = std::chrono::steady_clock::now();
        for (long r = 0; r < reps; ++r)
            sofie::rt::sgemm(false, false, s.M, s.N, s.K, 1.0f, a.data(), s.K, b.data(), s.N, 0.0f,
                             c.data(), s.N);
        const double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        best = std::max(best, flop * double(reps) / t * 1e-9);
    }
    volatile float sink = c[c.size() / 2];
    (void)sink;
    return best;
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<Shape> shapes = {
        {128, 10000, 3200},  // 14x[Conv 5x5]: a whole 100x100 image
        {64, 3136, 576},     // ResNet 3x3 convs at 56x56, 28x28, 14x14, 7x7
        {128, 784, 1152},
        {256, 196, 2304},
        {512, 49, 4608},
        {32, 200, 200},      // MLPs at batch 32
        {32, 50, 50},
    };
    if (argc > 1) {
        shapes.clear();
        for (int i = 1; i < argc; ++i) {
            Shape s{};
            if (std::sscanf(argv[i], "%zu,%zu,%zu", &s.M, &s.N, &s.K) != 3) {
                std::fprintf(stderr, "gemm_peak: shape '%s' is not M,N,K\n", argv[i]);
                return 2;
            }
            shapes.push_back(s);
        }
    }
    std::printf("{");
    for (const Shape& s : shapes)
        std::printf("\"%zu,%zu,%zu\": %.3f, ", s.M, s.N, s.K, best_gflops(s, 0.5));
    std::printf("\"kernel\": \"%s\"}\n", sofie::rt::gemm_kernel_name());
    return 0;
}
