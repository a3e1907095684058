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
