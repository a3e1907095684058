// Test driver for sofie_rt: runs the cases listed in <dir>/cases.txt, one per
// line as "<kind> <id> key=value ...". Inputs are raw little-endian files
// <dir>/<id>_<name>.bin written by test_runtime.py; each case writes its
// result to <dir>/<id>_out.bin and prints "<id> OK [info]" or
// "<id> ERROR <message>". The Python side holds the numpy references.
#include <cmath>
#include <cstdio>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <limits>
#include <map>
#include <stdexcept>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "sofie_rt/sofie_rt.hxx"

namespace rt = sofie::rt;

// Defined in odr_second.cpp: proves the headers link into two TUs.
std::size_t second_tu_scratch();

namespace {

struct Case {
    std::string dir, id;
    std::map<std::string, std::string> kv;

    std::string str(const std::string& k) const {
        const auto it = kv.find(k);
        if (it == kv.end()) throw std::logic_error("case " + id + ": missing key " + k);
        return it->second;
    }
    std::size_t u(const std::string& k) const { return std::stoull(str(k)); }
    float f(const std::string& k) const { return std::stof(str(k)); }
    double d(const std::string& k) const { return std::stod(str(k)); }
    bool b(const std::string& k) const { return u(k) != 0; }
    std::vector<std::size_t> list(const std::string& k) const {
        std::vector<std::size_t> out;
        std::stringstream ss(str(k));
        for (std::string item; std::getline(ss, item, ',');)
            if (!item.empty()) out.push_back(std::stoull(item));
        return out;
    }
    std::string path(const std::string& name) const { return dir + "/" + id + "_" + name + ".bin"; }

