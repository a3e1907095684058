// Test driver for the direct conv (sofie_rt/conv_direct.hxx): runs the cases of <dir>/cases.txt,
// one per line "<id> N C H W M kH kW pad_top pad_left pad_bottom pad_right s_h s_w OH OW bias
// residual act pool_kH pool_kW pool_pad_top pool_pad_left pool_s_h pool_s_w PH PW" (pool_kH 0:
// conv2d_direct, else conv2d_direct_max_pool with that window), reading <dir>/<id>_{x,w,bias,res}.bin (float32) and writing y to
// <dir>/<id>_out.bin. act: 0 none, 1 Relu, 2 SiLU. The scratch starts full of NaN (the kernel
// must write its planes' zero padding) and y is followed by a guard of sentinels that must survive
// (the masked stores must not write past OW). Prints "<id> <scratch floats> <guard ok>" per case;
// test_conv_direct.py holds the numpy references.
#include <cmath>
#include <iostream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "float_files.hxx"
#include "sofie_rt/sofie_rt.hxx"

namespace rt = sofie::rt;

namespace {

struct Silu {
    float operator()(float x) const { return x / (1.0f + std::exp(-x)); }
};

constexpr std::size_t kGuard = 64;
constexpr float kSentinel = 12345.0f;

template <class F>
void run(const std::string& dir, const std::string& id, const std::size_t (&s)[16], const std::size_t (&pool)[8],
         bool bias, bool residual, F f) {
    const std::size_t N = s[0], C = s[1], H = s[2], W = s[3], M = s[4], kH = s[5], kW = s[6];
    const std::size_t pt = s[7], pl = s[8], pb = s[9], pr = s[10], sh = s[11], sw = s[12], OH = s[13], OW = s[14];
    const std::string base = dir + "/" + id;
    const std::vector<float> x = read_floats(base + "_x.bin"), w = read_floats(base + "_w.bin");
    const std::vector<float> b = bias ? read_floats(base + "_bias.bin") : std::vector<float>{};
    const std::vector<float> r = residual ? read_floats(base + "_res.bin") : std::vector<float>{};
    const bool pooled = pool[0] != 0;
    const std::size_t n_scratch = pooled ? rt::conv2d_direct_max_pool_scratch_floats(C, kH, kW, sh, sw, OH, OW, M, pool[0])
                                         : rt::conv2d_direct_scratch_floats(C, kH, kW, sh, sw, OH, OW);
    std::vector<float> scratch(n_scratch, std::numeric_limits<float>::quiet_NaN());
    const std::size_t n_y = pooled ? N * M * pool[6] * pool[7] : N * M * OH * OW;
    std::vector<float> y(n_y + kGuard, kSentinel);
    if (pooled) {
        rt::conv2d_direct_max_pool(x.data(), w.data(), bias ? b.data() : nullptr, y.data(), scratch.data(), N, C, H, W,
                                   M, kH, kW, pt, pl, pb, pr, sh, sw, OH, OW, f, pool[0], pool[1], pool[2], pool[3],
                                   pool[4], pool[5], pool[6], pool[7]);
    } else {
        rt::conv2d_direct(x.data(), w.data(), bias ? b.data() : nullptr, y.data(), scratch.data(), N, C, H, W, M, kH,
                          kW, pt, pl, pb, pr, sh, sw, OH, OW, f, residual ? r.data() : nullptr);
    }
    bool guard = true;
    for (std::size_t i = n_y; i < y.size(); ++i) guard = guard && y[i] == kSentinel;
    write_floats(base + "_out.bin", y.data(), n_y);
    // 1 where this build runs the conv over the phase planes, 0 where as conv2d (im2col + GEMM)
    std::cout << id << " " << n_scratch << " " << guard << " " << rt::detail::direct::takes(C * kH * kW) << "\n";
}

}  // namespace

int main(int argc, char** argv) {
    return run_cases(argc, argv, "conv_direct_driver", [](const std::string& dir, std::istringstream& in,
                                                          const std::string& id) {
        std::size_t s[16], pool[8];
        int bias, residual, act;
        for (std::size_t i = 0; i < 15; ++i) in >> s[i];
        in >> bias >> residual >> act;
        for (auto& v : pool) in >> v;
        if (act == 1) {
            run(dir, id, s, pool, bias, residual, rt::Relu<>{});
        } else if (act == 2) {
            run(dir, id, s, pool, bias, residual, Silu{});
        } else {
            run(dir, id, s, pool, bias, residual, rt::Identity{});
        }
    });
}
