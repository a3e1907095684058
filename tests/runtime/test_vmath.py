"""sofie::rt::vmath (sofie_rt/vmath.hxx): accuracy against high-precision references, and
that g++ vectorizes loops over it.

Accuracy: cpp/vmath_accuracy.cpp sweeps each function over its whole domain (every k-th bit
pattern) plus a finer sweep of the range where it is not saturated, through a loop the
compiler vectorizes, against double-precision std:: (float) or long double / __float128
(double); it also checks edge values (NaN, +-inf, +-0, denormals, overflow, underflow,
saturation) against std::, which must match exactly where the result is NaN, 0, +-1 or inf.
It runs in two builds: -O3 -march=native (FMA, AVX2 or AVX-512) and -O2 for the baseline
target (no FMA instruction: every a * b + c rounds twice), the two code paths of the header.

Tolerances (max error in ulps of the exact result, the same for float and double): the
measured maxima over these samples, rounded up with a small margin; all within 2 ulp but
silu, which trades an ulp for a third of its time, and gelu on float (erf and gelu on float
take short forms, which give up an ulp for less than half the time; see the header).
Measured on the development machine (AMD EPYC, AVX2, g++ 12):

             float fma  float -O2  double fma  double -O2   bound
    exp         0.91       0.93       0.91        0.91       1.0
    expm1       1.10       1.18       1.09        1.12       1.25
    log         0.79       0.79       0.79        0.78       1.0
    log1p       0.82       0.83       0.81        0.81       1.0
    tanh        1.37       1.37       1.33        1.33       1.5
    sigmoid     1.63       1.77       1.54        1.59       1.9
    silu        2.88       2.88       2.90        2.90       3.0
    erf         1.20       1.41       0.85        0.92       1.5
    erfc        1.07       1.34       1.26        1.45       1.6
    gelu        1.91       2.36       1.29        1.46       2.5
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
RUNTIME_INCLUDE = REPO / "sofie" / "runtime"
CPP = Path(__file__).resolve().parent / "cpp"

FUNCTIONS = ["exp", "expm1", "log", "log1p", "tanh", "sigmoid", "silu", "erf", "erfc", "gelu"]
MAX_ULP = {"exp": 1.0, "expm1": 1.25, "log": 1.0, "log1p": 1.0, "tanh": 1.5, "sigmoid": 1.9,
           "silu": 3.0, "erf": 1.5, "erfc": 1.6, "gelu": 2.5}
BUILDS = {
    "fma": ["-O3", "-march=native"],
    "nofma": ["-O2"],  # the baseline x86-64 / generic target: no FMA instruction
}
LINE = re.compile(r"^(\w+) max_ulp (\S+) at (\S+) edges (\d+) ?(.*)$")


def compile_cpp(src: Path, exe: Path, flags: list[str], libs: list[str] = ()) -> None:
    cmd = ["g++", "-std=c++17", *flags, "-Wall", "-Wextra", "-Werror", f"-I{RUNTIME_INCLUDE}",
           str(src), "-o", str(exe), *libs]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, f"build failed:\n{' '.join(cmd)}\n{proc.stderr}"


@pytest.fixture(scope="module")
def accuracy(tmp_path_factory):
    """(build, type) -> {function: (max_ulp, worst x, bad edges, first bad edge)}, cached."""
    out = tmp_path_factory.mktemp("vmath")
    exes: dict[str, Path] = {}
    results: dict[tuple[str, str], dict] = {}

    def get(build: str, kind: str) -> dict:
        if build not in exes:
            exes[build] = out / f"accuracy_{build}"
            compile_cpp(CPP / "vmath_accuracy.cpp", exes[build], BUILDS[build], ["-lquadmath"])
        if (build, kind) not in results:
            proc = subprocess.run([str(exes[build]), kind], capture_output=True, text=True, timeout=600)
            assert proc.returncode == 0, proc.stderr
            rows = {}
            for line in proc.stdout.splitlines():
                m = LINE.match(line)
                assert m, line
                rows[m[1]] = (float(m[2]), float(m[3]), int(m[4]), m[5])
            results[build, kind] = rows
        return results[build, kind]

    return get


@pytest.mark.parametrize("build", list(BUILDS))
@pytest.mark.parametrize("kind", ["float", "double"])
@pytest.mark.parametrize("fn", FUNCTIONS)
def test_accuracy(accuracy, build, kind, fn):
    max_ulp, worst, bad_edges, first_bad = accuracy(build, kind)[fn]
    assert bad_edges == 0, f"{fn}<{kind}>: {bad_edges} edge values differ from std::, e.g. {first_bad}"
    assert max_ulp <= MAX_ULP[fn], f"{fn}<{kind}>: {max_ulp} ulp at x = {worst!r} (bound {MAX_ULP[fn]})"


VEC_SRC = """\
#include <cstddef>
#include "sofie_rt/vmath.hxx"
namespace vm = sofie::rt::vmath;
"""


def vector_flags() -> list[str]:
    """-march=native, or AVX2 + FMA when the host has no AVX2 (the code is only compiled)."""
    proc = subprocess.run(["g++", "-march=native", "-dM", "-E", "-x", "c++", "/dev/null"],
                          capture_output=True, text=True, check=True)
    return ["-march=native"] if "__AVX2__" in proc.stdout else ["-mavx2", "-mfma"]


def test_loops_vectorize(tmp_path):
    """Every `y[i] = vm::f(x[i])` loop is reported vectorized with 32- or 64-byte vectors."""
    lines = VEC_SRC.splitlines()
    where: dict[int, str] = {}
    for kind in ("float", "double"):
        for fn in FUNCTIONS:
            lines.append(f"void {fn}_{kind}(const {kind}* x, {kind}* y, std::size_t n) "
                         f"{{ for (std::size_t i = 0; i < n; ++i) y[i] = vm::{fn}(x[i]); }}")
            where[len(lines)] = f"{fn}<{kind}>"
    src = tmp_path / "loops.cpp"
    src.write_text("\n".join(lines) + "\n")
    cmd = ["g++", "-std=c++17", "-O3", *vector_flags(), f"-I{RUNTIME_INCLUDE}", "-fopt-info-vec-optimized",
           "-c", str(src), "-o", str(tmp_path / "loops.o")]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    vectorized = {int(m[1]) for m in re.finditer(r"loops\.cpp:(\d+):\d+: optimized: loop vectorized using "
                                                 r"(?:32|64) byte vectors", proc.stderr)}
    missing = [name for line, name in where.items() if line not in vectorized]
    assert not missing, f"not vectorized with ymm/zmm: {missing}\n{' '.join(cmd)}\n{proc.stderr}"
    # And no libm call is left in them (a scalar std::exp would block vectorization anyway).
    nm = subprocess.run(["nm", "-u", str(tmp_path / "loops.o")], capture_output=True, text=True, check=True)
    assert not re.search(r"\b(exp|expf|log|logf|tanh|tanhf|erf|erff|erfc|erfcf|fma|fmaf)\b", nm.stdout), nm.stdout


def test_header_standalone(tmp_path):
    """vmath.hxx compiles on its own and through sofie_rt.hxx, twice in one program (ODR)."""
    a, b = tmp_path / "a.cpp", tmp_path / "b.cpp"
    a.write_text('#include "sofie_rt/vmath.hxx"\n#include "sofie_rt/vmath.hxx"\n'
                 "float f(float x) { return sofie::rt::vmath::gelu(x); }\n"
                 "int main() { return f(0.0f) == 0.0f ? 0 : 1; }\n")
    b.write_text('#include "sofie_rt/sofie_rt.hxx"\n'
                 "double g(double x) { return sofie::rt::vmath::erf(x); }\n")
    exe = tmp_path / "two"
    cmd = ["g++", "-std=c++17", "-O2", "-Wall", "-Wextra", "-Werror", "-DSOFIE_BLAS_NONE",
           f"-I{RUNTIME_INCLUDE}", str(a), str(b), "-o", str(exe)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert subprocess.run([str(exe)]).returncode == 0
