"""`Session::infer(batch, in, out)` does no heap allocation: every allocation function (the
malloc family with its aligned forms, and every operator new: plain, array, nothrow and
aligned, as `sofie::rt::AlignedBuffer` uses) is interposed and counted around calls of the
generated code. A probe first checks that each interposed function is really counted."""

from __future__ import annotations

import os

import pytest

from tests.e2e.cpp import build_program, sh

MAIN = r'''
#include "net.hxx"
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <vector>

// Every allocation entry point a C++ program (or a BLAS) can reach, counted per kind while
// `counting` is set. glibc's own __libc_* functions do the work.
extern "C" void* __libc_malloc(std::size_t);
extern "C" void* __libc_calloc(std::size_t, std::size_t);
extern "C" void* __libc_realloc(void*, std::size_t);
extern "C" void* __libc_memalign(std::size_t, std::size_t);
extern "C" void* __libc_valloc(std::size_t);
extern "C" void* __libc_pvalloc(std::size_t);

enum Kind { kMalloc, kCalloc, kRealloc, kPosixMemalign, kAlignedAlloc, kMemalign, kValloc, kPvalloc,
            kNew, kNewArray, kNewNothrow, kNewArrayNothrow, kNewAligned, kNewArrayAligned,
            kNewAlignedNothrow, kNewArrayAlignedNothrow, kKinds };
static const char* const kNames[kKinds] = {
    "malloc", "calloc", "realloc", "posix_memalign", "aligned_alloc", "memalign", "valloc", "pvalloc",
    "new", "new[]", "new(nothrow)", "new[](nothrow)", "new(align)", "new[](align)",
    "new(align,nothrow)", "new[](align,nothrow)"};
static std::atomic<bool> counting{false};  // read by the intra-op pool's threads too
static long counts[kKinds];
static void count(Kind k) { if (counting) ++counts[k]; }
static long total() { long t = 0; for (long c : counts) t += c; return t; }

extern "C" {
void* malloc(std::size_t n) { count(kMalloc); return __libc_malloc(n); }
void* calloc(std::size_t a, std::size_t b) { count(kCalloc); return __libc_calloc(a, b); }
void* realloc(void* p, std::size_t n) { count(kRealloc); return __libc_realloc(p, n); }
int posix_memalign(void** out, std::size_t al, std::size_t n) {
  count(kPosixMemalign);
  if (al % sizeof(void*) != 0 || (al & (al - 1)) != 0) return EINVAL;
  void* p = __libc_memalign(al, n);
  if (!p) return ENOMEM;
  *out = p;
  return 0;
}
void* aligned_alloc(std::size_t al, std::size_t n) { count(kAlignedAlloc); return __libc_memalign(al, n); }
void* memalign(std::size_t al, std::size_t n) { count(kMemalign); return __libc_memalign(al, n); }
void* valloc(std::size_t n) { count(kValloc); return __libc_valloc(n); }
void* pvalloc(std::size_t n) { count(kPvalloc); return __libc_pvalloc(n); }
}

static void* checked(void* p) { if (!p) throw std::bad_alloc(); return p; }
static std::size_t al(std::align_val_t a) { return static_cast<std::size_t>(a); }
void* operator new(std::size_t n) { count(kNew); return checked(__libc_malloc(n)); }
void* operator new[](std::size_t n) { count(kNewArray); return checked(__libc_malloc(n)); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept { count(kNewNothrow); return __libc_malloc(n); }
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
  count(kNewArrayNothrow);
  return __libc_malloc(n);
}
void* operator new(std::size_t n, std::align_val_t a) { count(kNewAligned); return checked(__libc_memalign(al(a), n)); }
void* operator new[](std::size_t n, std::align_val_t a) {
  count(kNewArrayAligned);
  return checked(__libc_memalign(al(a), n));
}
void* operator new(std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  count(kNewAlignedNothrow);
  return __libc_memalign(al(a), n);
}
void* operator new[](std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  count(kNewArrayAlignedNothrow);
  return __libc_memalign(al(a), n);
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept { std::free(p); }

static void print_counts(const char* what) {
  std::printf("%s %ld", what, total());
  for (int k = 0; k < kKinds; ++k) if (counts[k]) std::printf(" %s=%ld", kNames[k], counts[k]);
  std::printf("\n");
  for (long& c : counts) c = 0;
}

// Calls every entry point once: each must be counted, or the counter is blind to it.
// Direct calls of the functions (not new-expressions) cannot be elided by the compiler.
static void* volatile sink;
static void probe() {
  const auto a64 = std::align_val_t{64};
  sink = std::malloc(8); std::free(sink);
  sink = std::calloc(2, 8); std::free(sink);
  sink = std::realloc(nullptr, 8); std::free(sink);
  void* p = nullptr;
  if (posix_memalign(&p, 64, 8) == 0) { sink = p; std::free(p); }
  sink = aligned_alloc(64, 64); std::free(sink);
  sink = memalign(64, 8); std::free(sink);
  sink = valloc(8); std::free(sink);
  sink = pvalloc(8); std::free(sink);
  sink = ::operator new(8); ::operator delete(sink);
  sink = ::operator new[](8); ::operator delete[](sink);
  sink = ::operator new(8, std::nothrow); ::operator delete(sink, std::nothrow);
  sink = ::operator new[](8, std::nothrow); ::operator delete[](sink, std::nothrow);
  sink = ::operator new(8, a64); ::operator delete(sink, a64);
  sink = ::operator new[](8, a64); ::operator delete[](sink, a64);
  sink = ::operator new(8, a64, std::nothrow); ::operator delete(sink, a64, std::nothrow);
  sink = ::operator new[](8, a64, std::nothrow); ::operator delete[](sink, a64, std::nothrow);
}

int main(int, char** argv) {
  counting = true;
  probe();
  counting = false;
  print_counts("probe");
  TMVA_SOFIE_net::Session s(argv[1], 4);
  std::vector<float> x(10 * 3 * 32 * 32, 0.5f), y(10 * 10);
  s.infer(4, x.data(), y.data());  // warm-up: a BLAS may set up its buffers once
  counting = true;
  for (std::size_t batch : {1, 3, 4, 10}) s.infer(batch, x.data(), y.data());  // 10 runs in chunks
  counting = false;
  print_counts("infer");
  // with intra-op threads: the pool's threads were started by the constructor, not by infer
  TMVA_SOFIE_net::Session threaded(argv[1], 4, {}, 2);
  threaded.infer(4, x.data(), y.data());
  counting = true;
  for (std::size_t batch : {1, 3, 4, 10}) threaded.infer(batch, x.data(), y.data());
  counting = false;
  print_counts("threaded");
  counting = true;
  auto v = s.infer(x.data());  // the SOFIE convenience form returns a vector: must be counted
  counting = false;
  print_counts("convenience");
}
'''


