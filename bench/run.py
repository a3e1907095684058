"""`make bench`: sofie's generated code (google-benchmark, built through CMake, one executable
per model) against ONNX Runtime, single-threaded, on the same ONNX files, in one run; with
this machine's limits (bench/probes), each model's FLOPs and streamed bytes (bench/cost.py),
and the time to generate and to build each model. Writes OUT/results.json and OUT/results.md
(bench/report.py) and prints the table.

usage: python bench/run.py [--models a,b | --quick] [--blas openblas|none|...] [--out DIR] [--readme]

ORT is timed from Python (one intra-op thread, every graph optimization); its per-call floor
(an Identity model through the same path, timed right before each model) is subtracted, as
in ../shared/ANCHORS.md. Both sides
are timed by the CPU time of the process per call (the median), since the machines this runs on
are shared and loaded: wall-clock times are kept in the JSON too.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from bench import probes, report  # noqa: E402
from bench.cost import model_cost  # noqa: E402
from bench.models import DEFAULT, MODELS, QUICK, export, group_of  # noqa: E402
from bench.plot import plot_ratios  # noqa: E402
from sofie.progress import track  # noqa: E402
from sofie.readme import replace_section  # noqa: E402

README_CHART = "docs/images/bench.svg"


def _env() -> dict[str, str]:
    return dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"],
                OPENBLAS_NUM_THREADS="1")


# Scaling over threads, timed for these models and batches (wall-clock time): SESSIONS, the
# throughput of 2 threads each running its own Session (weights loaded once, copied per Session
# up to 1 MiB) over that of 1 thread;
# INTRA, one Session with intra_op_threads=2 against one with 1.
SESSIONS = {"linear_10x50": (1, 32), "mlp_5x200": (1, 32), "conv1": (1, 32), "resnet18": (1,)}
INTRA = {"resnet18": (1,), "conv14": (1,)}


def _batches(table: dict[str, tuple[int, ...]], name: str) -> str:
    return ",".join(map(str, table.get(name, ()))) or "-"


def configure(names: list[str], onnx_dir: str, build: str, blas: str) -> None:
    import onnxruntime as ort
    specs = []
    for n in names:
        s = ort.InferenceSession(os.path.join(onnx_dir, n + ".onnx"), providers=["CPUExecutionProvider"])
        out_size = math.prod(d for d in s.get_outputs()[0].shape if isinstance(d, int))
        specs.append(f"{n}:{math.prod(MODELS[n][1])}:{out_size}:{','.join(map(str, MODELS[n][2]))}"
                     f":{_batches(SESSIONS, n)}:{_batches(INTRA, n)}")
    subprocess.run(["cmake", "-S", HERE, "-B", build, f"-DSOFIE_BENCH_MODELS={';'.join(specs)}",
                    f"-DSOFIE_BENCH_ONNX_DIR={onnx_dir}", f"-DSOFIE_BENCH_BLAS={blas}"],
                   check=True, env=_env(), capture_output=True)


def _timed_build(build: str, target: str) -> float:
    t0 = time.perf_counter()
    r = subprocess.run(["cmake", "--build", build, "--target", target], env=_env(), capture_output=True, text=True)
    if r.returncode:
        raise SystemExit(f"bench: building {target} failed:\n{r.stdout[-4000:]}{r.stderr[-4000:]}")
    return time.perf_counter() - t0


def build_model(build: str, name: str) -> tuple[float, float]:
    """Seconds to generate the model's C++ (sofie-compile) and to build its benchmark."""
    return _timed_build(build, f"model_{name}_generate"), _timed_build(build, f"bench_{name}")


