// Test driver for the small-image depthwise conv (sofie_rt/depthwise_small.hxx): runs the cases
// of <dir>/cases.txt, one per line "<id> N C H W M kH kW pad_top pad_left s_h s_w OH OW bias
// residual act", reading <dir>/<id>_{x,w,bias,res}.bin (float32) and writing y to
// <dir>/<id>_out.bin. act: 0 none, 1 Relu6, 2 SiLU. The scratch starts full of NaN (the kernel
// must write its own zero padding) and y is followed by a guard of sentinels that must survive
// (the row stores must not write past OW). Prints "<id> <scratch floats> <guard ok>" per case;
// test_depthwise_small.py holds the numpy references.
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "float_files.hxx"
#include "sofie_rt/sofie_rt.hxx"

namespace rt = sofie::rt;

namespace {

std::vector<float> read(const std::string& path) { return read_floats(path); }

void write(const std::string& path, const float* v, std::size_t n) { write_floats(path, v, n); }

struct Relu6 {
    float operator()(float x) const { return x < 0.0f ? 0.0f : x > 6.0f ? 6.0f : x; }
};
struct Silu {
    float operator()(float x) const { return x / (1.0f + std::exp(-x)); }
};

constexpr std::size_t kGuard = 64;
constexpr float kSentinel = 12345.0f;

template <class F>
void run(const std::string& dir, const std::string& id, const std::size_t (&s)[13], bool bias,
         bool residual, F f) {
    const std::size_t N = s[0], C = s[1], H = s[2], W = s[3], M = s[4], kH = s[5], kW = s[6];
    const std::size_t pt = s[7], pl = s[8], sh = s[9], sw = s[10], OH = s[11], OW = s[12];
    const std::string base = dir + "/" + id;
    const std::vector<float> x = read(base + "_x.bin"), w = read(base + "_w.bin");
    const std::vector<float> b = bias ? read(base + "_bias.bin") : std::vector<float>{};
    const std::vector<float> r = residual ? read(base + "_res.bin") : std::vector<float>{};
    const std::size_t n_scratch = rt::conv2d_depthwise_small_scratch_floats(kH, kW, sh, sw, OH, OW);
    std::vector<float> scratch(n_scratch, std::numeric_limits<float>::quiet_NaN());
    const std::size_t n_y = N * M * OH * OW;
    std::vector<float> y(n_y + kGuard, kSentinel);
    rt::conv2d_depthwise_small(x.data(), w.data(), bias ? b.data() : nullptr, y.data(), scratch.data(), N,
                               C, H, W, M, kH, kW, pt, pl, sh, sw, OH, OW, f,
                               residual ? r.data() : nullptr);
    bool guard = true;
    for (std::size_t i = n_y; i < y.size(); ++i) guard = guard && y[i] == kSentinel;
    write(base + "_out.bin", y.data(), n_y);
    std::cout << id << " " << n_scratch << " " << guard << "\n";
}

}  // namespace

int main(int argc, char** argv) {
    return run_cases(argc, argv, "depthwise_small_driver", [](const std::string& dir, std::istringstream& in,
                                                              const std::string& id) {
        std::size_t s[13];
        int bias, residual, act;
        for (auto& v : s) in >> v;
        in >> bias >> residual >> act;
        if (act == 1) {
            run(dir, id, s, bias, residual, Relu6{});
        } else if (act == 2) {
            run(dir, id, s, bias, residual, Silu{});
        } else {
            run(dir, id, s, bias, residual, rt::Identity{});
        }
    });
}
