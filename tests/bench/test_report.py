"""bench/report.py and bench/probes.Machine: which limit binds, and the table's rows."""

from __future__ import annotations

from bench.cost import Cost
from bench.probes import Machine
from bench.report import ROW_FIELDS, THREAD_FIELDS, limit, markdown, readme_table, row, thread_rows, threads_table
from sofie.readme import replace_section

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
    readme = readme_table(results, "docs/images/bench.svg")
    assert "| mlp | 32 | 50 us | 100 us | **0.50** | 2.50 | FMA peak |" in readme
    assert "BLAS `openblas`" in readme and "FMA peak 100 GFLOP/s" in readme
    assert readme.rstrip().endswith("(docs/images/bench.svg)")


def test_thread_rows_from_google_benchmark_medians() -> None:
    medians = [  # 1 thread: 1000 calls/s; 2 threads together: 1800 calls/s
        {"run_name": "threads_m_b1/min_time:1.000/real_time/threads:1", "items_per_second": 1000.0,
         "real_time": 1000.0, "cpu_time": 500.0},
        {"run_name": "threads_m_b1/min_time:1.000/real_time/threads:2", "items_per_second": 1800.0,
         "real_time": 555.0, "cpu_time": 525.0},  # CPU time per call: 5% more at 2 threads
        {"run_name": "intra_m_b1/1/min_time:1.000/real_time", "real_time": 900.0, "cpu_time": 900.0},
        {"run_name": "intra_m_b1/2/min_time:1.000/real_time", "real_time": 600.0, "cpu_time": 580.0}]
    rows = thread_rows("m", medians, 0.4)
    assert [tuple(r) for r in rows] == [THREAD_FIELDS] * 2
    sessions, intra = rows
    assert (sessions["kind"], sessions["one_us"], round(sessions["two_us"], 3)) == ("sessions", 1000.0, 1111.111)
    assert round(sessions["ratio"], 6) == 1.8  # throughput of 2 over 1
    assert round(sessions["cpu_ratio"], 3) == 1.905  # 2 x 500 / 525
    assert (intra["kind"], intra["ratio"], intra["cpu_ratio"]) == ("intra_op", 1.5, None)  # speedup of one call
    text = "\n".join(threads_table(rows))
    assert "| m | 1 | sessions | 1 ms | 1.11 ms | 1.80 | 1.90 | 0.4 |" in text
    assert "| m | 1 | intra_op | 900 us | 600 us | 1.50 | - | 0.4 |" in text
    assert threads_table([]) == []


def test_readme_section_replaced_in_place(tmp_path) -> None:
    path = tmp_path / "README.md"
    path.write_text("# x\n\nintro\n")
    replace_section(str(path), "bench", "first", "Benchmarks")  # no markers yet: appended
    assert path.read_text() == "# x\n\nintro\n\n## Benchmarks\n\n<!-- bench:begin -->\nfirst\n<!-- bench:end -->\n"
    path.write_text(path.read_text() + "\n## After\n")
    replace_section(str(path), "bench", "second", "Benchmarks")
    text = path.read_text()
    assert "first" not in text and text.count("<!-- bench:begin -->") == 1
    assert text.endswith("<!-- bench:begin -->\nsecond\n<!-- bench:end -->\n\n## After\n")


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
