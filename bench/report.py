"""The `make bench` report: results.json (what a plot reads) and results.md (the table).

results.json holds
  machine:      fma_peak_gflops, bandwidth_gbs {working-set bytes: GB/s}, gemm_gflops {"M,N,K":
                the built-in sgemm's GFLOP/s}, gemm_kernel, cpu, load_average
  ort_floor_us: the median over rows of ONNX Runtime's per-call CPU time on an Identity model,
                which each row measures right before its model and subtracts from ort_us
  rows:         one per model and batch, with the fields of ROW_FIELDS; `ratio` is sofie / ORT
                and `to_limit` sofie / the machine's limit (1.0 = at the limit), the two a
                ratio plot draws per model; `max_rel_err` checks sofie's output against ORT's.
  threads:      scaling over threads (wall-clock), one row per model, batch and kind with the
                fields of THREAD_FIELDS: kind "sessions" (throughput of 2 threads, each with its
                own Session, over 1 thread's) or "intra_op" (speed of one Session with
                intra_op_threads=2 over one with 1); `ratio` is 2 threads / 1 (2.0 = linear),
                `load_average` the host's in the minute before. For sessions, `cpu_ratio` is
                2 x the CPU time per call at 1 thread over that at 2: the ratio 2 threads would
                reach with a free core each (what a loaded host still measures: contention
                between Sessions, such as a lock spun on, shared cache lines or bandwidth,
                shows as more CPU time per call); null for intra_op.
"""

from __future__ import annotations

import json
import os
from typing import Any

from bench.cost import Cost
from bench.probes import Machine

ROW_FIELDS = ("model", "group", "batch", "sofie_us", "ort_us", "ort_floor_us", "ratio", "sofie_wall_us",
              "ort_wall_us", "flops", "bytes", "limit_us", "limit_kind", "to_limit", "generate_s", "build_s",
              "max_rel_err")


THREAD_FIELDS = ("model", "batch", "kind", "one_us", "two_us", "ratio", "cpu_ratio", "load_average")


def thread_rows(model: str, medians: list[dict[str, Any]], load_average: float) -> list[dict[str, Any]]:
    """Rows of THREAD_FIELDS from google-benchmark's median entries of a model's threads_ cases
    (run_name "threads_M_bB/real_time/threads:T", items_per_second the threads' summed rate) and
    intra_ cases ("intra_M_bB/T/real_time", real_time per call): one_us and two_us are
    microseconds per call of one Session, at 1 and 2 threads."""
    per: dict[tuple[str, int], dict[int, float]] = {}
    cpu: dict[tuple[str, int], dict[int, float]] = {}  # CPU time per call (summed over threads)
    for b in medians:
        head, *rest = b["run_name"].split("/")
        kind = "sessions" if head.startswith("threads_") else "intra_op"
        batch = int(head.rsplit("_b", 1)[1])
        if kind == "sessions":
            t = int(next(p for p in rest if p.startswith("threads:")).split(":")[1])
            us = t * 1e6 / b["items_per_second"]  # each thread's time per call
            cpu.setdefault((kind, batch), {})[t] = b["cpu_time"]
        else:
            t, us = int(rest[0]), b["real_time"]
        per.setdefault((kind, batch), {})[t] = us
    rows = []
    for (kind, batch), us in per.items():
        if 1 in us and 2 in us:
            # sessions: two calls per two_us against one per one_us; intra: one call each
            ratio = (2 if kind == "sessions" else 1) * us[1] / us[2]
            c = cpu.get((kind, batch), {})
            cpu_ratio = 2 * c[1] / c[2] if 1 in c and 2 in c else None
            rows.append(dict(zip(THREAD_FIELDS, (model, batch, kind, us[1], us[2], ratio, cpu_ratio, load_average))))
    return rows


def limit(cost: Cost, machine: Machine) -> tuple[float, str]:
    """The fastest a call can be on this core, in microseconds, and what bounds it: the FLOPs
    at the FMA peak, or the streamed bytes at the bandwidth of the level they fit in."""
    flops_us = cost.flops / (machine.fma_peak_gflops * 1e3)
    size, gbs = machine.bandwidth_at(cost.bytes)
    bytes_us = cost.bytes / (gbs * 1e3)
    if flops_us >= bytes_us:
        return flops_us, "FMA peak"
    return bytes_us, f"bandwidth at {_size(size)}"


def row(model: str, group: str, batch: int, sofie: tuple[float, float], ort: tuple[float, float],
        floor: tuple[float, float], cost: Cost, machine: Machine, generate_s: float, build_s: float,
        max_rel_err: float) -> dict[str, Any]:
    """One table row from (CPU, wall-clock) microseconds per call of sofie, ORT and ORT's floor;
    ratios use CPU times, ORT's with the floor subtracted. `max_rel_err`: sofie's output against
    ORT's on one input (largest difference over ORT's largest magnitude)."""
    sofie_us, ort_us = sofie[0], max(ort[0] - floor[0], 1e-3)
    limit_us, kind = limit(cost, machine)
    r = {"model": model, "group": group, "batch": batch, "sofie_us": sofie_us, "ort_us": ort_us,
         "ort_floor_us": floor[0],
         "ratio": sofie_us / ort_us, "sofie_wall_us": sofie[1], "ort_wall_us": max(ort[1] - floor[1], 1e-3),
         "flops": cost.flops, "bytes": cost.bytes, "limit_us": limit_us, "limit_kind": kind,
         "to_limit": sofie_us / limit_us, "generate_s": generate_s, "build_s": build_s, "max_rel_err": max_rel_err}
    return {k: r[k] for k in ROW_FIELDS}


def _size(n: int) -> str:
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift:
            return f"{n / (1 << shift):g} {unit}"
    return f"{n} B"


