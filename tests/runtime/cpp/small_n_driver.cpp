// Test driver for gemm_small_n (sofie_rt/gemm_small_n.hxx): runs the cases of <dir>/cases.txt,
// one per line "<id> M N K ldb ldc bias residual relu", reading <dir>/<id>_{a,b,bias,res}.bin
// (a: A packed by gemm_pack.packed_a_columns) and writing C (M rows of ldc, padding columns
// left as the sentinel they start as) to <dir>/<id>_out.bin. test_gemm_small_n.py holds the
// numpy references.
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "float_files.hxx"
#include "sofie_rt/gemm_small_n.hxx"

namespace {

struct Relu {
    float operator()(float x) const { return x > 0.0f ? x : 0.0f; }
};

constexpr float kSentinel = 12345.0f;

}  // namespace

int main(int argc, char** argv) {
    return run_cases(argc, argv, "small_n_driver", [](const std::string& dir, std::istringstream& in,
                                                      const std::string& id) {
        std::size_t M, N, K, ldb, ldc;
        int bias, residual, relu;
        in >> M >> N >> K >> ldb >> ldc >> bias >> residual >> relu;
        const std::string base = dir + "/" + id;
        const std::vector<float> a = read_floats(base + "_a.bin"), b = read_floats(base + "_b.bin");
        const std::vector<float> bv = bias ? read_floats(base + "_bias.bin") : std::vector<float>{};
        const std::vector<float> r = residual ? read_floats(base + "_res.bin") : std::vector<float>{};
        std::vector<float> c(M * ldc, kSentinel);
        const float* bp = bias ? bv.data() : nullptr;
        const float* rp = residual ? r.data() : nullptr;
        if (relu) {
            sofie::rt::gemm_small_n(M, N, K, a.data(), b.data(), ldb, c.data(), ldc, bp, rp, Relu{});
        } else {
            sofie::rt::gemm_small_n(M, N, K, a.data(), b.data(), ldb, c.data(), ldc, bp, rp);
        }
        write_floats(base + "_out.bin", c.data(), c.size());
        std::cout << id << "\n";
    });
}
