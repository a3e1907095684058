"""Minimax fits behind the polynomial coefficients of sofie/runtime/sofie_rt/vmath.hxx.

usage: python tools/fit_vmath.py [name ...]     (needs mpmath; prints C++ initializers)

A linear Remez exchange on a dense grid: minimise max_x |w(x) (f(x) - sum_k c_k x^k)| in
40-digit mpmath arithmetic, then round the coefficients to float / double. What each
polynomial approximates, and on which interval, is documented next to it in vmath.hxx;
FITS below is the single source of those choices. Rounding the coefficients costs a
little accuracy, which the C++ accuracy test (tests/runtime/test_vmath.py) measures.
"""

from __future__ import annotations

import sys

import mpmath as mp
import numpy as np

mp.mp.dps = 40


def remez(f, w, a, b, m, grid=6000, iters=40):
    """Coefficients c_0..c_{m-1} (mp) of the weighted minimax polynomial, and the error."""
    a, b = mp.mpf(a), mp.mpf(b)
    # Chebyshev-distributed grid: dense near the ends, where the extrema crowd.
    xs = [(a + b) / 2 - (b - a) / 2 * mp.cos(mp.pi * i / (grid - 1)) for i in range(grid)]
    fx = [f(x) for x in xs]
    wx = [w(x) for x in xs]
    ref = [int(round((grid - 1) * (1 - float(mp.cos(mp.pi * i / m))) / 2)) for i in range(m + 1)]
    best = None
    for _ in range(iters):
        A = mp.matrix(m + 1, m + 1)
        rhs = mp.matrix(m + 1, 1)
        for r, gi in enumerate(ref):
            x = xs[gi]
            for k in range(m):
                A[r, k] = x**k
            A[r, m] = (-1) ** r / wx[gi] if wx[gi] != 0 else 0
            rhs[r] = fx[gi]
        sol = mp.lu_solve(A, rhs)
        c = [sol[k] for k in range(m)]
        err = [wx[i] * (fx[i] - mp.polyval(c[::-1], xs[i])) for i in range(grid)]
        emax = max(abs(e) for e in err)
        if best is None or emax < best[1]:
            best = (c, emax)
        # New reference: the largest |err| of each run of equal sign, thinned to m+1
        # alternating points by dropping the smallest ends / adjacent pairs.
        runs = []
        for i, e in enumerate(err):
            s = e >= 0
            if runs and runs[-1][0] == s:
                if abs(e) > abs(err[runs[-1][1]]):
                    runs[-1][1] = i
            else:
                runs.append([s, i])
        while len(runs) > m + 1:
            if abs(err[runs[0][1]]) < abs(err[runs[-1][1]]):
                runs.pop(0)
            else:
                runs.pop()
        if len(runs) < m + 1:
            break
        new = [r[1] for r in runs]
        if new == ref:
            break
        ref = new
    return best


def ident(x):
    return x


# name -> (f, weight, interval, number of coefficients per type).
# exp (also expm1): e^r = 1 + r + r^2 q(r) on |r| <= ln2/2 (+ a margin for the rounded n);
#   the weight r^2/|e^r - 1| bounds the relative error of e^r - 1 as well as that of e^r.
# log: log1p(f) = 2s + s R(z), s = f/(2+f), z = s^2, f in [sqrt(1/2)-1, sqrt(2)-1];
#   R(z) = z c(z), fitted as c; the weight z bounds the relative error of log1p(f).
# tanh: x + x z p(z), z = x^2 <= 0.625^2; weight relative to tanh.
# erf: x + x p(z), z = x^2 <= 0.84375^2 (erf's polynomial range); weight relative to erf.
# erfc tail, a in [15/32, A1]: erfc(a) = (t/2) exp(-a^2 + q(u)), t = 1/(1 + a/2), u = t - 1/2;
#   weight 1 is the relative error of erfc. Centering on t = 1/2 keeps every Horner partial
#   sum below 0.7, and the 1/2 factor keeps |q| <= 0.5.
# erfc_s: S(u) = dlog(erfc(a) e^(a^2)) / dlog(t), the sensitivity to a relative error of t
#   (the compensation term of the tail); 5% is plenty.
# erf_short (float): r(a) ~ log(erfc(a)) on [0.84375, 4], erf = 1 - e^r; weight erfc / erf,
#   the relative error of erf that an absolute error of r makes.
# gelu_g (float): G(a) / sqrt 2, G(a) = a e^(a^2) erfc(a), in u = t - 1/2, t = 1/(1 + a/2),
#   a in [15/32, A1]; weight relative to G.
R_EXP = mp.log(2) / 2 * (1 + mp.mpf(2) ** -12)
Z_LOG = ((mp.sqrt(2) - 1) / (mp.sqrt(2) + 1)) ** 2
A0 = mp.mpf(15) / 32
A1 = {"float": mp.mpf(10.5), "double": mp.mpf(27.5)}


