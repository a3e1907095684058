// Single-thread FMA peak: independent FMA chains over vector registers, one chain per
// accumulator, enough chains to cover the FMA latency on every port. Built with
// -O2 -march=native by bench/probes.py; prints {"gflops": best, "lanes": ...} as JSON.
#include <chrono>
#include <cstdio>

#if defined(__AVX512F__)
constexpr int kBytes = 64;
#else
constexpr int kBytes = 32;
#endif
typedef float vec __attribute__((vector_size(kBytes)));
constexpr int kLanes = kBytes / 4;
constexpr int kChains = 16;  // > latency (4) x FMA ports (2): never stalls on a dependency

// One block: kChains independent chains of `iters` FMAs each.
__attribute__((noinline)) static void chains(vec* acc, vec a, vec b, long iters) {
    vec r[kChains];
    for (int c = 0; c < kChains; ++c) r[c] = acc[c];
    for (long i = 0; i < iters; ++i) {
#pragma GCC unroll 16
        for (int c = 0; c < kChains; ++c) r[c] = r[c] * a + b;
        // keeps the compiler from folding the loop: the registers must hold real values
        asm volatile("" : "+v"(r[0]), "+v"(r[1]), "+v"(r[2]), "+v"(r[3]), "+v"(r[4]), "+v"(r[5]),
                     "+v"(r[6]), "+v"(r[7]));
        asm volatile("" : "+v"(r[8]), "+v"(r[9]), "+v"(r[10]), "+v"(r[11]), "+v"(r[12]), "+v"(r[13]),
                     "+v"(r[14]), "+v"(r[15]));
    }
    for (int c = 0; c < kChains; ++c) acc[c] = r[c];
}

int main() {
    vec acc[kChains];
    vec a, b;
    for (int l = 0; l < kLanes; ++l) { a[l] = 0.999999f; b[l] = 1e-7f; }
    for (int c = 0; c < kChains; ++c) acc[c] = a;
    const long iters = 500000;  // about 1 ms a block at full speed
    double best = 0.0;
    // best of many short blocks over a second: other processes share the core, and a block
    // that ran undisturbed shows the peak
    const auto start = std::chrono::steady_clock::now();
    while (std::chrono::steady_clock::now() - start < std::chrono::seconds(1)) {
        const auto t0 = std::chrono::steady_clock::now();
        chains(acc, a, b, iters);
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        const double gflops = 2.0 * kLanes * kChains * double(iters) / s * 1e-9;
        if (gflops > best) best = gflops;
    }
    float sink = 0.0f;
    for (int c = 0; c < kChains; ++c) sink += acc[c][0];
    std::printf("{\"gflops\": %.3f, \"lanes\": %d, \"sink\": %g}\n", best, kLanes, double(sink));
    return 0;
}
