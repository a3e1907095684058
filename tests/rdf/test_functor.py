"""sofie::Functor (sofie_rt/functor.hxx) built with g++ against a generated model, no ROOT:
SofieFunctor's call form, copies sharing Sessions, weights loaded once and found beside the
header, and copies of the headers included twice (the distributed RDataFrame case)."""

from __future__ import annotations

import os

import numpy as np

from sofie.driver import build
from tests.e2e.cpp import sh
from tests.rdf.models import mlp_onnx

MAIN = r'''
#include "net.hxx"
#include "sofie_rt/functor.hxx"
#include "copy/net.hxx"              // a second copy of both headers: include guards, not
#include "copy/sofie_rt/functor.hxx" // #pragma once, keep it from being read twice
#include <cstdio>
#include <tuple>
#include <type_traits>
#include <vector>

using F = sofie::Functor<4, TMVA_SOFIE_net::Session>;
// typed DefineSlot reads the column types off &F::operator(): a plain (slot, 4 floats) function
template <class C, class R, class... A>
std::tuple<R, A...> signature(R (C::*)(A...) const);
static_assert(std::is_same_v<decltype(signature(&F::operator())),
                             std::tuple<std::vector<float>, unsigned, float, float, float, float>>);

int main(int argc, char** argv) {
  if (argc != 2) return 1;
  F f(3, argv[1]);
  const F g = f;  // RDataFrame copies the functor: the copy must use the same Sessions
  if (&f.session(2) != &g.session(2) || f.slots() != 3) return 2;
  // the weights are read once; this net's are small (sofie::rt::kPrivateWeightsMaxBytes), so
  // every slot after the first holds a copy of its own, with the same path
  if (f.session(0).weights() == f.session(2).weights()) return 3;
  if (f.session(0).weights().use_count() != 1 || f.session(2).weights().use_count() != 1) return 4;
  if (f.session(2).weights()->path() != f.session(0).weights()->path()) return 9;
  if (f.session(1).intra_op_threads() != 1) return 6;  // no intra-op pool unless asked for
  const F threaded(2, argv[1], 2);
  if (threaded.session(0).intra_op_threads() != 2 || threaded.session(1).intra_op_threads() != 2) return 7;
  std::FILE* out = std::fopen("y.txt", "w");
  for (unsigned e = 0; e < 6; ++e) {
    const float a = 0.5f * e, b = 1.0f - e, c = 0.25f * e * e, d = -2.0f + e;
    const std::vector<float> y = (e % 2 ? g : f)(e % 3, a, b, c, d);
    for (float v : y) std::fprintf(out, "%.9g ", v);
    std::fprintf(out, "\n");
  }
  std::fclose(out);
  try {
    f(3, 0, 0, 0, 0);
    return 5;
  } catch (const std::out_of_range&) {
  }
  return 0;
}
'''


def test_functor_shares_sessions_and_matches(tmp_path) -> None:
    gen = tmp_path / "gen"
    build(mlp_onnx(str(tmp_path / "net.onnx")), str(gen), name="net", blas="none")
    build(str(tmp_path / "net.onnx"), str(gen / "copy"), name="net", blas="none")
    with open(gen / "main.cpp", "w") as f:
        f.write(MAIN)
    for cxx in ("g++", "clang++"):
        if cxx == "clang++" and sh("which", "clang++").returncode != 0:
            continue  # clang++ is optional on the machine; g++ and cling (tests/rdf) are not
        exe = str(gen / f"main_{cxx}")
        r = sh(cxx, "-std=c++17", "-O2", "-Wall", "-Wextra", "-Werror", "-I", str(gen), str(gen / "main.cpp"),
               "-o", exe)
        assert r.returncode == 0, r.stderr
        # run elsewhere with the bare file name: found beside the header, not in the cwd
        run = tmp_path / "cwd"
        run.mkdir(exist_ok=True)
        r = sh("sh", "-c", f"cd {run} && {exe} net.dat")
        assert r.returncode == 0, (r.returncode, r.stderr)
        y = np.loadtxt(run / "y.txt", dtype=np.float64)
        e = np.arange(6, dtype=np.float32)
        x = np.stack([0.5 * e, 1 - e, 0.25 * e * e, -2 + e], axis=1).astype(np.float32)
        np.testing.assert_allclose(y, reference(str(tmp_path / "net.onnx"), x), rtol=1e-5, atol=1e-6)


def test_functor_reports_missing_weights(tmp_path) -> None:
    gen = tmp_path / "gen"
    build(mlp_onnx(str(tmp_path / "net.onnx")), str(gen), name="net", blas="none")
    src = gen / "m.cpp"
    src.write_text('#include "net.hxx"\n#include "sofie_rt/functor.hxx"\n#include <cstdio>\n'
                   "int main() { try { sofie::Functor<4, TMVA_SOFIE_net::Session> f(2, \"nowhere.dat\"); }\n"
                   '  catch (const std::exception& e) { std::puts(e.what()); return 7; } return 0; }\n')
    r = sh("g++", "-std=c++17", "-O1", "-I", str(gen), str(src), "-o", str(gen / "m"))
    assert r.returncode == 0, r.stderr
    os.remove(gen / "net.dat")
    r = sh(str(gen / "m"))
    assert r.returncode == 7 and "nowhere.dat" in r.stdout, (r.returncode, r.stdout)


def reference(model: str, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort
    return ort.InferenceSession(model, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
