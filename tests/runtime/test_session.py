"""sofie::rt::SessionBase (sofie_rt/session.hxx) on hand-written models: the batch checks and
messages of each Batching, the chunking, the arena sizing, the weights checks and sharing.

One C++ driver runs every case and prints `case: result` lines that the tests read."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from sofie.runtime.weightfile import write_weights  # noqa: E402

DRIVER = r"""
#include <cstdio>
#include <exception>
#include <fstream>
#include <string>
#include <vector>
#include "sofie_rt/sofie_rt.hxx"

namespace rt = sofie::rt;

template <rt::Batching B>
struct Toy {
  static constexpr rt::WeightsSpec kWeights{PAYLOAD, FINGERPRINT, 2u};
  static constexpr const char* kDefaultWeightsPath = "toy.dat";
  static constexpr rt::Batching kBatching = B;
  static constexpr std::size_t kDefaultMaxBatch = 4;
  static constexpr std::size_t kDims = 0;  // no dim symbol but the batch
  static constexpr std::array<const char*, kDims> kDimNames{};
  static constexpr std::array<std::size_t, kDims> kDefaultMaxDims{};
  static inline std::size_t arena_request = 0;  // what the Session asked for
  static std::size_t arena_bytes(std::size_t max_batch, const std::array<std::size_t, kDims>&) {
    arena_request = max_batch;
    static constexpr std::size_t rows[][2] = {{128, 1000}};
    return rt::arena_size(rows, std::array<std::size_t, 2>{1, max_batch});
  }
};

// A model whose weights (BIG_PAYLOAD bytes) are above kPrivateWeightsMaxBytes: shared, not copied.
struct BigToy : Toy<rt::Batching::Chunked> {
  static constexpr rt::WeightsSpec kWeights{BIG_PAYLOAD, FINGERPRINT, 1u};
};

// What a generated Session adds: a batched entry point; here it records the slices.
template <rt::Batching B>
class Session : public rt::SessionBase<Toy<B>> {
 public:
  using rt::SessionBase<Toy<B>>::SessionBase;
  std::string slices(std::size_t batch) {
    std::string s;
    this->for_each_chunk(batch, [&](std::size_t done, std::size_t b) {
      s += std::to_string(done) + "+" + std::to_string(b) + " ";
    });
    return s.empty() ? "none" : s;
  }
  std::byte* arena() { return this->arena_data(); }
  float first_weight(std::size_t offset) const { return *this->template weight<float>(offset); }
};

// Whether the mapping holding p carries the huge page advice ("hg" in its VmFlags, smaps).
std::string advised(const void* p) {
  std::ifstream smaps("/proc/self/smaps");
  const auto at = reinterpret_cast<std::uintptr_t>(p);
  bool inside = false;
  for (std::string line; std::getline(smaps, line);) {
    unsigned long lo = 0, hi = 0;
    if (std::sscanf(line.c_str(), "%lx-%lx ", &lo, &hi) == 2) inside = lo <= at && at < hi;
    if (inside && line.rfind("VmFlags:", 0) == 0) return line.find(" hg") != std::string::npos ? "hg" : "no hg";
  }
  return "no mapping";
}

template <class F>
void report(const char* name, F&& f) {
  try {
    std::printf("%s: %s\n", name, f().c_str());
  } catch (const std::exception& e) {
    std::printf("%s: threw %s\n", name, e.what());
  }
}

