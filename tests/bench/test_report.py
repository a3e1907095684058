"""bench/report.py and bench/probes.Machine: which limit binds, and the table's rows."""

from __future__ import annotations

from bench.cost import Cost
from bench.probes import Machine
from bench.report import ROW_FIELDS, limit, markdown, row

MACHINE = Machine(100.0, {16 << 10: 400.0, 256 << 10: 200.0, 8 << 20: 100.0, 256 << 20: 20.0})


def test_bandwidth_at_the_level_that_holds_the_working_set() -> None:
    assert MACHINE.bandwidth_at(1000) == (16 << 10, 400.0)
    assert MACHINE.bandwidth_at(300 << 10) == (8 << 20, 100.0)
    assert MACHINE.bandwidth_at(1 << 34) == (256 << 20, 20.0)  # beyond every probe: DRAM


def test_limit_is_the_larger_of_compute_and_streaming() -> None:
    # 1 GFLOP at 100 GFLOP/s: 10 ms; 1 MB at 100 GB/s (fits 8 MiB): 10 us -> compute-bound
    assert limit(Cost(10**9, 10**6, 10**6), MACHINE) == (10_000.0, "FMA peak")
    # 1 MFLOP: 10 us; 100 MB from DRAM at 20 GB/s: 5 ms -> bandwidth-bound
    assert limit(Cost(10**6, 10**8, 10**8), MACHINE) == (5000.0, "bandwidth at 256 MiB")


def test_row_and_table() -> None:
    r = row("mlp", "seed", 32, (50.0, 60.0), (110.0, 130.0), (10.0, 20.0), Cost(2 * 10**6, 10**6, 9 * 10**5),
            MACHINE, 1.25, 3.5, 2e-6)
    assert tuple(r) == ROW_FIELDS
    assert r["ort_us"] == 100.0 and r["ratio"] == 0.5  # ORT's floor subtracted, CPU times
    assert r["ort_wall_us"] == 110.0 and r["sofie_wall_us"] == 60.0
    assert r["limit_us"] == 20.0 and r["to_limit"] == 2.5  # 2 MFLOP at 100 GFLOP/s
    results = {"blas": "openblas", "ort_version": "1.0", "ort_floor_us": 10.0,
               "machine": {**MACHINE.to_json(), "cpu": "x86_64", "cores": 2, "load_average": 3.0},
               "rows": [r]}
    text = markdown(results)
    assert ("| mlp | 32 | 50 us | 100 us | 10 us | 0.50 | 0.002 | 1 | 20 us | FMA peak | 2.50 | 1.2 s | 3.5 s "
            "| 2.0e-06 |") in text
    assert "FMA peak 100.0 GFLOP/s" in text and "16 KiB 400 GB/s" in text and "256 MiB 20 GB/s" in text
    assert "median 10.0 us) is subtracted" in text
    header = next(line for line in text.splitlines() if line.startswith("| model"))
    assert header.count("|") == text.splitlines()[-1].count("|")  # every row as wide as the header


def test_gemm_line_next_to_the_peak() -> None:
    """The built-in sgemm's GFLOP/s per shape, with their share of the FMA peak, under the peak."""
    m = Machine(200.0, {16 << 10: 400.0}, {"128,10000,3200": 190.0, "32,50,50": 100.0}, "avx512 6x64")
    results = {"blas": "none", "ort_version": "1.0", "ort_floor_us": 1.0,
               "machine": {**m.to_json(), "cpu": "x86_64", "cores": 2, "load_average": 1.0}, "rows": []}
    text = markdown(results)
    assert ("Built-in sgemm (avx512 6x64 kernel), GFLOP/s and share of the FMA peak, MxNxK: "
            "128x10000x3200 190 (95%), 32x50x50 100 (50%).") in text
    assert "Built-in sgemm" not in markdown({**results, "machine": {**MACHINE.to_json(), "cpu": "x", "cores": 2,
                                                                     "load_average": 1.0}})
