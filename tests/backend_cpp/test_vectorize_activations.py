"""Every float activation of the UNARY table, spelled as the generated code spells it, in a
loop that g++ -O3 must vectorize with 32- or 64-byte vectors (the -fopt-info report), for
float and double. The exceptions call std:: (libm) per element, which g++ keeps scalar: the
trigonometric family (sofie_rt/vmath.hxx has no routines for it yet) and sqrt (vectorized only
under -fno-math-errno, which the generated code cannot assume)."""

from __future__ import annotations

import re
import subprocess

from sofie.backend_cpp.scalar import spell_body
from sofie.backend_cpp.types import cpp_type
from sofie.ir.dialects.graph.elementwise import ACTIVATIONS, activation_body
from tests.runtime.test_vmath import RUNTIME_INCLUDE, vector_flags

SCALAR_LIBM = {"sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "asinh", "acosh", "atanh", "sqrt"}
BOOL_RESULT = {"is_nan", "is_inf", "not", "bitwise_not"}
CHECKED = [a for a in ACTIVATIONS if a not in SCALAR_LIBM | BOOL_RESULT]


def test_activations_vectorize(tmp_path):
    lines = ["#include <cstddef>", '#include "sofie_rt/sofie_rt.hxx"']
    where: dict[int, str] = {}
    for dtype in ("f32", "f64"):
        t = cpp_type(dtype)
        for name in CHECKED:
            body = spell_body(str(activation_body(name, [])), ["x[i]"], [dtype], dtype)
            lines.append(f"void {name}_{dtype}(const {t}* __restrict x, {t}* __restrict y, std::size_t n) "
                         f"{{ for (std::size_t i = 0; i < n; ++i) y[i] = {body}; }}")
            where[len(lines)] = f"{name}<{dtype}>"
    src = tmp_path / "acts.cpp"
    src.write_text("\n".join(lines) + "\n")
    cmd = ["g++", "-std=c++17", "-O3", *vector_flags(), "-DSOFIE_BLAS_NONE", f"-I{RUNTIME_INCLUDE}",
           "-fopt-info-vec-optimized", "-c", str(src), "-o", str(tmp_path / "acts.o")]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    vectorized = {int(m[1]) for m in re.finditer(r"acts\.cpp:(\d+):\d+: optimized: loop vectorized using "
                                                 r"(?:32|64) byte vectors", proc.stderr)}
    missing = [name for line, name in where.items() if line not in vectorized]
    assert not missing, f"not vectorized with ymm/zmm: {missing}"


def test_gelu_forms_are_checked():
    """Both Gelu forms are in the list above: the erf form (vmath::gelu) and the tanh form."""
    assert {"gelu", "gelu_tanh", "mish", "swish", "celu"} <= set(CHECKED)
    assert "vmath::gelu" in spell_body(str(activation_body("gelu", [])), ["x"], ["f32"], "f32")
    assert "vmath::tanh" in spell_body(str(activation_body("gelu_tanh", [])), ["x"], ["f32"], "f32")