int main(int argc, char** argv) {
  if (argc != 5) return 1;
  const std::string good = argv[1], corrupt = argv[2], other = argv[3], big = argv[4];
  using Fixed = Session<rt::Batching::Fixed>;
  using Bounded = Session<rt::Batching::Bounded>;
  using Chunked = Session<rt::Batching::Chunked>;
  const auto weights = Toy<rt::Batching::Chunked>::kWeights;
  auto shared = rt::load_weights(good, weights);

  report("chunked 11", [&] { return Chunked(shared, 4).slices(11); });
  report("chunked 4", [&] { return Chunked(shared, 4).slices(4); });
  report("chunked 0", [&] { return Chunked(shared, 4).slices(0); });
  report("bounded 3", [&] { return Bounded(shared, 4).slices(3); });
  report("bounded 5", [&] { return Bounded(shared, 4).slices(5); });
  report("fixed 1", [&] { return Fixed(shared, 4).slices(1); });
  report("fixed 2", [&] { return Fixed(shared, 4).slices(2); });
  report("fixed max_batch", [&] { return std::to_string(Fixed(shared, 9).max_batch()); });
  report("max_batch 0", [&] { return std::to_string(Chunked(shared, 0).max_batch()); });
  report("default max_batch", [&] { return std::to_string(Chunked(shared).max_batch()); });
  report("arena request", [&] {
    Chunked s(shared, 7);
    const bool aligned = reinterpret_cast<std::uintptr_t>(s.arena()) % 64 == 0;
    return std::to_string(Toy<rt::Batching::Chunked>::arena_request) + (aligned ? " aligned" : " unaligned");
  });
  report("arena overflow", [&] { return std::to_string(Chunked(shared, std::size_t(-1) / 8).max_batch()); });
  report("null weights", [&] { return std::to_string(Chunked(std::shared_ptr<const rt::Weights>(), 4).max_batch()); });
  report("shared", [&] {  // small weights: each Session built from a shared object copies them
    Chunked a(shared, 2), b(a.weights(), 3);
    const bool copies = a.weights() != shared && b.weights() != a.weights() && a.weights().use_count() == 1;
    const bool equal = a.first_weight(64) == 2.5f && b.first_weight(64) == 2.5f && b.weights()->path() == good;
    return std::string(copies && equal && a.arena() != b.arena() ? "private weights, two arenas" : "wrong");
  });
  report("alone", [&] {  // built from a file, or from the only reference: nothing to copy
    Chunked a(good, 2);
    const rt::Weights* w = a.weights().get();
    Chunked b(std::move(a));
    auto only = rt::load_weights(good, weights);
    const rt::Weights* o = only.get();
    Chunked c(std::move(only), 2);
    return std::string(b.weights().get() == w && c.weights().get() == o ? "not copied" : "wrong");
  });
  report("big shared", [&] {
    auto big_weights = rt::load_weights(big, BigToy::kWeights);
    rt::SessionBase<BigToy> a(big_weights, 2), b(big_weights, 3);
    const bool same = a.weights() == big_weights && b.weights() == big_weights;
    return std::string(same ? "one weights" : "wrong");
  });
  report("huge pages", [&] {  // a buffer of 2 MiB or more on huge pages, a smaller one not
    rt::AlignedBuffer big(rt::kHugePageBytes + 64), small(rt::kHugePageBytes - 64);
    const auto at = [](const rt::AlignedBuffer& b) { return reinterpret_cast<std::uintptr_t>(b.data()); };
    return std::to_string(at(big) % rt::kHugePageBytes) + " " + std::to_string(at(small) % 64) + " " +
           advised(big.data()) + ", " + advised(small.data());
  });
  report("moved", [&] {
    Chunked a(shared, 2);
    std::byte* arena = a.arena();
    Chunked b(std::move(a));
    return std::string(b.arena() == arena && b.max_batch() == 2 ? "arena moved" : "wrong");
  });
  report("weight", [&] {
    Chunked s(good, 2);  // the path constructor loads and checks the file itself
    return std::to_string(s.first_weight(0)) + " " + std::to_string(s.first_weight(64));
  });
  report("corrupt", [&] { return std::to_string(Chunked(corrupt, 2).max_batch()); });
  report("other model", [&] { return std::to_string(Chunked(other, 2).max_batch()); });
  report("missing", [&] { return std::to_string(Chunked().max_batch()); });  // toy.dat
  report("missing relative", [&] { return std::to_string(Chunked("../elsewhere/./nope.dat").max_batch()); });
}
"""

FINGERPRINT = 0x1234_5678_9ABC_DEF0


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict[str, str]:
    d = tmp_path_factory.mktemp("session")
    blobs = [np.arange(3, dtype=np.float32).tobytes() + b"\0" * 52, np.full(4, 2.5, np.float32).tobytes()]
    write_weights(str(d / "good.dat"), blobs, FINGERPRINT)
    payload = (d / "good.dat").stat().st_size - 64
    data = bytearray((d / "good.dat").read_bytes())
    data[70] ^= 0x10
    (d / "corrupt.dat").write_bytes(bytes(data))
    write_weights(str(d / "other.dat"), blobs, FINGERPRINT + 1)
    write_weights(str(d / "big.dat"), [np.zeros((1 << 18) + 16, np.float32).tobytes()], FINGERPRINT)
    big_payload = (d / "big.dat").stat().st_size - 64
    src = d / "driver.cpp"
    src.write_text(DRIVER.replace("BIG_PAYLOAD", f"{big_payload}ull").replace("PAYLOAD", f"{payload}ull")
                   .replace("FINGERPRINT", f"{FINGERPRINT}ull"))
    exe = d / "driver"
    cmd = ["g++", "-std=c++17", "-O1", "-Wall", "-Wextra", "-Werror", "-DSOFIE_BLAS_NONE",
           f"-I{REPO / 'sofie' / 'runtime'}", str(src), "-o", str(exe)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    files = [str(d / f) for f in ("good.dat", "corrupt.dat", "other.dat", "big.dat")]
    r = subprocess.run([str(exe), *files], capture_output=True, text=True, cwd=d)
    assert r.returncode == 0, r.stderr
    return {"dir": str(d), **dict(line.split(": ", 1) for line in r.stdout.splitlines())}


def test_chunked_batches_run_in_slices_of_max_batch(results: dict[str, str]) -> None:
    assert results["chunked 11"] == "0+4 4+4 8+3 "
    assert results["chunked 4"] == "0+4 "
    assert results["chunked 0"] == "none"


def test_bounded_batches_run_whole_up_to_max_batch(results: dict[str, str]) -> None:
    assert results["bounded 3"] == "0+3 "
    assert results["bounded 5"] == "threw sofie: batch exceeds max_batch"


def test_fixed_shape_runs_one_event(results: dict[str, str]) -> None:
    assert results["fixed 1"] == "0+1 "
    assert results["fixed 2"] == "threw sofie: this model has a fixed shape; batch must be 1"
    assert results["fixed max_batch"] == "1"


def test_max_batch_defaults_and_limits(results: dict[str, str]) -> None:
    assert results["max_batch 0"] == "1"
    assert results["default max_batch"] == "4"
    assert results["arena request"] == "7 aligned"  # sized by the model's arena_bytes, once
    assert results["arena overflow"].startswith(
        "threw sofie: the maxima given to the Session need an arena larger than memory")
    assert results["null weights"] == "threw sofie: Session needs weights"


def test_sessions_share_large_weights_and_copy_small_ones(results: dict[str, str]) -> None:
    assert results["shared"] == "private weights, two arenas"
    assert results["alone"] == "not copied"
    assert results["big shared"] == "one weights"
    assert results["moved"] == "arena moved"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="madvise and /proc/self/smaps are Linux's")
def test_large_buffers_are_on_huge_pages(results: dict[str, str]) -> None:
    # offsets from a 2 MiB and a 64-byte boundary, then each mapping's huge page advice
    assert results["huge pages"] == "0 0 hg, no hg"


def test_weights_are_read_and_checked(results: dict[str, str]) -> None:
    assert results["weight"] == "0.000000 2.500000"
    assert "corrupt (checksum mismatch)" in results["corrupt"]
    assert "different model" in results["other model"]
    assert "toy.dat" in results["missing"] and "cannot open" in results["missing"]


def test_missing_weights_are_named_by_absolute_path(results: dict[str, str]) -> None:
    # the driver runs in `dir`: relative paths are resolved against it and normalized
    d = Path(results["dir"])
    assert results["missing"] == (f"threw sofie weights '{d / 'toy.dat'}': "
                                  "cannot open file (missing or unreadable)")
    assert results["missing relative"].startswith(f"threw sofie weights '{d.parent / 'elsewhere' / 'nope.dat'}': ")
