// Test driver for conv2d's im2col (sofie_rt/kernels.hxx, detail::im2col and its strided row
// copy detail::gather_strided) against a plain scalar loop, over a sweep of geometries: widths
// 1..40 (every tail of the 16- and 8-wide stride-2 copies), strides 1..3, pads, dilations,
// kernels 1..7 wide, bands starting and ending anywhere. The input sits at the very end of a
// page followed by an unreadable one, so any read past the last element of x crashes.
// Prints "OK <cases>" or the first mismatch; exact (a copy: the values must be identical).
#include <sys/mman.h>
#include <unistd.h>

#include <cmath>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <vector>

#include "sofie_rt/sofie_rt.hxx"

namespace rt = sofie::rt;

int main() {
    const std::size_t page = std::size_t(sysconf(_SC_PAGESIZE));
    const std::size_t bytes = 64 * page;
    char* base = static_cast<char*>(mmap(nullptr, bytes + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    if (base == MAP_FAILED || mprotect(base + bytes, page, PROT_NONE) != 0) {
        std::printf("ERROR mmap\n");
        return 1;
    }
    std::size_t cases = 0;
    for (std::size_t W = 1; W <= 40; ++W) {
        for (std::size_t s = 1; s <= 3; ++s) {
            for (std::size_t k = 1; k <= 7; k += 2) {
                for (std::size_t d = 1; d <= 2; ++d) {
                    for (std::size_t pad = 0; pad <= 3; pad += 3) {
                        const std::size_t C = 2, H = 5;
                        const std::size_t span = (k - 1) * d + 1;
                        if (W + 2 * pad < span || H + 2 * pad < span) continue;
                        const std::size_t OH = (H + 2 * pad - span) / s + 1, OW = (W + 2 * pad - span) / s + 1;
                        const std::size_t n = C * H * W;
                        float* x = reinterpret_cast<float*>(base + bytes) - n;  // ends at the guard page
                        for (std::size_t i = 0; i < n; ++i) x[i] = float(i) + 0.5f;
                        for (std::size_t oh0 = 0; oh0 < OH; ++oh0) {
                            for (std::size_t oh1 = oh0 + 1; oh1 <= OH; oh1 += 2) {
                                const std::size_t K = C * k * k, cols = (oh1 - oh0) * OW;
                                std::vector<float> got(K * cols + 1, NAN), want(K * cols, 0.0f);
                                rt::detail::im2col(x, got.data(), C, H, W, k, k, pad, pad, s, s, d, d, oh0, oh1, OW);
                                for (std::size_t c = 0; c < C; ++c)
                                    for (std::size_t kh = 0; kh < k; ++kh)
                                        for (std::size_t kw = 0; kw < k; ++kw)
                                            for (std::size_t oh = oh0; oh < oh1; ++oh)
                                                for (std::size_t ow = 0; ow < OW; ++ow) {
                                                    const long ih = long(oh * s + kh * d) - long(pad);
                                                    const long iw = long(ow * s + kw * d) - long(pad);
                                                    if (ih < 0 || iw < 0 || ih >= long(H) || iw >= long(W)) continue;
                                                    want[((c * k + kh) * k + kw) * cols + (oh - oh0) * OW + ow] =
                                                        x[(c * H + std::size_t(ih)) * W + std::size_t(iw)];
                                                }
                                ++cases;
                                if (!std::isnan(got[K * cols])) {
                                    std::printf("ERROR W=%zu s=%zu k=%zu d=%zu pad=%zu: wrote past the band\n", W, s, k, d, pad);
                                    return 1;
                                }
                                if (std::memcmp(got.data(), want.data(), K * cols * sizeof(float)) != 0) {
                                    std::size_t i = 0;
                                    while (got[i] == want[i] || (std::isnan(got[i]) && std::isnan(want[i]))) ++i;
                                    std::printf("ERROR W=%zu s=%zu k=%zu d=%zu pad=%zu rows %zu..%zu: element %zu is %g, want %g\n",
                                                W, s, k, d, pad, oh0, oh1, i, double(got[i]), double(want[i]));
                                    return 1;
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    std::printf("OK %zu\n", cases);
    return 0;
}
