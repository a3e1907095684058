"""python -m sofie.tools.profile MODEL [--batch N] [--iters K]: where a model's time goes.

Compiles MODEL with --profile (run() times every op block), builds a small program that calls
Session::infer K times on deterministic inputs, and prints one row per op block (the ONNX
node's name, the low op's kind, the time per call and its share), slowest first, and how the
ops' sum compares with the timed calls.
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass

from sofie.backend_cpp.toolchain import BLAS_CHOICES, blas_flags, default_blas, run_compiler
from sofie.backend_cpp.types import cpp_type
from sofie.driver import build
from sofie.errors import SofieError
from sofie.ir.types import dim_factors
from sofie.tools.cli import run_cli


@dataclass
class OpTime:
    name: str       # the ONNX node (or the op's kind when it has none)
    kind: str       # the low op printed for it
    seconds: float  # per call


@dataclass
class Profile:
    model: str
    batch: int
    iters: int
    total: float        # seconds per infer call, timed around the calls
    ops: list[OpTime]   # in run() order

    def table(self) -> str:
        """The ops slowest first, with their share of the timed total."""
        ops_sum = sum(o.seconds for o in self.ops)
        width = max([len(o.name) for o in self.ops] + [2])
        kind_width = max([len(o.kind) for o in self.ops] + [4])
        lines = [f"{self.model}, batch {self.batch}, {self.iters} calls: {_ms(self.total)} per call; "
                 f"the {len(self.ops)} op blocks sum to {_ms(ops_sum)} ({100 * ops_sum / self.total:.1f}% of it)",
                 f"{'op':<{width}}  {'kind':<{kind_width}}  {'per call':>10}  {'%':>6}"]
        for o in sorted(self.ops, key=lambda o: -o.seconds):
            lines.append(f"{o.name:<{width}}  {o.kind:<{kind_width}}  {_ms(o.seconds):>10}  "
                         f"{100 * o.seconds / self.total:>6.2f}")
        return "\n".join(lines)


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.4f} ms"


def _driver(name: str, weights: str, batch: int, iters: int, low, dims: dict[str, int], batch_symbol) -> str:
    """The C++ program: infer `iters` times, then print the total and each op's seconds."""
    f = low.main
    sizes = dict(dims)
    if batch_symbol is not None:
        sizes[batch_symbol] = batch
    lines = [f'#include "{name}.hxx"', "#include <chrono>", "#include <cmath>", "#include <cstdio>",
             "#include <memory>", "", "int main() {", f"  using namespace TMVA_SOFIE_{name};",
             f'  Session s("{weights}", {batch});']
    args = []
    for k, v in enumerate([*f.args, *f.outputs]):
        n = math.prod(_size(d, sizes) for d in v.type.shape)
        t = cpp_type(v.type.dtype)
        lines.append(f"  std::unique_ptr<{t}[]> a{k}(new {t}[{max(n, 1)}]());")
        if k < len(f.args) and v.type.dtype in ("f32", "f64", "f16", "bf16"):
            lines.append(f"  for (long i = 0; i < {n}; ++i) a{k}[i] = {t}(std::sin(0.1 * double(i)));")
        args.append(f"a{k}.get()")
    call = ", ".join([str(batch), *(str(v) for v in dims.values()), *args])
    lines += [f"  s.infer({call});  // warm-up: caches, pages, lazy BLAS set-up",
              "  s.reset_profile();",
              "  const auto t0 = std::chrono::steady_clock::now();",
              f"  for (int i = 0; i < {iters}; ++i) s.infer({call});",
              "  const double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();",
              f'  std::printf("total\\t%.9g\\n", total / {iters});',
              "  for (std::size_t k = 0; k < Session::kProfileOps; ++k) {",
              f'    std::printf("%.9g\\t%s\\t%s\\n", s.profile_seconds()[k] / {iters}, Session::kProfileKinds[k], '
              "Session::kProfileNames[k]);",
              "  }", "}", ""]
    return "\n".join(lines)


def _size(d, sizes: dict[str, int]) -> int:
    coef, syms = dim_factors(d)
    return coef * math.prod(sizes[s] for s in syms)


def profile(model: str, batch: int = 1, iters: int = 100, blas: str | None = None, out_dir: str | None = None,
            name: str | None = None) -> Profile:
    """Builds `model` with per-op timers into `out_dir` (a temporary folder by default) and runs it."""
    if batch < 1 or iters < 1:
        raise SofieError(f"--batch and --iters must be at least 1 (got batch {batch}, iters {iters})")
    blas = blas or default_blas()
    with tempfile.TemporaryDirectory(prefix="sofie-profile-") as tmp:
        out = out_dir or tmp
        r = build(model, out, name=name, blas=blas, profile=True, source=os.path.basename(model))
        symbols = r.stats["symbols"]
        if r.low.main.attrs.get("run_time_dims"):
            raise SofieError(f"{model}: its shapes depend on input values (run-time dims), which the profile's "
                             f"generated inputs cannot supply; profile it from your own program "
                             f"(sofie-compile --profile, Session::profile_seconds())")
        if symbols["batch"] is None and batch != 1:
            raise SofieError(f"{model}: the model has a fixed batch (no batch dim), so --batch must be 1, not {batch}")
        name = r.low.name
        src, exe = os.path.join(out, "profile_main.cpp"), os.path.join(out, "profile_main")
        with open(src, "w") as fh:
            fh.write(_driver(name, os.path.abspath(r.weights), batch, iters, r.low, symbols["dims"], symbols["batch"]))
        run_compiler(["-std=c++17", "-O3", "-march=native", f"-I{out}", src, "-o", exe, *blas_flags(blas)],
                     f"the profile program of {name}")
        run = subprocess.run([exe], capture_output=True, text=True, env=dict(os.environ, OPENBLAS_NUM_THREADS="1"))
        if run.returncode:
            raise SofieError(f"the profile program of {name} failed: {run.stderr[-2000:]}")
    lines = run.stdout.splitlines()
    total = float(lines[0].split("\t")[1])
    ops = [OpTime(node, kind, float(sec)) for sec, kind, node in (ln.split("\t", 2) for ln in lines[1:])]
    return Profile(name, batch, iters, total, ops)


def _main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m sofie.tools.profile", description=__doc__.split("\n\n")[0])
    p.add_argument("model", help="model file (as sofie-compile takes it)")
    p.add_argument("--batch", type=int, default=1, help="events per call (default 1)")
    p.add_argument("--iters", type=int, default=100, help="calls to time (default 100)")
    p.add_argument("--blas", choices=BLAS_CHOICES, help="default: openblas when installed, else none")
    p.add_argument("--name", help="model name (default: the file stem)")
    p.add_argument("-o", "--output", help="keep the profiling build in this folder (default: a temporary one)")
    args = p.parse_args(argv)
    if not os.path.exists(args.model.split(":")[0]):
        raise SofieError(f"{args.model}: no such file")
    print(profile(args.model, args.batch, args.iters, args.blas, args.output, args.name).table())
    return 0


def main(argv: list[str] | None = None) -> int:
    sys.exit(run_cli("sofie-profile", _main, argv))


if __name__ == "__main__":
    main()
