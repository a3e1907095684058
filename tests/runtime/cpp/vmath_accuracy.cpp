// Accuracy of sofie::rt::vmath against high-precision references (driven by test_vmath.py).
//
// usage: vmath_accuracy float|double [scale | all] [function]
// For every function (or the one named): a dense sweep of its domain (every k-th bit
// pattern, so each binade is sampled alike, plus a finer sweep of the magnitudes where the
// function is not yet saturated; `scale` multiplies the sample counts, `all` takes every
// float), evaluated through a loop the compiler vectorizes, and compared with the
// reference: double-precision std:: for float, long double std:: for double (__float128
// for gelu, whose tail needs the exact x / sqrt 2). Prints one line per function:
//   <name> max_ulp <err> at <x> edges <n_bad> [<first bad edge>]
// Errors are in units in the last place of the exact result (2^-149 / 2^-1074 at the
// denormals); a result that overflows gets 0 when it is inf and the exact value rounds
// to inf. Edge values (NaN, +-inf, +-0, denormals, overflow and underflow, saturation)
// must match std:: exactly: the same NaN-ness, and the same value and sign when the
// expected result is 0, +-1 or inf; other edge results must be within the sweep bound.
#include <quadmath.h>

#include <cinttypes>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "sofie_rt/vmath.hxx"

namespace vm = sofie::rt::vmath;

template <class T> struct Ref;
template <> struct Ref<float> { using type = double; };
template <> struct Ref<double> { using type = long double; };

// The vectorized evaluation: one loop per function, as generated code would have it.
#define LOOP(name)                                                               \
    template <class T>                                                           \
    __attribute__((noinline)) void run_##name(const T* x, T* y, std::size_t n) { \
        for (std::size_t i = 0; i < n; ++i) y[i] = vm::name(x[i]);               \
    }
LOOP(exp)
LOOP(expm1)
LOOP(log)
LOOP(log1p)
LOOP(tanh)
LOOP(sigmoid)
LOOP(silu)
LOOP(erf)
LOOP(erfc)
LOOP(gelu)

// References, evaluated in the wider type R from the exact input.
template <class R> R ref_sigmoid(R x) { return R(1) / (R(1) + std::exp(-x)); }
template <class R> R ref_silu(R x) { return std::isinf(x) ? std::fmax(x, R(-0.0)) : x / (R(1) + std::exp(-x)); }
double ref_gelu(double x) {  // for float inputs: x / sqrt 2 in double is accurate enough
    if (std::isinf(x)) return std::fmax(x, -0.0);
    return 0.5 * x * std::erfc(-x * 0.70710678118654752440);
}
long double ref_gelu(long double x) {
    if (std::isinf(x)) return std::fmax(x, -0.0L);
    static const __float128 inv_sqrt2 = sqrtq(__float128(0.5));
    const __float128 a = -__float128(x) * inv_sqrt2;
    return (long double)(__float128(0.5) * __float128(x) * erfcq(a));
}

template <class T>
struct Fn {
    const char* name;
    void (*run)(const T*, T*, std::size_t);
    typename Ref<T>::type (*ref)(typename Ref<T>::type);
    T (*std_fn)(T);  // for the edge values; nullptr: use ref rounded to T
    double lo, hi;   // magnitudes of the finer sweep
};

template <class R> R r_exp(R x) { return std::exp(x); }
template <class R> R r_expm1(R x) { return std::expm1(x); }
template <class R> R r_log(R x) { return std::log(x); }
template <class R> R r_log1p(R x) { return std::log1p(x); }
template <class R> R r_tanh(R x) { return std::tanh(x); }
template <class R> R r_erf(R x) { return std::erf(x); }
template <class R> R r_erfc(R x) { return std::erfc(x); }
template <class T> T s_exp(T x) { return std::exp(x); }
template <class T> T s_expm1(T x) { return std::expm1(x); }
template <class T> T s_log(T x) { return std::log(x); }
template <class T> T s_log1p(T x) { return std::log1p(x); }
template <class T> T s_tanh(T x) { return std::tanh(x); }
template <class T> T s_erf(T x) { return std::erf(x); }
template <class T> T s_erfc(T x) { return std::erfc(x); }

