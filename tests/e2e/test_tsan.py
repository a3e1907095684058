"""ThreadSanitizer over the runtime: a generated model built with g++ -fsanitize=thread runs
three Sessions on three threads (sharing one Weights object) while a fourth thread runs a
Session with two intra-op threads (sofie_rt/thread_pool.hxx); any TSan report fails the test.
The built-in kernels (blas none): an uninstrumented OpenBLAS would hide its accesses."""

from __future__ import annotations

import os

import numpy as np

from tests.e2e.cpp import build_program, sh
from tests.e2e.split_net import EVENT, export_split_net

MAIN = r'''
#include "net.hxx"
#include <cstdio>
#include <cstring>
#include <thread>
#include <vector>
constexpr std::size_t kIn = 3 * 32 * 32, kOut = 10, kBatch = 4;
constexpr int kRuns = 3;

int main(int argc, char** argv) {
  if (argc != 2) return 1;
  auto weights = TMVA_SOFIE_net::load_weights(argv[1]);
  std::vector<float> x(kBatch * kIn);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = float(i % 17) / 17.0f - 0.5f;
  std::vector<std::vector<float>> y(4, std::vector<float>(kBatch * kOut));
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      // thread 3: a Session whose own pool splits its kernels over two threads
      TMVA_SOFIE_net::Session s(weights, kBatch, {}, t == 3 ? 2 : 1);
      for (int r = 0; r < kRuns; ++r) s.infer(kBatch, x.data(), y[t].data());
    });
  }
  for (auto& th : threads) th.join();
  int differ = 0;
  for (int t = 1; t < 4; ++t) differ += std::memcmp(y[t].data(), y[0].data(), y[0].size() * 4) != 0;
  std::printf("%d\n", differ);
  return differ == 0 ? 0 : 5;
}
'''


def test_sessions_and_intra_op_threads_have_no_data_race(tmp_path) -> None:
    model = export_split_net(str(tmp_path))
    exe = build_program(model, str(tmp_path), "net", "none", MAIN, "-pthread", "-fsanitize=thread", "-g", "-O1")
    # halt_on_error: the first report ends the run (nonzero status), with the report on stderr
    env = dict(os.environ, TSAN_OPTIONS="halt_on_error=1 exitcode=66")
    r = sh(exe, str(tmp_path / "net.dat"), env=env)
    assert "ThreadSanitizer" not in r.stderr, r.stderr[:6000]
    assert r.returncode == 0 and r.stdout.split() == ["0"], (r.returncode, r.stdout, r.stderr[-2000:])
    assert np.prod(EVENT) == 3 * 32 * 32  # the program's kIn
