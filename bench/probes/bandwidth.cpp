// Single-thread read bandwidth at working-set sizes given on the command line (bytes):
// the sum of a buffer of that size, read again and again, with several vector accumulators
// so the adds never limit it. Built with -O3 -march=native by bench/probes.py; prints one
// JSON object {"<bytes>": GB/s, ...} (best of several passes).
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <algorithm>
#include <vector>

#if defined(__AVX512F__)
constexpr int kBytes = 64;
#else
constexpr int kBytes = 32;
#endif
typedef float vec __attribute__((vector_size(kBytes)));

// eight accumulators: enough loads in flight that the add latency never limits the reads
__attribute__((noinline)) static float sum(const vec* p, std::size_t n) {
    vec s0{}, s1{}, s2{}, s3{}, s4{}, s5{}, s6{}, s7{};
    for (std::size_t i = 0; i + 8 <= n; i += 8) {
        s0 += p[i]; s1 += p[i + 1]; s2 += p[i + 2]; s3 += p[i + 3];
        s4 += p[i + 4]; s5 += p[i + 5]; s6 += p[i + 6]; s7 += p[i + 7];
    }
    const vec s = ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7));
    float r = 0.0f;
    for (int l = 0; l < kBytes / 4; ++l) r += s[l];
    return r;
}

int main(int argc, char** argv) {
    std::printf("{");
    float sink = 0.0f;
    for (int k = 1; k < argc; ++k) {
        const std::size_t bytes = std::strtoull(argv[k], nullptr, 10);
        const std::size_t n = bytes / sizeof(vec);
        vec* p = static_cast<vec*>(std::aligned_alloc(64, n * sizeof(vec)));
        std::memset(static_cast<void*>(p), 0, n * sizeof(vec));
        // read about 256 MB per measurement, at least one pass
        const std::size_t passes = std::max<std::size_t>(1, (std::size_t(1) << 28) / bytes);
        double best = 0.0;
        for (int rep = 0; rep < 8; ++rep) {
            const auto t0 = std::chrono::steady_clock::now();
            for (std::size_t r = 0; r < passes; ++r) {
                asm volatile("" : : "r"(p) : "memory");  // each pass reads the memory again
                sink += sum(p, n);
            }
            const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            const double gbs = double(bytes) * double(passes) / s * 1e-9;
            if (gbs > best) best = gbs;
        }
        std::free(p);
        std::printf("%s\"%zu\": %.3f", k > 1 ? ", " : "", bytes, best);
    }
    std::printf(", \"sink\": %g}\n", double(sink));
    return 0;
}
