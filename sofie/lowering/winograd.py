"""Winograd F(m x m, r x r) transforms, built by Cook-Toom from interpolation points.

y = A^T [ (G g G^T) * (B^T d B) ] A computes an m x m output tile of a r x r correlation from an
n x n input tile, n = m + r - 1, with n*n multiplications instead of m*m*r*r. The n - 1 finite
points below (plus the point at infinity) were chosen by the float32 error of the whole 2-D
algorithm summed over 128 channels, measured against float64 over the points 0, +-1, +-2,
+-1/2: F(2x2, 3x3) 0.9e-6 relative to the largest output, F(4x4, 3x3) 4.3e-6 (0, +-1/2 with
+-2 or -1 do 10% better but make B^T denser), F(2x2, 5x5) 2.9e-6 with 0, +-2, +-1/2 (0, +-1,
+-2: 6.4e-6), F(4x4, 5x5) 6.1e-6 with all seven (the next best set, with +-3, 8.7e-6).
F(6x6, 3x3) (8x8 tiles too) is left out: 1.4e-5 at best.

The weight transform G g G^T runs here at compile time; the input and output transforms run in
sofie/runtime/sofie_rt/winograd.hxx from constexpr tables that `cpp_tables` generates (a test
holds the header to it).
"""

from __future__ import annotations

from fractions import Fraction
from functools import cache

import numpy as np

# (m, r) -> the finite interpolation points of F(m x m, r x r)
POINTS: dict[tuple[int, int], tuple[Fraction, ...]] = {
    (2, 3): (Fraction(0), Fraction(1), Fraction(-1)),
    (4, 3): (Fraction(0), Fraction(1), Fraction(-1), Fraction(2), Fraction(-2)),
    (2, 5): (Fraction(0), Fraction(2), Fraction(-2), Fraction(1, 2), Fraction(-1, 2)),
    (4, 5): (Fraction(0), Fraction(1), Fraction(-1), Fraction(2), Fraction(-2), Fraction(1, 2), Fraction(-1, 2)),
}


def _poly_without(points: list[Fraction], skip: int | None) -> list[Fraction]:
    """Coefficients (increasing powers) of prod (x - a_l) over the points but the skipped one."""
    poly = [Fraction(1)]
    for l, a in enumerate(points):
        if l == skip:
            continue
        poly = [Fraction(0), *poly]
        for i in range(len(poly) - 1):
            poly[i] -= a * poly[i + 1]
    return poly


def cook_toom(m: int, r: int, points: tuple[Fraction, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(A^T [m, n], G [n, r], B^T [n, n]) of F(m, r) for n - 1 distinct finite points and infinity,
    exact in rationals, returned as float64. Correlation y_i = sum_k g_k d_(i+k) is the transpose
    of the Toom-Cook linear convolution: evaluate (G, A^T) at the points, interpolate with the
    Lagrange polynomials (B^T); the point at infinity takes the leading coefficients. The
    Lagrange denominators sit in G, so B^T holds the polynomial coefficients."""
    n = m + r - 1
    a = list(points)
    if len(a) != n - 1 or len(set(a)) != len(a):
        raise ValueError(f"F({m}, {r}) needs {n - 1} distinct finite points, got {points}")
    at = [[a[j] ** i for j in range(n - 1)] + [Fraction(int(i == m - 1))] for i in range(m)]
    g, bt = [], []
    for j in range(n - 1):
        denom = Fraction(1)
        for l in range(n - 1):
            if l != j:
                denom *= a[j] - a[l]
        g.append([a[j] ** k / denom for k in range(r)])
        bt.append(_poly_without(a, j) + [Fraction(0)])
    g.append([Fraction(int(k == r - 1)) for k in range(r)])
    bt.append(_poly_without(a, None))
    for j in range(n):  # a sign moved from B^T to G: B^T's rows start positive (one negation less)
        if next(v for v in bt[j] if v) < 0:
            bt[j] = [-v for v in bt[j]]
            g[j] = [-v for v in g[j]]
    return tuple(np.array([[float(v) for v in row] for row in mat]) for mat in (at, g, bt))


@cache
def transforms(m: int, r: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(A^T, G, B^T) of a supported F(m x m, r x r)."""
    if (m, r) not in POINTS:
        raise ValueError(f"no Winograd F({m}x{m}, {r}x{r}); supported: {sorted(POINTS)}")
    return cook_toom(m, r, POINTS[(m, r)])


def winograd_weights(w: np.ndarray, m: int = 2) -> np.ndarray:
    """[M, C, r, r] conv weights -> U [n*n, M, C] float32 (computed in float64), index n*row + col
    of G g G^T: the A operands of the n*n GEMMs of sofie::rt::conv2d_winograd<m, r>."""
    r = w.shape[2]
    _, g, _ = transforms(m, r)
    u = np.einsum("ik,mckl,jl->ijmc", g, np.asarray(w, np.float64), g)
    n = m + r - 1
    return np.ascontiguousarray(u.reshape(n * n, *w.shape[:2]), dtype=np.float32)


def _cpp_matrix(name: str, mat: np.ndarray) -> list[str]:
    rows = [" " * 8 + "{" + ", ".join(f"{float(v)!r}f" for v in row) + "}," for row in mat]
    return [f"    static constexpr float {name}[{mat.shape[0]}][{mat.shape[1]}] = {{", *rows, "    };"]


def cpp_tables() -> str:
    """The C++ specializations of sofie::rt::detail::WinoTransform<m, r> (B^T and A^T), as the
    generated block of winograd.hxx holds them."""
    out = []
    for m, r in sorted(POINTS):
        at, _, bt = transforms(m, r)
        pts = ", ".join(str(p) for p in POINTS[(m, r)])
        out += [f"// F({m}x{m}, {r}x{r}), points {pts}, inf",
                "template <>",
                f"struct WinoTransform<{m}, {r}> {{",
                f"    static constexpr std::size_t m = {m}, r = {r}, n = {m + r - 1};",
                *_cpp_matrix("BT", bt), *_cpp_matrix("AT", at), "};"]
    return "\n".join(out) + "\n"
