"""Benchmarks sofie's generated code (google-benchmark, through CMake) against ONNX Runtime,
both single-threaded, in the same run; prints per-model times and the ratio sofie / ORT.

usage: python bench/run.py [--models a,b] [--blas openblas|none|...] [--out DIR]
ORT is timed from Python; its per-call floor (an Identity model through the same path) is
subtracted, as in ../shared/ANCHORS.md. Writes DIR/results-BLAS.json and its chart
DIR/results-BLAS.svg (bench/plot.py; matplotlib from the `bench` extra).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from bench.models import MODELS, export  # noqa: E402
from bench.plot import plot_ratios  # noqa: E402
from sofie.progress import Progress, track  # noqa: E402


def event_size(shape: tuple[int, ...]) -> int:
    return math.prod(shape)


def build_and_run(names: list[str], onnx_dir: str, out: str, blas: str) -> dict[str, float]:
    import onnxruntime as ort
    specs = []
    for n in names:
        s = ort.InferenceSession(os.path.join(onnx_dir, n + ".onnx"), providers=["CPUExecutionProvider"])
        out_size = math.prod(d for d in s.get_outputs()[0].shape if isinstance(d, int))
        specs.append(f"{n}:{event_size(MODELS[n][1])}:{out_size}:{','.join(map(str, MODELS[n][2]))}")
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"],
               OPENBLAS_NUM_THREADS="1")
    build = os.path.join(out, f"build-{blas}")
    subprocess.run(["cmake", "-S", HERE, "-B", build, f"-DSOFIE_BENCH_MODELS={';'.join(specs)}",
                    f"-DSOFIE_BENCH_ONNX_DIR={onnx_dir}", f"-DSOFIE_BENCH_BLAS={blas}"],
                   check=True, env=env, capture_output=True)
    subprocess.run(["cmake", "--build", build, "-j2"], check=True, env=env, capture_output=True)
    r = subprocess.run([os.path.join(build, "bench_models"), "--benchmark_format=json"],
                       check=True, env=env, capture_output=True, text=True)
    return {b["name"].removeprefix("bench_").split("/")[0]: b["real_time"] for b in json.loads(r.stdout)["benchmarks"]}


def ort_time(path: str, x: np.ndarray, min_seconds: float = 0.5) -> float:
    """Median microseconds per call, single thread."""
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    feed = {s.get_inputs()[0].name: x}
    s.run(None, feed)
    times, start = [], time.perf_counter()
    while time.perf_counter() - start < min_seconds or len(times) < 5:
        t0 = time.perf_counter()
        s.run(None, feed)
        times.append(time.perf_counter() - t0)
    return float(np.median(times)) * 1e6


def identity_model(folder: str) -> str:
    import onnx
    from onnx import TensorProto, helper
    path = os.path.join(folder, "identity.onnx")
    g = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "id",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 1])])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--blas", default="openblas")
    p.add_argument("--out", default=os.path.join(os.path.dirname(HERE), "build", "bench"))
    args = p.parse_args()
    names = args.models.split(",")
    onnx_dir = os.path.join(args.out, "models")
    os.makedirs(onnx_dir, exist_ok=True)
    for n in track(names, len(names), "export"):
        export(n, onnx_dir)
    with Progress(1, "sofie: compile, build and run the benchmarks") as p:  # one CMake run
        ours = build_and_run(names, onnx_dir, args.out, args.blas)
        p.advance()
    floor = ort_time(identity_model(onnx_dir), np.zeros((1, 1), np.float32))
    rows = []
    cases = [(n, b) for n in names for b in MODELS[n][2]]
    for n, b in track(cases, len(cases), "ONNX Runtime"):
        x = np.random.default_rng(0).standard_normal((b, *MODELS[n][1])).astype(np.float32)
        theirs = max(ort_time(os.path.join(onnx_dir, n + ".onnx"), x) - floor, 1e-3)
        mine = ours[f"{n}_b{b}"]
        rows.append({"model": n, "batch": b, "sofie_us": mine, "ort_us": theirs, "ratio": mine / theirs})
    print(f"\nsofie ({args.blas}) vs ONNX Runtime, one thread; ORT floor {floor:.1f} us subtracted")
    print(f"{'model':<14}{'batch':>6}{'sofie us':>12}{'ORT us':>12}{'sofie/ORT':>11}")
    for r in rows:
        print(f"{r['model']:<14}{r['batch']:>6}{r['sofie_us']:>12.1f}{r['ort_us']:>12.1f}{r['ratio']:>11.2f}")
    table = os.path.join(args.out, f"results-{args.blas}.json")
    with open(table, "w") as f:
        json.dump({"ort_floor_us": floor, "rows": rows}, f, indent=1)
    chart = plot_ratios(rows, os.path.splitext(table)[0] + ".svg",
                        title=f"sofie ({args.blas}) / ONNX Runtime, one thread")
    print(f"wrote {table} and {chart}")


if __name__ == "__main__":
    main()