template <class T>
std::vector<Fn<T>> functions() {
    using R = typename Ref<T>::type;
    const bool f = sizeof(T) == 4;
    return {
        {"exp", run_exp<T>, r_exp<R>, s_exp<T>, 1e-9, f ? 110 : 750},
        {"expm1", run_expm1<T>, r_expm1<R>, s_expm1<T>, 1e-9, f ? 110 : 750},
        {"log", run_log<T>, r_log<R>, s_log<T>, 1e-30, 1e30},
        {"log1p", run_log1p<T>, r_log1p<R>, s_log1p<T>, 1e-9, 1e9},
        {"tanh", run_tanh<T>, r_tanh<R>, s_tanh<T>, 1e-6, f ? 10 : 20},
        {"sigmoid", run_sigmoid<T>, ref_sigmoid<R>, nullptr, 1e-9, f ? 110 : 750},
        {"silu", run_silu<T>, ref_silu<R>, nullptr, 1e-9, f ? 110 : 750},
        {"erf", run_erf<T>, r_erf<R>, s_erf<T>, 1e-6, f ? 5 : 7},
        {"erfc", run_erfc<T>, r_erfc<R>, s_erfc<T>, 1e-6, f ? 11 : 28},
        {"gelu", run_gelu<T>, ref_gelu, nullptr, 1e-6, f ? 15 : 40},
    };
}

template <class T> using Bits = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;

template <class T>
T from_bits(Bits<T> b) {
    T x;
    std::memcpy(&x, &b, sizeof x);
    return x;
}
template <class T>
Bits<T> to_bits(T x) {
    Bits<T> b;
    std::memcpy(&b, &x, sizeof b);
    return b;
}

// |got - want| in ulps of the exact value want (given in the wider type).
template <class T>
double ulp_error(T got, typename Ref<T>::type want) {
    using R = typename Ref<T>::type;
    using L = std::numeric_limits<T>;
    if (std::isnan(want)) return std::isnan(got) ? 0.0 : INFINITY;
    if (std::isnan(got)) return INFINITY;
    const R aw = std::fabs(want);
    const R max = R(L::max());
    const R ulp_max = std::ldexp(R(1), L::max_exponent - L::digits);
    const bool want_overflows = aw >= max + ulp_max / 2;
    if (std::isinf(got)) {
        return (want_overflows && std::signbit(got) == std::signbit(want)) ? 0.0 : INFINITY;
    }
    if (want_overflows) return double((aw - std::fabs(R(got))) / ulp_max);
    int e = std::ilogb(aw == 0 ? R(L::min()) : aw);
    if (e < L::min_exponent - 1) e = L::min_exponent - 1;
    const R ulp = std::ldexp(R(1), e - (L::digits - 1));
    return double(std::fabs(R(got) - want) / ulp);
}

template <class T>
struct Result {
    double max_ulp = 0;
    T worst = 0;
    int bad_edges = 0;
    std::string first_bad;
};

template <class T>
void sweep(const Fn<T>& fn, const std::vector<T>& xs, Result<T>& res) {
    using R = typename Ref<T>::type;
    std::vector<T> ys(xs.size());
    fn.run(xs.data(), ys.data(), xs.size());
    for (std::size_t i = 0; i < xs.size(); ++i) {
        const double e = ulp_error<T>(ys[i], fn.ref(R(xs[i])));
        if (e > res.max_ulp || (std::isnan(e) && !std::isnan(res.max_ulp))) {
            res.max_ulp = e;
            res.worst = xs[i];
        }
    }
}

