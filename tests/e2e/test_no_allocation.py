"""`Session::infer(batch, in, out)` does no heap allocation: malloc and operator new are
interposed and counted around calls of the generated code."""

from __future__ import annotations

import os

import pytest

from tests.e2e.cpp import build_program, sh

MAIN = r'''
#include "net.hxx"
#include <cstdio>
#include <cstdlib>
#include <new>
#include <vector>

extern "C" void* __libc_malloc(std::size_t);
extern "C" void* __libc_calloc(std::size_t, std::size_t);
extern "C" void* __libc_realloc(void*, std::size_t);
static bool counting = false;
static long allocations = 0;
extern "C" void* malloc(std::size_t n) { allocations += counting; return __libc_malloc(n); }
extern "C" void* calloc(std::size_t a, std::size_t b) { allocations += counting; return __libc_calloc(a, b); }
extern "C" void* realloc(void* p, std::size_t n) { allocations += counting; return __libc_realloc(p, n); }
void* operator new(std::size_t n) {
  allocations += counting;
  void* p = __libc_malloc(n);
  if (!p) throw std::bad_alloc();
  return p;
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

int main(int, char** argv) {
  TMVA_SOFIE_net::Session s(argv[1], 4);
  std::vector<float> x(10 * 3 * 32 * 32, 0.5f), y(10 * 10);
  s.infer(4, x.data(), y.data());  // warm-up: a BLAS may set up its buffers once
  counting = true;
  for (std::size_t batch : {1, 3, 4, 10}) s.infer(batch, x.data(), y.data());  // 10 runs in chunks
  counting = false;
  const long in_infer = allocations;
  counting = true;
  auto v = s.infer(x.data());  // the SOFIE convenience form returns a vector: must be counted
  counting = false;
  std::printf("%ld %ld\n", in_infer, allocations - in_infer);
}
'''


@pytest.mark.parametrize("blas", ["none", "openblas"])
def test_infer_does_not_allocate(model_dir: str, tmp_path, blas: str) -> None:
    exe = build_program(os.path.join(model_dir, "resnet_small.onnx"), str(tmp_path), "net", blas, MAIN)
    r = sh(exe, str(tmp_path / "net.dat"), env=dict(os.environ, OPENBLAS_NUM_THREADS="1"))
    assert r.returncode == 0, r.stderr
    in_infer, in_convenience = map(int, r.stdout.split())
    assert in_convenience > 0, "the allocation counter does not see allocations"
    assert in_infer == 0, f"{in_infer} allocations inside infer"
