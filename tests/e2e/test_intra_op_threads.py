"""Sessions with intra-op threads (a Session constructor argument; sofie.compile(...,
intra_op_threads=)) give the results of one thread: bitwise with the built-in kernels, to a
float32 rounding with OpenBLAS (whose kernels sum a column block's edge columns in another
order), on a model with one layer per kind of split (tests/e2e/split_net.py)."""

from __future__ import annotations

import numpy as np
import pytest

import sofie
from tests.conftest import ort_run
from tests.e2e.cpp import build_program, sh
from tests.e2e.split_net import EVENT, OUT, export_split_net

MAIN = r'''
#include "net.hxx"
#include <cmath>
#include <cstdio>
#include <cstring>
#include <vector>
constexpr std::size_t kIn = 3 * 32 * 32, kOut = 10, kBatch = 4;

int main(int argc, char** argv) {
  if (argc != 3) return 1;
  auto weights = TMVA_SOFIE_net::load_weights(argv[1]);
  std::vector<float> x(kBatch * kIn);
  std::FILE* f = std::fopen(argv[2], "rb");
  if (std::fread(x.data(), 4, x.size(), f) != x.size()) return 4;
  std::fclose(f);
  TMVA_SOFIE_net::Session one(weights, kBatch);
  std::vector<float> ref(kBatch * kOut), y(kBatch * kOut);
  for (std::size_t threads : {2, 3}) {
    TMVA_SOFIE_net::Session many(weights, kBatch, {}, threads);
    if (many.intra_op_threads() != threads) return 5;
    for (std::size_t batch : {std::size_t{1}, kBatch}) {
      one.infer(batch, x.data(), ref.data());
      for (int run = 0; run < 3; ++run) {  // and again: the pool's threads are reused
        many.infer(batch, x.data(), y.data());
        double diff = 0;
        for (std::size_t i = 0; i < batch * kOut; ++i) diff = std::fmax(diff, std::fabs(y[i] - ref[i]));
        std::printf("threads %zu batch %zu bitwise %d diff %.3g\n", threads, batch,
                    std::memcmp(y.data(), ref.data(), batch * kOut * 4) == 0, diff);
      }
    }
  }
  for (float v : ref) std::printf("%.9g\n", v);
}
'''


@pytest.fixture(scope="module")
def split_net(tmp_path_factory) -> str:
    return export_split_net(str(tmp_path_factory.mktemp("split_net")))


@pytest.mark.parametrize("blas", ["none", "openblas"])
def test_intra_op_threads_give_one_threads_results(split_net: str, tmp_path, blas: str) -> None:
    exe = build_program(split_net, str(tmp_path), "net", blas, MAIN, "-pthread")
    x = np.random.default_rng(0).standard_normal((4, *EVENT)).astype(np.float32)
    x.tofile(tmp_path / "x.bin")
    r = sh(exe, str(tmp_path / "net.dat"), str(tmp_path / "x.bin"))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    checks, ref = [ln.split() for ln in lines if ln.startswith("threads")], np.array(
        [float(v) for v in lines if not v.startswith("threads")], np.float32).reshape(4, OUT)
    assert len(checks) == 12
    np.testing.assert_allclose(ref, ort_run(split_net, x)[0], rtol=1e-4, atol=1e-4)
    scale = float(np.max(np.abs(ref)))
    for c in checks:
        if blas == "none":
            assert c[5] == "1", f"not bitwise equal to one thread: {' '.join(c)}"
        else:  # OpenBLAS: a rounding of the largest output
            assert float(c[7]) <= 1e-6 * scale, f"differs from one thread: {' '.join(c)}"


def test_compile_takes_intra_op_threads(split_net: str) -> None:
    x = np.random.default_rng(1).standard_normal((4, *EVENT)).astype(np.float32)
    one = sofie.compile(split_net, blas="none")
    two = sofie.compile(split_net, blas="none", intra_op_threads=2)
    assert two.session().intra_op_threads() == 2 and one.session().intra_op_threads() == 1
    assert np.array_equal(one(x)[0], two(x)[0])
    with pytest.raises(sofie.SofieError, match="intra_op_threads must be an int >= 1, got 0"):
        sofie.compile(split_net, blas="none", intra_op_threads=0)