def _exp_q(r):
    return (mp.expm1(r) - r) / r**2 if r != 0 else mp.mpf(1) / 2


def _log_c(z):
    if z == 0:
        return mp.mpf(2) / 3
    s = mp.sqrt(z)
    return (2 * mp.atanh(s) / s - 2) / z


def _tanh_p(z):
    if z == 0:
        return mp.mpf(-1) / 3
    x = mp.sqrt(z)
    return (mp.tanh(x) / x - 1) / z


def _tanh_w(z):
    x = mp.sqrt(z)
    return z * x / mp.tanh(x) if z != 0 else mp.mpf(0)


def _erf_p(z):
    if z == 0:
        return 2 / mp.sqrt(mp.pi) - 1
    x = mp.sqrt(z)
    return mp.erf(x) / x - 1


def _erf_w(z):
    x = mp.sqrt(z)
    return x / mp.erf(x) if z != 0 else mp.sqrt(mp.pi) / 2


def _tail_a(u):
    return 2 * (1 / (u + mp.mpf(0.5)) - 1)


def _erfc_q(u):
    a = _tail_a(u)
    return mp.log(4 * mp.erfc(a) / (2 / (1 + a / 2))) + a * a


def _erfc_s(u):
    a = _tail_a(u)
    g = mp.erfc(a) * mp.exp(a * a)
    return (2 / (mp.sqrt(mp.pi) * g) - 2 * a) * (1 + a / 2) * 2


def _u_range(kind):
    return (1 / (1 + A1[kind] / 2) - mp.mpf(0.5), 1 / (1 + A0 / 2) - mp.mpf(0.5))


def _gelu_g(u):
    a = _tail_a(u)
    return a * mp.exp(a * a) * mp.erfc(a) / mp.sqrt(2)


def _one(_):
    return mp.mpf(1)


FITS = {
    "exp": (_exp_q, lambda r: r * r / abs(mp.expm1(r)) if r != 0 else mp.mpf(0), (-R_EXP, R_EXP),
            {"float": 5, "double": 10}),
    "log": (_log_c, ident, (0, Z_LOG * (1 + mp.mpf(2) ** -10)), {"float": 3, "double": 7}),
    "tanh": (_tanh_p, _tanh_w, (0, mp.mpf(0.625) ** 2), {"float": 6, "double": 12}),
    "erf": (_erf_p, _erf_w, (0, mp.mpf(0.84375) ** 2), {"float": 6, "double": 11}),
    "erfc_q_float": (_erfc_q, _one, _u_range("float"), {"float": 10}),
    "erfc_q_double": (_erfc_q, _one, _u_range("double"), {"double": 24}),
    "erfc_s_float": (_erfc_s, _one, _u_range("float"), {"float": 3}),
    "erfc_s_double": (_erfc_s, _one, _u_range("double"), {"double": 3}),
    "erf_short": (lambda a: mp.log(mp.erfc(a)), lambda a: mp.erfc(a) / mp.erf(a), (mp.mpf(0.84375), 4),
                  {"float": 7}),
    "gelu_g": (_gelu_g, lambda u: 1 / _gelu_g(u), _u_range("float"), {"float": 10}),
}


def literal(v, kind: str) -> str:
    if kind == "float":
        s = repr(float(np.float32(float(v))))
        return s + "f"
    return repr(float(v))


def main(names: list[str]) -> None:
    for name in names or list(FITS):
        f, w, (a, b), sizes = FITS[name]
        for kind, m in sizes.items():
            c, e = remez(f, w, a, b, m)
            print(f"// {name} {kind}: {m} coefficients on [{mp.nstr(a, 6)}, {mp.nstr(b, 6)}],"
                  f" max weighted error {mp.nstr(e, 3)} (2^{mp.nstr(mp.log(e, 2), 4)})")
            print("{" + ", ".join(literal(v, kind) for v in c) + "}")
            if name.startswith("erfc_q"):  # c1 is applied as hi + lo (see erfc_tail)
                hi = np.float32(float(c[1])) if kind == "float" else float(c[1])
                print(f"// c1 = {literal(hi, kind)} + {literal(c[1] - mp.mpf(float(hi)), kind)}")


if __name__ == "__main__":
    main(sys.argv[1:])
