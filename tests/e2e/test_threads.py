"""8 threads, each with its own Session sharing one Weights object, 1000 inferences each:
every result bitwise identical to the single-threaded one."""

from __future__ import annotations

import os

import numpy as np
import pytest

from tests.e2e.cpp import build_program, sh

MAIN = r'''
#include "net.hxx"
#include <cstdio>
#include <cstring>
#include <thread>
#include <vector>
constexpr int kThreads = 8, kRuns = 1000;
constexpr std::size_t kIn = 3 * 32 * 32, kOut = 10;

int main(int argc, char** argv) {
  if (argc != 3) return 1;
  auto weights = TMVA_SOFIE_net::load_weights(argv[1]);
  std::vector<float> x(kThreads * kIn);
  std::FILE* f = std::fopen(argv[2], "rb");
  if (std::fread(x.data(), 4, x.size(), f) != x.size()) return 4;
  std::fclose(f);
  // reference: one thread, one Session, every thread's input
  std::vector<float> ref(kThreads * kOut);
  TMVA_SOFIE_net::Session single(weights);
  for (int t = 0; t < kThreads; ++t) single.infer(1, x.data() + t * kIn, ref.data() + t * kOut);
  std::vector<int> mismatches(kThreads, 0);
  std::vector<std::thread> pool;
  for (int t = 0; t < kThreads; ++t) {
    pool.emplace_back([&, t] {
      TMVA_SOFIE_net::Session s(weights);  // own arena, shared read-only weights
      float y[kOut];
      for (int r = 0; r < kRuns; ++r) {
        s.infer(1, x.data() + t * kIn, y);
        if (std::memcmp(y, ref.data() + t * kOut, sizeof y) != 0) ++mismatches[t];
      }
    });
  }
  for (auto& th : pool) th.join();
  int total = 0;
  for (int m : mismatches) total += m;
  std::printf("%d\n", total);
  for (std::size_t i = 0; i < ref.size(); ++i) std::printf("%.9g\n", ref[i]);
  return total == 0 ? 0 : 5;
}
'''


@pytest.mark.parametrize("blas", ["none", "openblas"])
def test_sessions_on_threads_are_bitwise_identical(model_dir: str, tmp_path, blas: str) -> None:
    model = os.path.join(model_dir, "resnet_small.onnx")
    exe = build_program(model, str(tmp_path), "net", blas, MAIN, "-pthread")
    x = np.random.default_rng(0).standard_normal((8, 3, 32, 32)).astype(np.float32)
    x.tofile(tmp_path / "x.bin")
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    r = sh(exe, str(tmp_path / "net.dat"), str(tmp_path / "x.bin"), env=env)
    lines = r.stdout.split()
    assert r.returncode == 0 and lines[0] == "0", f"mismatching inferences: {lines[:1]} {r.stderr}"
    # and the single-threaded results are the right ones
    from tests.conftest import ort_run
    y = np.array(lines[1:], np.float32).reshape(8, 10)
    np.testing.assert_allclose(y, ort_run(model, x)[0], rtol=1e-4, atol=1e-5)