@pytest.mark.parametrize("blas", ["none", "openblas"])
def test_infer_does_not_allocate(model_dir: str, tmp_path, blas: str) -> None:
    exe = build_program(os.path.join(model_dir, "resnet_small.onnx"), str(tmp_path), "net", blas, MAIN)
    r = sh(exe, str(tmp_path / "net.dat"), env=dict(os.environ, OPENBLAS_NUM_THREADS="1"))
    assert r.returncode == 0, r.stderr
    lines = {line.split()[0]: line.split()[1:] for line in r.stdout.splitlines()}
    probe = lines["probe"]
    assert int(probe[0]) == len(KINDS) and sorted(probe[1:]) == sorted(f"{k}=1" for k in KINDS), (
        f"the counter does not see every allocation function once: {probe}")
    assert int(lines["convenience"][0]) > 0, "the allocation counter does not see allocations in infer"
    assert int(lines["infer"][0]) == 0, f"allocations inside infer: {' '.join(lines['infer'][1:])}"
    assert int(lines["threaded"][0]) == 0, (
        f"allocations inside infer with intra-op threads: {' '.join(lines['threaded'][1:])}")


KINDS = ["malloc", "calloc", "realloc", "posix_memalign", "aligned_alloc", "memalign", "valloc", "pvalloc",
         "new", "new[]", "new(nothrow)", "new[](nothrow)", "new(align)", "new[](align)",
         "new(align,nothrow)", "new[](align,nothrow)"]