    std::vector<char> bytes(const std::string& name) const {
        std::ifstream in(path(name), std::ios::binary);
        if (!in) throw std::logic_error("case " + id + ": cannot read " + path(name));
        return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    }
    std::vector<float> floats(const std::string& name) const {
        const std::vector<char> raw = bytes(name);
        std::vector<float> out(raw.size() / sizeof(float));
        if (!out.empty()) std::memcpy(out.data(), raw.data(), out.size() * sizeof(float));
        return out;
    }
    void write(const void* data, std::size_t n_bytes) const {
        std::ofstream out(path("out"), std::ios::binary);
        out.write(static_cast<const char*>(data), static_cast<std::streamsize>(n_bytes));
    }
    void write(const std::vector<float>& v) const { write(v.data(), v.size() * sizeof(float)); }
    std::vector<double> doubles(const std::string& name) const {
        const std::vector<char> raw = bytes(name);
        std::vector<double> out(raw.size() / sizeof(double));
        if (!out.empty()) std::memcpy(out.data(), raw.data(), out.size() * sizeof(double));
        return out;
    }
    void write(const std::vector<double>& v) const { write(v.data(), v.size() * sizeof(double)); }
};

// The kernels take any functor as their epilogue (the generated code passes a lambda spelled
// from the activation's scalar body); these stand in for a few of them here.
template <class G>
void with_act(const std::string& name, float alpha, float beta, G&& g) {
    if (name == "None") return g(rt::Identity{});
    if (name == "Relu") return g([](float x) { return x > 0.0f ? x : 0.0f; });
    if (name == "LeakyRelu") return g([alpha](float x) { return x >= 0.0f ? x : alpha * x; });
    if (name == "Clip") return g([alpha, beta](float x) { return std::min(std::max(x, alpha), beta); });
    if (name == "Sigmoid") return g([](float x) { return 1.0f / (1.0f + std::exp(-x)); });
    throw std::runtime_error("kernel_driver: no stand-in epilogue " + name);
}

std::string run(const std::string& kind, const Case& c) {
    if (kind == "sgemm") {
        const auto A = c.floats("A"), B = c.floats("B");
        auto C = c.floats("C");
        rt::sgemm(c.b("tA"), c.b("tB"), c.u("M"), c.u("N"), c.u("K"), c.f("alpha"), A.data(),
                  c.u("lda"), B.data(), c.u("ldb"), c.f("beta"), C.data(), c.u("ldc"));
        c.write(C);
    } else if (kind == "dgemm") {
        const auto A = c.doubles("A"), B = c.doubles("B");
        auto C = c.doubles("C");
        rt::dgemm(c.b("tA"), c.b("tB"), c.u("M"), c.u("N"), c.u("K"), c.d("alpha"), A.data(),
                  c.u("lda"), B.data(), c.u("ldb"), c.d("beta"), C.data(), c.u("ldc"));
        c.write(C);
    } else if (kind == "bias_act") {
        auto y = c.floats("y");
        const auto bias = c.b("has_bias") ? c.floats("bias") : std::vector<float>{};
        with_act(c.str("act"), c.f("alpha"), c.f("beta"), [&](auto f) {
            rt::bias_act(y.data(), bias.empty() ? nullptr : bias.data(), c.u("rows"), c.u("cols"),
                         c.b("per_row"), f);
        });
        c.write(y);
    } else if (kind == "conv") {
        const auto x = c.floats("x"), w = c.floats("w");
        const auto bias = c.b("has_bias") ? c.floats("bias") : std::vector<float>{};
        const auto res = c.b("has_res") ? c.floats("res") : std::vector<float>{};
        const std::size_t C = c.u("C"), g = c.u("group"), kH = c.u("kH"), kW = c.u("kW");
        const std::size_t OH = c.u("OH"), OW = c.u("OW");
        const std::size_t exact = rt::conv2d_scratch_floats(C, g, kH, kW, OH, OW, c.u("pt"),
                                                            c.u("pl"), c.u("pb"), c.u("pr"),
                                                            c.u("sh"), c.u("sw"));
        if (exact > rt::conv2d_scratch_floats(C, g, kH, kW, OH, OW))
            return "ERROR conv2d_scratch_floats: exact size exceeds the bound";
        // NaN-filled so any read of unwritten scratch shows up in the result;
        // null when no scratch is needed, so any use of it crashes.
        std::vector<float> scratch(exact, std::numeric_limits<float>::quiet_NaN());
        std::vector<float> y(c.u("N") * c.u("M") * OH * OW,
                             std::numeric_limits<float>::quiet_NaN());
        with_act(c.str("act"), c.f("alpha"), c.f("beta"), [&](auto f) {
            rt::conv2d(x.data(), w.data(), bias.empty() ? nullptr : bias.data(), y.data(),
                       exact ? scratch.data() : nullptr, c.u("N"), C, c.u("H"), c.u("W"), c.u("M"),
                       g, kH, kW, c.u("pt"), c.u("pl"), c.u("pb"), c.u("pr"), c.u("sh"),
                       c.u("sw"), c.u("dh"), c.u("dw"), OH, OW, f,
                       res.empty() ? nullptr : res.data(), c.kv.count("tile_rows") ? c.u("tile_rows") : 0);
        });
        c.write(y);
        return "OK scratch=" + std::to_string(exact);
    } else if (kind == "maxpool" || kind == "avgpool") {
        const auto x = c.floats("x");
        std::vector<float> y(c.u("N") * c.u("C") * c.u("OH") * c.u("OW"));
        if (kind == "maxpool") {
            rt::maxpool2d(x.data(), y.data(), c.u("N"), c.u("C"), c.u("H"), c.u("W"), c.u("kH"),
                          c.u("kW"), c.u("pt"), c.u("pl"), c.u("pb"), c.u("pr"), c.u("sh"),
                          c.u("sw"), c.u("dh"), c.u("dw"), c.u("OH"), c.u("OW"));
        } else {
            rt::avgpool2d(x.data(), y.data(), c.u("N"), c.u("C"), c.u("H"), c.u("W"), c.u("kH"),
                          c.u("kW"), c.u("pt"), c.u("pl"), c.u("pb"), c.u("pr"), c.u("sh"),
                          c.u("sw"), c.u("OH"), c.u("OW"), c.b("include_pad"));
        }
        c.write(y);
    } else if (kind == "gap") {
        const auto x = c.floats("x");
        std::vector<float> y(c.u("NC"));
        rt::global_pool<rt::PoolKind::avg>(x.data(), y.data(), c.u("NC"), c.u("HW"));
        c.write(y);
    } else if (kind == "batchnorm") {
        auto x = c.floats("x");
        const auto scale = c.floats("scale"), bias = c.floats("bias");
        const auto mean = c.floats("mean"), var = c.floats("var");
        std::vector<float> y = c.b("inplace") ? std::vector<float>{} : std::vector<float>(x.size());
        float* out = c.b("inplace") ? x.data() : y.data();
        rt::batchnorm(x.data(), out, scale.data(), bias.data(), mean.data(), var.data(),
                      c.f("eps"), c.u("N"), c.u("C"), c.u("S"));
        c.write(c.b("inplace") ? x : y);
    } else if (kind == "softmax") {
        auto x = c.floats("x");
        std::vector<float> y = c.b("inplace") ? std::vector<float>{} : std::vector<float>(x.size());
        float* out = c.b("inplace") ? x.data() : y.data();
        rt::softmax(x.data(), out, c.u("outer"), c.u("axis"), c.u("inner"));
        c.write(c.b("inplace") ? x : y);
    } else if (kind == "transpose") {
        const auto x = c.floats("x");
        const auto shape = c.list("shape"), perm = c.list("perm");
        std::vector<float> y(x.size());
        rt::transpose(x.data(), y.data(), shape.size(), shape.data(), perm.data());
        c.write(y);
    } else if (kind == "concat") {
        const auto x = c.floats("x");
        auto y = c.floats("y");
        rt::concat_copy(x.data(), y.data(), c.u("outer"), c.u("x_inner"), c.u("y_inner"),
                        c.u("y_offset"));
        c.write(y);
    } else if (kind == "copy") {
        const auto x = c.floats("x");
        std::vector<float> y(x.size());
        rt::copy(x.data(), y.data(), x.size());
        c.write(y);
    } else if (kind == "checksum") {
        const auto data = c.bytes("data");
        char hex[32];
        std::snprintf(hex, sizeof hex, "%016llx",
                      static_cast<unsigned long long>(rt::checksum(data.data(), data.size())));
        return std::string("OK ") + hex;
    } else if (kind == "weights") {
        try {
            // Held as the generated code holds it: shared and read-only.
            const std::shared_ptr<const rt::WeightFile> wf = std::make_shared<const rt::WeightFile>(
                c.str("path"), c.u("payload"), std::stoull(c.str("fingerprint"), nullptr, 16),
                static_cast<std::uint32_t>(c.u("n_tensors")));
            if (reinterpret_cast<std::uintptr_t>(wf->data<float>(0)) % rt::kAlignment != 0)
                return "ERROR payload is not 64-byte aligned";
            c.write(wf->data<std::byte>(0), wf->payload_bytes());
        } catch (const std::runtime_error& e) {
            return std::string("THROW ") + e.what();
        }
    } else if (kind == "aligned_buffer") {
        rt::AlignedBuffer a(c.u("bytes"));
        rt::AlignedBuffer b(std::move(a));
        if (a.data() != nullptr || a.size() != 0 || b.size() != c.u("bytes") ||
            reinterpret_cast<std::uintptr_t>(b.data()) % rt::kAlignment != 0)
            return "ERROR AlignedBuffer move/alignment";
        a = std::move(b);
        if (a.size() != c.u("bytes") || b.data() != nullptr) return "ERROR AlignedBuffer move-assign";
    } else if (kind == "info") {
        return std::string("OK ") + rt::blas_name() + " " + std::to_string(second_tu_scratch());
    } else {
        return "ERROR unknown kind " + kind;
    }
    return "OK";
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::cerr << "usage: " << argv[0] << " <case dir>\n";
        return 2;
    }
    const std::string dir = argv[1];
    std::ifstream cases(dir + "/cases.txt");
    for (std::string line; std::getline(cases, line);) {
        std::istringstream ss(line);
        std::string kind;
        Case c;
        c.dir = dir;
        ss >> kind >> c.id;
        for (std::string tok; ss >> tok;) {
            const auto eq = tok.find('=');
            c.kv[tok.substr(0, eq)] = tok.substr(eq + 1);
        }
        std::string result;
        try {
            result = run(kind, c);
        } catch (const std::exception& e) {
            result = std::string("ERROR ") + e.what();
        }
        std::cout << c.id << ' ' << result << '\n';
    }
    return 0;
}
