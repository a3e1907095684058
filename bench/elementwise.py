"""Elementwise activations over one [1, 96, 112, 112] float32 tensor, one thread, in one run:
a C++ loop with sofie::rt::vmath, the same loop with the std:: function, and ONNX Runtime.

usage: python bench/elementwise.py [--ops silu,gelu,...] [--shape 1,96,112,112] [--seconds 3] [--wall]

The C++ loops are built with g++ -O3 -march=native (what sofie.compile uses) into a shared
library called through ctypes, writing into a preallocated output. ORT runs the ONNX model
(SiLU as Mul(x, Sigmoid(x)), which ORT fuses into QuickGelu; Gelu with approximate="none",
the erf form; Tanh) with intra_op_num_threads = 1 and input and output bound once through
IOBinding. The three run on this thread, timed in turn, pass after pass, by this thread's
CPU time (--wall for wall-clock time), so that load from other processes on a shared machine
hits them alike; the table gives the median and the best pass of each and their ratios.
Compare ratios: absolute times drift.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import subprocess
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
RUNTIME = os.path.join(os.path.dirname(HERE), "sofie", "runtime")

# name -> (vmath expression, std:: expression, ONNX model) of v = x[i]
CASES = {
    "silu": ("v * vm::sigmoid(v)", "v * (1.0f / (1.0f + std::exp(-v)))", "silu"),
    "silu_fused": ("vm::silu(v)", "v / (1.0f + std::exp(-v))", "silu"),
    "gelu": ("vm::gelu(v)", "0.5f * v * (1.0f + std::erf(v * 0.70710678f))", "gelu"),
    "tanh": ("vm::tanh(v)", "std::tanh(v)", "tanh"),
}


def build(out: str) -> ctypes.CDLL:
    src = ["#include <cmath>", "#include <cstddef>", '#include "sofie_rt/vmath.hxx"',
           "namespace vm = sofie::rt::vmath;"]
    for name, (vexpr, sexpr, _) in CASES.items():
        for kind, expr in (("vmath", vexpr), ("std", sexpr)):
            src.append(f'extern "C" void {name}_{kind}(const float* x, float* y, std::size_t n) {{\n'
                       f"    for (std::size_t i = 0; i < n; ++i) {{ const float v = x[i]; y[i] = {expr}; }}\n}}")
    cpp, lib = os.path.join(out, "elementwise.cpp"), os.path.join(out, "libelementwise.so")
    with open(cpp, "w") as f:
        f.write("\n".join(src) + "\n")
    subprocess.run(["g++", "-std=c++17", "-O3", "-march=native", "-shared", "-fPIC", f"-I{RUNTIME}", cpp,
                    "-o", lib], check=True)
    dll = ctypes.CDLL(lib)
    for name in CASES:
        for kind in ("vmath", "std"):
            getattr(dll, f"{name}_{kind}").argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t]
    return dll


def onnx_model(kind: str, shape: tuple[int, ...], path: str) -> str:
    import onnx
    from onnx import TensorProto, helper
    if kind == "silu":
        nodes = [helper.make_node("Sigmoid", ["x"], ["s"]), helper.make_node("Mul", ["x", "s"], ["y"])]
    elif kind == "gelu":
        nodes = [helper.make_node("Gelu", ["x"], ["y"])]  # approximate="none": the erf form
    else:
        nodes = [helper.make_node("Tanh", ["x"], ["y"])]
    g = helper.make_graph(nodes, kind, [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 20)]), path)
    return path


def ort_runner(path: str, x: np.ndarray):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    y = np.empty_like(x)
    io = s.io_binding()
    io.bind_cpu_input("x", x)
    io.bind_output("y", "cpu", 0, np.float32, list(y.shape), y.ctypes.data)

    def run(y=y):  # y stays alive as long as the runner: ORT writes into it
        s.run_with_iobinding(io)
    return run


def interleaved(fns: dict, seconds: float, clock) -> dict[str, list[float]]:
    """Microseconds per call of each function, called in turn until `seconds` have passed."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    for f in fns.values():
        f()
    start = time.perf_counter()
    while time.perf_counter() - start < seconds or min(len(t) for t in times.values()) < 5:
        for k, f in fns.items():
            t0 = clock()
            f()
            times[k].append((clock() - t0) / 1e3)
    return times


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--shape", default="1,96,112,112")
    p.add_argument("--ops", default=",".join(CASES), help="a subset of " + ",".join(CASES))
    p.add_argument("--seconds", type=float, default=3.0, help="per operation")
    p.add_argument("--wall", action="store_true",
                   help="time wall clock instead of this thread's CPU time (which leaves out the time "
                        "the thread waits for a core on a busy machine; both run on this thread)")
    p.add_argument("--out", default=os.path.join(os.path.dirname(HERE), "build", "bench", "elementwise"))
    args = p.parse_args()
    clock = time.perf_counter_ns if args.wall else time.thread_time_ns
    shape = tuple(int(d) for d in args.shape.split(","))
    os.makedirs(args.out, exist_ok=True)
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32) * 3
    y = np.empty_like(x)
    dll = build(args.out)
    xp, yp, n = x.ctypes.data, y.ctypes.data, x.size

    def cpp(fn):
        return lambda: fn(xp, yp, n)

    rows = []
    for name in args.ops.split(","):
        model = CASES[name][2]
        ort_run = ort_runner(onnx_model(model, shape, os.path.join(args.out, f"{model}.onnx")), x)
        t = interleaved({"vmath": cpp(getattr(dll, f"{name}_vmath")), "std": cpp(getattr(dll, f"{name}_std")),
                         "ort": ort_run}, args.seconds, clock)
        med = {k: float(np.median(v)) for k, v in t.items()}
        best = {k: float(np.min(v)) for k, v in t.items()}
        rows.append({"op": name, "passes": len(t["ort"]), "median_us": med, "best_us": best})
    what = "wall" if args.wall else "thread CPU"
    print(f"\n{'x'.join(map(str, shape))} float32, one thread; {what} us per pass, median (best);"
          " ratios of the medians (of the best)")
    print(f"{'op':<12}{'vmath':>16}{'std::':>18}{'ORT':>16}{'vmath/ORT':>16}{'std/ORT':>16}")
    for r in rows:
        m, b = r["median_us"], r["best_us"]
        print(f"{r['op']:<12}" + "".join(f"{m[k]:>9.0f} ({b[k]:>5.0f})" for k in ("vmath", "std", "ort"))
              + "".join(f"{m[k] / m['ort']:>9.2f} ({b[k] / b['ort']:.2f})" for k in ("vmath", "std")))
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump({"shape": shape, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
