"""`make demo`: compile examples/lenet.onnx to C++, build a program with it, run it, and print
its output beside onnxruntime's."""

import os
import subprocess
import sys
import time

import numpy as np
import onnxruntime as ort

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(os.path.dirname(HERE), "build", "demo")
BIN = os.path.dirname(sys.executable)


def run(cmd: list[str]) -> str:
    print("$", " ".join(cmd))
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


def main() -> None:
    model = os.path.join(HERE, "lenet.onnx")
    t0 = time.perf_counter()
    run([os.path.join(BIN, "sofie-compile"), model, "-o", OUT, "--name", "lenet", "--stats"])
    t1 = time.perf_counter()
    flags = run([os.path.join(BIN, "sofie-compile"), model, "--print-flags"]).split()
    exe = os.path.join(OUT, "demo")
    run(["g++", "-std=c++17", "-O2", "-I", OUT, os.path.join(HERE, "demo_main.cpp"), "-o", exe, *flags])
    t2 = time.perf_counter()
    x = np.random.default_rng(0).standard_normal((1, 1, 28, 28)).astype(np.float32)
    x.tofile(os.path.join(OUT, "x.bin"))
    ours = np.array(run([exe, os.path.join(OUT, "lenet.dat"), os.path.join(OUT, "x.bin")]).split(), np.float32)
    ref = ort.InferenceSession(model, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0][0]
    print(f"\ngenerated {OUT}/lenet.hxx + lenet.dat in {t1 - t0:.2f} s, built the program in {t2 - t1:.2f} s\n")
    print(f"{'class':>5} {'sofie (C++)':>12} {'onnxruntime':>12}")
    for i, (a, b) in enumerate(zip(ours, ref)):
        print(f"{i:>5} {a:12.6f} {b:12.6f}")
    diff = float(np.max(np.abs(ours - ref)))
    print(f"\nmax abs difference: {diff:.2e}")
    sys.exit(0 if diff < 1e-4 else 1)


if __name__ == "__main__":
    main()
