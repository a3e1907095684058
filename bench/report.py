"""The `make bench` report: results.json (what a plot reads) and results.md (the table).

results.json holds
  machine:      fma_peak_gflops, bandwidth_gbs {working-set bytes: GB/s}, gemm_gflops {"M,N,K":
                the built-in sgemm's GFLOP/s}, gemm_kernel, cpu, load_average
  ort_floor_us: the median over rows of ONNX Runtime's per-call CPU time on an Identity model,
                which each row measures right before its model and subtracts from ort_us
  rows:         one per model and batch, with the fields of ROW_FIELDS; `ratio` is sofie / ORT
                and `to_limit` sofie / the machine's limit (1.0 = at the limit), the two a
                ratio plot draws per model; `max_rel_err` checks sofie's output against ORT's.
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
    return "\n".join(lines) + "\n"


def write(out: str, results: dict[str, Any]) -> tuple[str, str]:
    """out/results.json and out/results.md."""
    os.makedirs(out, exist_ok=True)
    js, md = os.path.join(out, "results.json"), os.path.join(out, "results.md")
    with open(js, "w") as f:
        json.dump(results, f, indent=1)
    with open(md, "w") as f:
        f.write(markdown(results))
    return js, md
