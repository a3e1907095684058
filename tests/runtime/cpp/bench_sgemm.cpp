// Throughput check for sgemm; not run by pytest. Build e.g.:
//   g++ -std=c++17 -O2 -I../../../sofie/runtime bench_sgemm.cpp -o bench
#include <chrono>
#include <cstdio>
#include <vector>

#include "sofie_rt/sofie_rt.hxx"

namespace {

double gflops(bool tA, bool tB, std::size_t M, std::size_t N, std::size_t K) {
    std::vector<float> a(M * K, 0.5f), b(K * N, 0.25f), c(M * N, 0.0f);
    const std::size_t lda = tA ? M : K, ldb = tB ? K : N;
    const double flop = 2.0 * double(M) * double(N) * double(K);
    std::size_t reps = 1;
    for (;;) {
        const auto t0 = std::chrono::steady_clock::now();
        for (std::size_t r = 0; r < reps; ++r)
            sofie::rt::sgemm(tA, tB, M, N, K, 1.0f, a.data(), lda, b.data(), ldb, 0.0f, c.data(), N);
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (s > 0.2) return flop * double(reps) / s * 1e-9;
        reps *= 2;
    }
}

}  // namespace

int main() {
    std::printf("%s\n", sofie::rt::blas_name());
    const struct { bool tA, tB; std::size_t M, N, K; } cases[] = {
        {false, false, 256, 256, 256}, {false, true, 256, 256, 256}, {true, false, 256, 256, 256},
        {false, false, 1, 200, 200},   {false, true, 1, 200, 200},   {false, true, 1, 1024, 1024},
        {false, false, 64, 3136, 576}, {false, false, 1024, 1024, 1024},
    };
    for (const auto& c : cases)
        std::printf("tA=%d tB=%d M=%zu N=%zu K=%zu: %.2f GFLOP/s\n", c.tA, c.tB, c.M, c.N, c.K,
                    gflops(c.tA, c.tB, c.M, c.N, c.K));
}