def _us(t: float) -> str:
    """Microseconds, in ms or s once large, three significant digits."""
    if t >= 1e6:
        return f"{t / 1e6:.3g} s"
    if t >= 1e3:
        return f"{t / 1e3:.3g} ms"
    return f"{t:.3g} us"


def _gemm_line(m: dict[str, Any]) -> list[str]:
    """The built-in sgemm's GFLOP/s per (M, N, K) next to the FMA peak (none in older results)."""
    if not m.get("gemm_gflops"):
        return []
    peak = m["fma_peak_gflops"]
    shapes = ", ".join(f"{k.replace(',', 'x')} {v:.0f} ({v / peak:.0%})" for k, v in m["gemm_gflops"].items())
    return [f"Built-in sgemm ({m['gemm_kernel']} kernel), GFLOP/s and share of the FMA peak, MxNxK: {shapes}."]


def markdown(results: dict[str, Any]) -> str:
    """The table with a preamble stating the machine's measured limits and ORT's floor."""
    m = results["machine"]
    bw = ", ".join(f"{_size(int(k))} {v:.0f} GB/s" for k, v in m["bandwidth_gbs"].items())
    lines = [f"sofie ({results['blas']}) vs ONNX Runtime {results['ort_version']}, one thread each, in one run on "
             f"{m['cpu']} (load average {m['load_average']:.1f} on {m['cores']} cores: a shared machine, "
             "compare ratios, not absolute times).",
             f"Machine limits (bench/probes): FMA peak {m['fma_peak_gflops']:.1f} GFLOP/s; read bandwidth {bw}.",
             *_gemm_line(m),
             "ORT's per-call floor (an Identity model through the same path, timed before each model; "
             f"median {results['ort_floor_us']:.1f} us) is subtracted from ORT's times.",
             "Times are CPU time per call (median); results.json also has wall-clock times.",
             "Output check: sofie's output against ORT's on one input, largest difference over ORT's largest "
             "magnitude.",
             "",
             "| model | batch | sofie | ORT | ORT floor | sofie / ORT | GFLOP | MB streamed | limit | bound by "
             "| sofie / limit | generate | C++ build | output check |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|"]
    for r in results["rows"]:
        lines.append(f"| {r['model']} | {r['batch']} | {_us(r['sofie_us'])} | {_us(r['ort_us'])} "
                     f"| {_us(r['ort_floor_us'])} | {r['ratio']:.2f} "
                     f"| {r['flops'] / 1e9:.3g} | {r['bytes'] / 1e6:.3g} | {_us(r['limit_us'])} | {r['limit_kind']} "
                     f"| {r['to_limit']:.2f} | {r['generate_s']:.1f} s | {r['build_s']:.1f} s "
                     f"| {r['max_rel_err']:.1e} |")
    return "\n".join(lines + threads_table(results.get("threads", []))) + "\n"


def threads_table(rows: list[dict[str, Any]]) -> list[str]:
    """The scaling over threads (THREAD_FIELDS), after the main table; nothing without rows."""
    if not rows:
        return []
    lines = ["", "Threads (wall-clock time per call of one Session; the host's cores are shared, so see the load):",
             "sessions: 2 threads, each with its own Session (weights loaded once: shared, or copied per "
             "Session up to 1 MiB), against 1; ratio = throughput "
             "of 2 / of 1 (2.00 = linear). intra_op: one Session with intra_op_threads=2 against 1; "
             "ratio = speedup. CPU-time ratio (sessions): 2 x CPU time per call at 1 thread / at 2, the "
             "ratio with a free core per thread.", "",
             "| model | batch | kind | 1 thread | 2 threads | ratio | CPU-time ratio | load average |",
             "|---|---:|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        cpu_ratio = "-" if r["cpu_ratio"] is None else f"{r['cpu_ratio']:.2f}"
        lines.append(f"| {r['model']} | {r['batch']} | {r['kind']} | {_us(r['one_us'])} | {_us(r['two_us'])} "
                     f"| {r['ratio']:.2f} | {cpu_ratio} | {r['load_average']:.1f} |")
    return lines


def readme_table(results: dict[str, Any], chart: str) -> str:
    """The README's benchmark section: the machine, the ratios and the chart (a path relative
    to the README)."""
    m = results["machine"]
    lines = [f"`make bench` on {m['cpu']}, {m['cores']} cores (load average {m['load_average']:.1f}), "
             f"FMA peak {m['fma_peak_gflops']:.0f} GFLOP/s, sofie with BLAS `{results['blas']}` against "
             f"ONNX Runtime {results['ort_version']}, one thread each, in the same run "
             "(`python bench/run.py --readme` reruns it and rewrites this section). "
             "Lower is better; the limit is the model's FLOPs at the FMA peak or its streamed bytes at the "
             "measured bandwidth, whichever is longer.", "",
             "| model | batch | sofie | ORT | sofie / ORT | sofie / limit | bound by |",
             "|---|---:|---:|---:|---:|---:|---|"]
    for r in results["rows"]:
        lines.append(f"| {r['model']} | {r['batch']} | {_us(r['sofie_us'])} | {_us(r['ort_us'])} "
                     f"| **{r['ratio']:.2f}** | {r['to_limit']:.2f} | {r['limit_kind']} |")
    return "\n".join(lines + ["", f"![sofie / ONNX Runtime per model]({chart})"]) + "\n"


def write(out: str, results: dict[str, Any]) -> tuple[str, str]:
    """out/results.json and out/results.md."""
    os.makedirs(out, exist_ok=True)
    js, md = os.path.join(out, "results.json"), os.path.join(out, "results.md")
    with open(js, "w") as f:
        json.dump(results, f, indent=1)
    with open(md, "w") as f:
        f.write(markdown(results))
    return js, md
