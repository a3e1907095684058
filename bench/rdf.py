"""Events per second of the 5x[Linear(200)+ReLU] model (bench/models.py: mlp_5x200) scored by
sofie.rdf.define in an RDataFrame over a TTree of 200 Float_t columns, at 1 and 2 threads,
beside a plain C++ loop calling Session::infer on the same events (built with the same
compiler flags as the RDataFrame library). The goal: RDataFrame at most 1.3x the loop.

usage: python bench/rdf.py [--events 50000] [--out DIR]

The RDataFrame time is the event loop alone: the same graph with every event filtered out
(what the interpreter's just-in-time compilation costs) is subtracted.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from bench.models import export  # noqa: E402

LOOP = r'''
#include "mlp_5x200.hxx"
#include <chrono>
#include <cstdio>
#include <vector>
int main(int argc, char** argv) {
  const std::size_t n = std::stoul(argv[3]);
  std::vector<float> x(n * 200), y(200);
  std::FILE* f = std::fopen(argv[2], "rb");
  if (std::fread(x.data(), 4, x.size(), f) != x.size()) return 2;
  std::fclose(f);
  TMVA_SOFIE_mlp_5x200::Session s(argv[1]);
  double sum = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (std::size_t e = 0; e < n; ++e) {
    s.infer(1, x.data() + e * 200, y.data());
    sum += y[0];
  }
  const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("%.9f %g\n", dt, sum);
  return 0;
}
'''


def write_tree(path: str, x: np.ndarray) -> None:
    """TTree 't' with the inputs twice: Float_t branches x0..x199, and one array branch
    v[200]/F (clusters of 1000 events, for implicit MT)."""
    import ROOT
    f = ROOT.TFile(path, "RECREATE")
    t = ROOT.TTree("t", "mlp_5x200 inputs")
    t.SetAutoFlush(1000)
    buf = np.zeros(x.shape[1], np.float32)
    for i in range(x.shape[1]):
        t.Branch(f"x{i}", buf[i:], f"x{i}/F")  # a view: the branch reads buf[i]
    t.Branch("v", buf, f"v[{x.shape[1]}]/F")
    for row in x:
        buf[:] = row
        t.Fill()
    t.Write()
    f.Close()


def rdf_seconds(ROOT, path: str, model, threads: int, cols: list[str]) -> float:
    """Event-loop seconds of define + a sum over the first output element."""
    import sofie.rdf
    if threads > 1:
        ROOT.EnableImplicitMT(threads)
    else:
        ROOT.DisableImplicitMT()

    def run(keep: str) -> float:
        df = ROOT.RDataFrame("t", path).Filter(keep)
        s = sofie.rdf.define(df, "y", model, cols).Define("y0", "y[0]").Sum("y0")
        t0 = time.perf_counter()
        s.GetValue()
        return time.perf_counter() - t0

    run("true")  # the bridge library, its header and the weights cache warm
    return run("true") - run("false")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=50000)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    out = args.out or tempfile.mkdtemp(prefix="sofie-rdf-bench-")
    os.makedirs(out, exist_ok=True)
    import ROOT

    import sofie
    from sofie.backend_cpp.toolchain import blas_flags, run_compiler
    model = sofie.compile(export("mlp_5x200", out))
    n = args.events
    x = np.random.default_rng(0).standard_normal((n, 200)).astype(np.float32)
    x.tofile(os.path.join(out, "x.bin"))
    tree = os.path.join(out, "events.root")
    write_tree(tree, x)

    src = os.path.join(out, "loop.cpp")
    with open(src, "w") as f:
        f.write(LOOP)
    exe = os.path.join(out, "loop")
    run_compiler(["-std=c++17", "-O3", "-march=native", f"-I{model.folder}", src, "-o", exe,
                  *blas_flags("openblas")], "the plain C++ loop")
    runs = [subprocess.run([exe, model.weights, os.path.join(out, "x.bin"), str(n)], capture_output=True,
                           text=True, check=True) for _ in range(3)]
    loop = min(float(r.stdout.split()[0]) for r in runs)
    print(f"plain C++ loop calling infer: {n / loop:10.0f} events/s")
    layouts = {"one array branch v[200]": ["v"], "200 scalar branches": [f"x{i}" for i in range(200)]}
    for layout, cols in layouts.items():
        for threads in (1, 2):
            t = min(rdf_seconds(ROOT, tree, model, threads, cols) for _ in range(2))
            print(f"RDataFrame, {layout}, {threads} thread(s): {n / t:10.0f} events/s  "
                  f"({t / loop:.2f}x the loop's time" + (f"; per core {threads * t / loop:.2f}x" if threads > 1 else "")
                  + ")")


if __name__ == "__main__":
    main()