def run_model(build: str, name: str, repetitions: int) -> dict[int, tuple[float, float]]:
    """Microseconds per infer call at each batch, CPU and wall-clock: the median of the repetitions.
    Each case also writes its output on the check input into build/check (see check_output)."""
    os.makedirs(os.path.join(build, "check"), exist_ok=True)
    r = subprocess.run([os.path.join(build, f"bench_{name}"), "--benchmark_format=json", "--benchmark_filter=^bench_",
                        f"--benchmark_repetitions={repetitions}", "--benchmark_report_aggregates_only=true"],
                       check=True, env=dict(_env(), SOFIE_BENCH_CHECK_DIR=os.path.join(build, "check")),
                       capture_output=True, text=True)
    times: dict[int, tuple[float, float]] = {}
    for b in json.loads(r.stdout)["benchmarks"]:
        if b.get("aggregate_name", "median") == "median":
            times[int(b["run_name"].split("/")[0].rsplit("_b", 1)[1])] = (b["cpu_time"], b["real_time"])
    return times


def run_threads(build: str, name: str, repetitions: int) -> list[dict]:
    """The model's threads_ and intra_ cases (SESSIONS, INTRA): report.thread_rows of the
    medians, with the load average of the minute before (other processes take cores too)."""
    if name not in SESSIONS and name not in INTRA:
        return []
    load = os.getloadavg()[0]
    r = subprocess.run([os.path.join(build, f"bench_{name}"), "--benchmark_format=json",
                        "--benchmark_filter=^(threads|intra)_", f"--benchmark_repetitions={repetitions}",
                        "--benchmark_report_aggregates_only=true"],
                       check=True, env=_env(), capture_output=True, text=True)
    medians = [b for b in json.loads(r.stdout)["benchmarks"] if b.get("aggregate_name", "median") == "median"]
    return report.thread_rows(name, medians, load)


def check_output(build: str, name: str, batch: int, path: str) -> float:
    """The largest difference between sofie's output (written by the benchmark) and ORT's, on
    the input x[i] = sin(0.1 i), relative to the largest magnitude of ORT's output: a benchmark
    of a wrong result would mean nothing."""
    n = batch * math.prod(MODELS[name][1])
    x = np.sin(0.1 * np.arange(n)).astype(np.float32).reshape(batch, *MODELS[name][1])
    ref = ort_session(path).run(None, {"x": x})[0].astype(np.float32).ravel()
    ours = np.fromfile(os.path.join(build, "check", f"{name}_b{batch}.bin"), np.float32)
    if ours.shape != ref.shape:
        return math.inf
    return float(np.max(np.abs(ours - ref)) / max(float(np.max(np.abs(ref))), 1e-30))


def ort_session(path: str):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def ort_time(path: str, x: np.ndarray, min_seconds: float = 0.5) -> tuple[float, float]:
    """Median microseconds per call, single thread: the process's CPU time and wall-clock time."""
    s = ort_session(path)
    feed = {s.get_inputs()[0].name: x}
    s.run(None, feed)
    cpu, wall, start = [], [], time.perf_counter()
    while time.perf_counter() - start < min_seconds or len(cpu) < 5:
        c0, t0 = time.process_time(), time.perf_counter()
        s.run(None, feed)
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - t0)
    return float(np.median(cpu)) * 1e6, float(np.median(wall)) * 1e6


def identity_model(folder: str) -> str:
    import onnx
    from onnx import TensorProto, helper
    path = os.path.join(folder, "identity.onnx")
    g = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "id",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 1])])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def cpu_name() -> str:
    """The CPU model and its widest vector ISA (the kernels differ between AVX2 and AVX-512)."""
    try:
        with open("/proc/cpuinfo") as f:
            info = f.read()
    except OSError:
        return platform.processor() or platform.machine()
    model = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")),
                 platform.machine())
    flags = set(next((line.split(":", 1)[1].split() for line in info.splitlines() if line.startswith("flags")), []))
    isa = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "SSE"
    return f"{model} ({isa})"


