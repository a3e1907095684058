"""bench/probes: the C++ probes build and give sane numbers (no timing thresholds: the machine
is shared; only that a peak exists and that DRAM is slower than a cache-resident buffer)."""

from __future__ import annotations

from bench import probes


def test_fma_peak_and_bandwidth_ordering(tmp_path) -> None:
    assert probes.fma_peak(str(tmp_path)) > 0
    bw = probes.bandwidth(str(tmp_path), (64 << 10, 256 << 20))
    assert set(bw) == {64 << 10, 256 << 20}
    assert bw[64 << 10] > bw[256 << 20] > 0  # L2-resident reads beat reads from DRAM
