"""Elementwise activations over one [1, 96, 112, 112] float32 tensor, one thread, in one run:
a C++ loop with sofie::rt::vmath, the same loop with the std:: function, and ONNX Runtime.

usage: python bench/elementwise.py [--shape 1,96,112,112] [--seconds 1.0] [--out DIR]

Prints the median time per pass of each and the ratios vmath / ORT and std / ORT. The C++
loops are built with g++ -O3 -march=native (what sofie.compile uses) and timed in-process,
writing into a preallocated output; ORT runs with intra_op_num_threads = 1 and its input
and output bound once through IOBinding, so both sides time the same work. Absolute times
on a shared machine drift; compare the ratios.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
RUNTIME = os.path.join(os.path.dirname(HERE), "sofie", "runtime")

# name -> (vmath expression, std:: expression, ONNX graph builder key)
CASES = {
    "silu": ("v * vm::sigmoid(v)", "v * (1.0f / (1.0f + std::exp(-v)))", "silu"),
    "silu_fused": ("vm::silu(v)", "v / (1.0f + std::exp(-v))", "silu"),
    "gelu": ("vm::gelu(v)", "0.5f * v * (1.0f + std::erf(v * 0.70710678f))", "gelu"),
    "tanh": ("vm::tanh(v)", "std::tanh(v)", "tanh"),
}

CPP = r"""
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <vector>
#include "sofie_rt/vmath.hxx"
namespace vm = sofie::rt::vmath;

using Clock = std::chrono::steady_clock;
static std::vector<float> x, y;

@KERNELS@

template <class F>
static double median_us(F f, double seconds) {
    f();
    std::vector<double> t;
    const auto start = Clock::now();
    while (std::chrono::duration<double>(Clock::now() - start).count() < seconds || t.size() < 5) {
        const auto t0 = Clock::now();
        f();
        t.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
    }
    std::nth_element(t.begin(), t.begin() + t.size() / 2, t.end());
    return t[t.size() / 2];
}

int main(int argc, char** argv) {
    const std::size_t n = std::strtoull(argv[1], nullptr, 10);
    const double seconds = std::atof(argv[2]);
    x.resize(n);
    y.resize(n);
    FILE* fx = std::fopen(argv[3], "rb");
    if (!fx || std::fread(x.data(), sizeof(float), n, fx) != n) return 3;
    std::fclose(fx);
    std::printf("{");
@CALLS@
    std::printf("\"end\": 0}\n");
    return 0;
}
"""


def build(out: str) -> str:
    kernels, calls = [], []
    for name, (vexpr, sexpr, _) in CASES.items():
        for kind, expr in (("vmath", vexpr), ("std", sexpr)):
            kernels.append(
                f"__attribute__((noinline)) void {name}_{kind}() {{\n"
                f"    const float* xp = x.data(); float* yp = y.data();\n"
                f"    for (std::size_t i = 0, n = x.size(); i < n; ++i) {{ const float v = xp[i]; yp[i] = {expr}; }}\n"
                f"}}")
            calls.append(f'    std::printf("\\"{name}_{kind}\\": %.3f, ", median_us({name}_{kind}, seconds));')
    src = CPP.replace("@KERNELS@", "\n".join(kernels)).replace("@CALLS@", "\n".join(calls))
    cpp, exe = os.path.join(out, "elementwise.cpp"), os.path.join(out, "elementwise")
    with open(cpp, "w") as f:
        f.write(src)
    subprocess.run(["g++", "-std=c++17", "-O3", "-march=native", f"-I{RUNTIME}", cpp, "-o", exe], check=True)
    return exe


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


def ort_median_us(path: str, x: np.ndarray, seconds: float) -> float:
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    y = np.empty_like(x)
    io = s.io_binding()
    io.bind_cpu_input("x", x)
    io.bind_output("y", "cpu", 0, np.float32, list(y.shape), y.ctypes.data)
    s.run_with_iobinding(io)
    times, start = [], time.perf_counter()
    while time.perf_counter() - start < seconds or len(times) < 5:
        t0 = time.perf_counter()
        s.run_with_iobinding(io)
        times.append(time.perf_counter() - t0)
    return float(np.median(times)) * 1e6


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--shape", default="1,96,112,112")
    p.add_argument("--seconds", type=float, default=1.0)
    p.add_argument("--out", default=os.path.join(os.path.dirname(HERE), "build", "bench", "elementwise"))
    args = p.parse_args()
    shape = tuple(int(d) for d in args.shape.split(","))
    os.makedirs(args.out, exist_ok=True)
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32) * 3
    xbin = os.path.join(args.out, "x.bin")
    x.tofile(xbin)
    exe = build(args.out)
    r = subprocess.run([exe, str(math.prod(shape)), str(args.seconds), xbin], check=True, capture_output=True,
                       text=True, env=dict(os.environ, OMP_NUM_THREADS="1"))
    cpp = json.loads(r.stdout)
    ort_us = {kind: ort_median_us(onnx_model(kind, shape, os.path.join(args.out, f"{kind}.onnx")), x, args.seconds)
              for kind in {c[2] for c in CASES.values()}}
    print(f"\n{'x'.join(map(str, shape))} float32, one thread, median us per pass")
    print(f"{'op':<12}{'vmath':>10}{'std::':>10}{'ORT':>10}{'vmath/ORT':>11}{'std/ORT':>9}")
    rows = []
    for name, (_, _, kind) in CASES.items():
        v, s, o = cpp[f"{name}_vmath"], cpp[f"{name}_std"], ort_us[kind]
        rows.append({"op": name, "vmath_us": v, "std_us": s, "ort_us": o})
        print(f"{name:<12}{v:>10.1f}{s:>10.1f}{o:>10.1f}{v / o:>11.2f}{s / o:>9.2f}")
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump({"shape": shape, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
