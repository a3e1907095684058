"""bench/probes: the C++ probes build and give sane numbers (no timing thresholds: the machine
is shared; only that a peak exists, that no core reaches 10 TFLOP/s or 10 TB/s (a probe the
compiler folded away would), and that DRAM is slower than a cache-resident buffer)."""

from __future__ import annotations

from bench import probes


def test_fma_peak_and_bandwidth_ordering(tmp_path) -> None:
    assert 0 < probes.fma_peak(str(tmp_path)) < 10_000
    bw = probes.bandwidth(str(tmp_path), (64 << 10, 256 << 20))
    assert set(bw) == {64 << 10, 256 << 20}
    assert 10_000 > bw[64 << 10] > bw[256 << 20] > 0  # L2-resident reads beat reads from DRAM


def test_gemm_peak(tmp_path) -> None:
    """The sgemm probe builds against the runtime headers, runs the shapes it is given and names
    the kernel; its GFLOP/s stay below the FMA peak's sanity bound."""
    gflops, kernel = probes.gemm_peak(str(tmp_path), ("32,50,50", "7,19,3"))
    assert set(gflops) == {"32,50,50", "7,19,3"}
    assert all(0 < v < 10_000 for v in gflops.values())
    assert kernel in ("avx512 6x64", "avx2 6x16", "generic")


def _cache(root, index: str, level: int, kind: str, size: str) -> None:
    d = root / index
    d.mkdir()
    (d / "level").write_text(f"{level}\n")
    (d / "type").write_text(f"{kind}\n")
    (d / "size").write_text(f"{size}\n")


def test_bandwidth_sizes_follow_the_caches(tmp_path) -> None:
    """Half of each data cache level (instruction caches left out), the fixed sizes, and DRAM
    at twice the last level; the fixed sizes alone when sysfs has nothing to read."""
    _cache(tmp_path, "index0", 1, "Data", "48K")
    _cache(tmp_path, "index1", 1, "Instruction", "64K")
    _cache(tmp_path, "index2", 2, "Unified", "2048K")
    _cache(tmp_path, "index3", 3, "Unified", "192M")
    sizes = probes.bandwidth_sizes(str(tmp_path))
    assert sizes == tuple(sorted({24 << 10, 1 << 20, 96 << 20, 384 << 20, *probes.BANDWIDTH_SIZES}))
    assert probes.bandwidth_sizes(str(tmp_path / "missing")) == probes.BANDWIDTH_SIZES