template <class T>
std::vector<T> edge_values() {
    using L = std::numeric_limits<T>;
    std::vector<T> v = {T(0), L::min(), L::denorm_min(), T(3) * L::denorm_min(), L::min() / T(3),
                        L::epsilon(), L::epsilon() / T(8), T(0.5), T(1), T(2), T(10), T(20),
                        T(50), T(88.72), T(88.73), T(89), T(103.9), T(104), T(700), T(709.7),
                        T(709.8), T(745.1), T(745.2), T(800), T(1e10), L::max(), L::infinity(),
                        T(0.46875), T(0.625), T(0.84375), T(4), T(6), T(9), T(10.05), T(10.5),
                        T(26.5), T(27.3), T(27.5), T(30)};
    const std::size_t n = v.size();
    for (std::size_t i = 0; i < n; ++i) v.push_back(-v[i]);
    v.push_back(L::quiet_NaN());
    v.push_back(-L::quiet_NaN());
    return v;
}

template <class T>
void edges(const Fn<T>& fn, double bound, Result<T>& res) {
    using R = typename Ref<T>::type;
    const std::vector<T> xs = edge_values<T>();
    std::vector<T> ys(xs.size());
    fn.run(xs.data(), ys.data(), xs.size());
    for (std::size_t i = 0; i < xs.size(); ++i) {
        const T x = xs[i], y = ys[i];
        const R want_r = fn.ref(R(x));
        const T want = fn.std_fn ? fn.std_fn(x) : T(want_r);
        bool ok;
        if (std::isnan(want)) {
            ok = std::isnan(y);
        } else if (std::isinf(want) || want == T(0) || std::fabs(want) == T(1)) {
            ok = y == want && std::signbit(y) == std::signbit(want);
        } else {
            ok = ulp_error<T>(y, want_r) <= bound;
        }
        if (!ok) {
            if (res.bad_edges++ == 0) {
                char buf[160];
                std::snprintf(buf, sizeof buf, "x=%.17g got=%.17g want=%.17g", double(x), double(y),
                              double(want));
                res.first_bad = buf;
            }
        }
    }
}

template <class T>
void sweep_bits(const Fn<T>& fn, Bits<T> lo, Bits<T> hi, double samples, bool both_signs,
                Result<T>& res) {
    using B = Bits<T>;
    const B step = B(double(hi - lo) / samples) | 1;  // odd: every low-bit pattern occurs
    std::vector<T> xs;
    for (B b = lo;; b += step) {
        xs.push_back(from_bits<T>(b));
        if (both_signs) xs.push_back(-from_bits<T>(b));
        if (xs.size() >= (1u << 20) || hi - b <= step) {
            sweep(fn, xs, res);
            xs.clear();
        }
        if (hi - b <= step) break;
    }
}

template <class T>
int run_all(double scale, const char* only) {
    using B = Bits<T>;
    const bool f = sizeof(T) == 4;
    for (const Fn<T>& fn : functions<T>()) {
        if (only && std::strcmp(only, fn.name) != 0) continue;
        Result<T> res;
        if (scale == 0) {  // every bit pattern
            sweep_bits<T>(fn, 0, std::numeric_limits<B>::max(), double(std::numeric_limits<B>::max()),
                          false, res);
        } else {
            // __float128 references are slow: fewer samples for double gelu.
            const double n = scale * (f ? 4e6 : std::strcmp(fn.name, "gelu") == 0 ? 1e5 : 1e6);
            sweep_bits<T>(fn, 0, std::numeric_limits<B>::max(), n / 4, false, res);  // whole type
            sweep_bits<T>(fn, to_bits(T(fn.lo)), to_bits(T(fn.hi)), n, true, res);   // finer sweep
        }
        edges(fn, 2.0, res);
        std::printf("%s max_ulp %.4f at %.17g edges %d %s\n", fn.name, res.max_ulp,
                    double(res.worst), res.bad_edges, res.first_bad.c_str());
        std::fflush(stdout);
    }
    return 0;
}

int main(int argc, char** argv) {
    if (argc < 2) return 2;
    const std::string type = argv[1];
    const bool all = argc > 2 && std::strcmp(argv[2], "all") == 0;
    const double scale = all ? 0.0 : argc > 2 ? std::atof(argv[2]) : 1.0;
    const char* only = argc > 3 ? argv[3] : nullptr;
    if (type == "float") return run_all<float>(scale, only);
    if (type == "double" && !all) return run_all<double>(scale, only);
    return 2;
}
