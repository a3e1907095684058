// Test driver for the built-in GEMM (sofie_rt/blas.hxx with SOFIE_BLAS_NONE): runs the cases
// of <dir>/cases.txt, one per line "<id> tA tB M N K alpha beta lda ldb ldc bias residual act
// packed", reading <dir>/<id>_{A,B,C,bias,res}.bin (float32) and writing C to <dir>/<id>_out.bin.
// bias: 0 none, 1 per row, 2 per column; act: 0 none, 1 relu (a functor of the driver's: the pass
// over the stored tile), 2 tanh, 3 rt::Relu, 4 rt::Clip to [-0.5, 0.7] (both applied in the register
// kernels); packed: 1 B through
// pack_b + gemm_packed_b, 2 A through pack_a + gemm_packed_a (then <id>_packed.bin holds the
// packed operand too). The first line printed
// is the kernel this build chose; test_gemm_kernels.py holds the numpy references.
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "float_files.hxx"
#include "sofie_rt/blas.hxx"

namespace rt = sofie::rt;

namespace {

std::vector<float> read(const std::string& path) { return read_floats(path); }

void write(const std::string& path, const std::vector<float>& v) { write_floats(path, v.data(), v.size()); }

struct Relu {
    float operator()(float x) const { return x > 0.0f ? x : 0.0f; }
};
struct Tanh {
    float operator()(float x) const { return std::tanh(x); }
};

template <class F>
void run(const std::string& base, bool tA, bool tB, std::size_t M, std::size_t N, std::size_t K,
         float alpha, float beta, std::size_t lda, std::size_t ldb, std::size_t ldc, int bias_kind,
         bool residual, int packed, F f) {
    const std::vector<float> A = read(base + "_A.bin"), B = read(base + "_B.bin");
    std::vector<float> C = read(base + "_C.bin");
    const std::vector<float> bias = bias_kind ? read(base + "_bias.bin") : std::vector<float>{};
    const std::vector<float> res = residual ? read(base + "_res.bin") : std::vector<float>{};
    const float* b = bias_kind ? bias.data() : nullptr;
    const float* r = residual ? res.data() : nullptr;
    if (packed == 2) {
        std::vector<float> p(rt::packed_a_size<float>(M, K), -7.0f);
        rt::pack_a(tA, M, K, A.data(), lda, p.data());
        write(base + "_packed.bin", p);
        rt::gemm_packed_a(M, N, K, alpha, p.data(), B.data(), ldb, beta, C.data(), ldc, b, bias_kind == 1, r,
                          f);
        // op(B) must not be transposed for gemm_packed_a: the test only asks with tB = 0
    } else if (packed == 1) {
        std::vector<float> p(rt::packed_b_size<float>(K, N), -7.0f);
        rt::pack_b(tB, K, N, B.data(), ldb, p.data());
        write(base + "_packed.bin", p);
        rt::gemm_packed_b(tA, M, N, K, alpha, A.data(), lda, p.data(), beta, C.data(), ldc, b,
                          bias_kind == 1, r, f);
    } else {
        rt::gemm_fused(tA, tB, M, N, K, alpha, A.data(), lda, B.data(), ldb, beta, C.data(), ldc, b,
                       bias_kind == 1, r, f);
    }
    write(base + "_out.bin", C);
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::cerr << "usage: gemm_driver DIR\n";
        return 2;
    }
    const std::string dir = argv[1];
    std::cout << rt::gemm_kernel_name() << "\n";
    std::ifstream cases(dir + "/cases.txt");
    std::string id;
    int tA, tB, bias, residual, act, packed;
    std::size_t M, N, K, lda, ldb, ldc;
    float alpha, beta;
    while (cases >> id >> tA >> tB >> M >> N >> K >> alpha >> beta >> lda >> ldb >> ldc >> bias >>
           residual >> act >> packed) {
        const std::string base = dir + "/" + id;
        if (act == 1) {
            run(base, tA, tB, M, N, K, alpha, beta, lda, ldb, ldc, bias, residual, packed, Relu{});
        } else if (act == 3) {
            run(base, tA, tB, M, N, K, alpha, beta, lda, ldb, ldc, bias, residual, packed, rt::Relu{});
        } else if (act == 4) {
            run(base, tA, tB, M, N, K, alpha, beta, lda, ldb, ldc, bias, residual, packed,
                rt::clip(-0.5f, 0.7f, [] {}));
        } else if (act == 2) {
            run(base, tA, tB, M, N, K, alpha, beta, lda, ldb, ldc, bias, residual, packed, Tanh{});
        } else {
            run(base, tA, tB, M, N, K, alpha, beta, lda, ldb, ldc, bias, residual, packed, rt::Identity{});
        }
        std::cout << id << " OK\n";
    }
    return 0;
}