def machine(out: str) -> probes.Machine:
    """The probes, run twice: a shared machine may slow either run, and the limit is the best seen."""
    a, b = probes.measure(out), probes.measure(out)
    return probes.Machine(max(a.fma_peak_gflops, b.fma_peak_gflops),
                          {k: max(a.bandwidth_gbs[k], b.bandwidth_gbs[k]) for k in a.bandwidth_gbs},
                          {k: max(a.gemm_gflops[k], b.gemm_gflops[k]) for k in a.gemm_gflops}, a.gemm_kernel)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", help=f"comma-separated, of: {', '.join(MODELS)} (default: {', '.join(DEFAULT)})")
    p.add_argument("--quick", action="store_true", help=f"a one-minute subset ({', '.join(QUICK)}), shorter timings")
    p.add_argument("--blas", default="none", help="BLAS of the generated code (default: none, sofie's own kernels)")
    p.add_argument("--readme", action="store_true",
                   help=f"rewrite README.md's benchmark section and {README_CHART} from this run")
    p.add_argument("--out", default=os.path.join(os.path.dirname(HERE), "build", "bench"))
    args = p.parse_args(argv)
    names = args.models.split(",") if args.models else (QUICK if args.quick else DEFAULT)
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        p.error(f"unknown model(s) {', '.join(unknown)}; known: {', '.join(MODELS)}")
    args.names = names
    args.out = os.path.abspath(args.out)  # CMake reads the paths from another folder
    return args


def main(argv: list[str] | None = None) -> None:
    import onnxruntime as ort
    args = _parse(argv)
    onnx_dir = os.path.join(args.out, "models")
    build = os.path.join(args.out, f"build-{args.blas}")
    os.makedirs(onnx_dir, exist_ok=True)
    for n in track(args.names, len(args.names), "export"):
        export(n, onnx_dir)
    mach = machine(os.path.join(args.out, "probes"))
    shutil.rmtree(build, ignore_errors=True)  # every model is generated and built anew, and timed
    configure(args.names, onnx_dir, build, args.blas)
    min_seconds, repetitions = (0.2, 1) if args.quick else (0.5, 3)
    identity = identity_model(onnx_dir)
    rows, threads = [], []
    for n in track(args.names, len(args.names), "generate, build and time"):
        gen_s, build_s = build_model(build, n)
        ours = run_model(build, n, repetitions)
        threads += run_threads(build, n, repetitions)
        path = os.path.join(onnx_dir, n + ".onnx")
        for b in MODELS[n][2]:
            x = np.random.default_rng(0).standard_normal((b, *MODELS[n][1])).astype(np.float32)
            # the floor right before the model: the load on a shared machine drifts over a run
            floor = ort_time(identity, np.zeros((1, 1), np.float32), min_seconds)
            theirs = ort_time(path, x, min_seconds)
            r = report.row(n, group_of(n), b, ours[b], theirs, floor, model_cost(path, {"x": x}), mach, gen_s, build_s,
                           check_output(build, n, b, path))
            rows.append(r)
            print(f"{n} batch {b}: sofie {r['sofie_us']:.1f} us, ORT {r['ort_us']:.1f} us (CPU time)", file=sys.stderr)
    results = {"blas": args.blas, "ort_version": ort.__version__,
               "ort_floor_us": float(np.median([r["ort_floor_us"] for r in rows])),
               "machine": {**mach.to_json(), "cpu": cpu_name(),
                           "cores": os.cpu_count(), "load_average": os.getloadavg()[0]},
               "rows": rows, "threads": threads}
    js, md = report.write(args.out, results)
    chart = plot_ratios(rows, os.path.splitext(js)[0] + ".svg", title=f"sofie ({args.blas}) / ONNX Runtime, one thread")
    print(report.markdown(results))
    print(f"wrote {md}, {js} and {chart}", file=sys.stderr)
    if args.readme:
        publish(results, chart)


def publish(results: dict, chart: str) -> None:
    """The run's table and chart into the README (the chart committed under docs/images)."""
    repo = os.path.dirname(HERE)
    shutil.copyfile(chart, os.path.join(repo, README_CHART))
    replace_section(os.path.join(repo, "README.md"), "bench", report.readme_table(results, README_CHART), "Benchmarks")
    print(f"rewrote the benchmark section of README.md and {README_CHART}", file=sys.stderr)


if __name__ == "__main__":
    main()
