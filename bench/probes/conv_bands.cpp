// The im2col convs of ResNet at batch 1, alone: the 7x7 stride-2 stem (conv2d) and the
// stride-2 convs (3x3 through conv2d_small_n, 1x1 through conv2d), one thread, bias + ReLU,
// with inputs, weights and outputs rotated over enough copies that each call finds them out
// of cache, as in a model's inference. Band rows and the small-N choice are what
// sofie/lowering/conv.py gives these shapes.
//
//   g++ -std=c++17 -O3 -march=native -I sofie/runtime bench/probes/conv_bands.cpp -o conv_bands
//   ./conv_bands [reps [name]]  prints "<shape> min_us median_us" per shape (name: a substring)
//   IM2COL_ONLY=1 ./conv_bands  times the bands' im2col alone
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "sofie_rt/sofie_rt.hxx"

namespace rt = sofie::rt;

namespace {

struct Shape {
    const char* name;
    std::size_t C, H, M, k, s, p, band;
    bool small_n;
};

// [ceil(M / 48)][K][48], zero padded past M: sofie.lowering.gemm_pack.packed_a_columns.
std::vector<float> pack_columns(const std::vector<float>& w, std::size_t M, std::size_t K) {
    const std::size_t P = rt::kSmallNPanel, panels = (M + P - 1) / P;
    std::vector<float> out(panels * K * P, 0.0f);
    for (std::size_t i = 0; i < M; ++i)
        for (std::size_t k = 0; k < K; ++k) out[(i / P) * K * P + k * P + i % P] = w[i * K + k];
    return out;
}

using rt::Relu;  // as the generated code spells a fused Relu

}  // namespace

int main(int argc, char** argv) {
    const int reps = argc > 1 ? std::atoi(argv[1]) : 30;
    const Shape shapes[] = {
        {"stem 3->64 7x7 s2 224", 3, 224, 64, 7, 2, 3, 3, false},
        {"r18 64->128 3x3 s2 56", 64, 56, 128, 3, 2, 1, 4, true},
        {"r50 128->128 3x3 s2 56", 128, 56, 128, 3, 2, 1, 3, true},
        {"r50 256->256 3x3 s2 28", 256, 28, 256, 3, 2, 1, 5, true},
        {"r50 512->512 3x3 s2 14", 512, 14, 512, 3, 2, 1, 7, true},
        {"r18 64->128 1x1 s2 56", 64, 56, 128, 1, 2, 0, 28, false},
        {"r50 256->512 1x1 s2 56", 256, 56, 512, 1, 2, 0, 9, false},
    };
    for (const Shape& sh : shapes) {
        if (argc > 2 && std::string(sh.name).find(argv[2]) == std::string::npos) continue;
        const std::size_t OH = (sh.H + 2 * sh.p - sh.k) / sh.s + 1, K = sh.C * sh.k * sh.k;
        const std::size_t xs = sh.C * sh.H * sh.H, ys = sh.M * OH * OH, ws = sh.M * K;
        // copies enough to cover 24 MB, so that every call's operands come from memory
        const std::size_t copies = std::max<std::size_t>(2, (24u << 20) / ((xs + ys + ws) * 4) + 1);
        std::vector<std::vector<float>> x(copies), w(copies), y(copies, std::vector<float>(ys));
        std::vector<float> bias(sh.M);
        for (std::size_t i = 0; i < sh.M; ++i) bias[i] = 0.01f * float(i % 7);
        for (std::size_t c = 0; c < copies; ++c) {
            x[c].resize(xs);
            for (std::size_t i = 0; i < xs; ++i) x[c][i] = float((i * 7 + c) % 13) * 0.1f - 0.6f;
            std::vector<float> wr(ws);
            for (std::size_t i = 0; i < ws; ++i) wr[i] = float((i * 5 + c) % 11) * 0.01f - 0.05f;
            w[c] = sh.small_n ? pack_columns(wr, sh.M, K) : wr;
        }
        std::vector<float> scratch(rt::conv2d_scratch_floats(sh.C, 1, sh.k, sh.k, OH, OH) + 4096);
        std::vector<double> t;
        for (int r = 0; r < reps + 3; ++r) {
            const std::size_t c = std::size_t(r) % copies;
            const auto t0 = std::chrono::steady_clock::now();
            if (std::getenv("IM2COL_ONLY")) {  // the bands' im2col alone, into the scratch
                for (std::size_t oh0 = 0; oh0 < OH; oh0 += sh.band)
                    rt::detail::im2col(x[c].data(), scratch.data(), sh.C, sh.H, sh.H, sh.k, sh.k, sh.p, sh.p, sh.s,
                                       sh.s, 1, 1, oh0, std::min(OH, oh0 + sh.band), OH);
            } else if (sh.small_n) {
                rt::conv2d_small_n(x[c].data(), w[c].data(), bias.data(), y[c].data(), scratch.data(), 1, sh.C,
                                   sh.H, sh.H, sh.M, sh.k, sh.k, sh.p, sh.p, sh.p, sh.p, sh.s, sh.s, 1, 1, OH, OH,
                                   Relu{}, nullptr, sh.band);
            } else {
                rt::conv2d(x[c].data(), w[c].data(), bias.data(), y[c].data(), scratch.data(), 1, sh.C, sh.H,
                           sh.H, sh.M, 1, sh.k, sh.k, sh.p, sh.p, sh.p, sh.p, sh.s, sh.s, 1, 1, OH, OH, Relu{},
                           nullptr, sh.band);
            }
            const auto t1 = std::chrono::steady_clock::now();
            if (r >= 3) t.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
        }
        std::sort(t.begin(), t.end());
        double check = 0;
        for (std::size_t i = 0; i < ys; i += 97) check += y[0][i];
        std::printf("%-26s %8.1f %8.1f   (check %.4f)\n", sh.name, t[0], t[t.size() / 2], check);
    }
}
