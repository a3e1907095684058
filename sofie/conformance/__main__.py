"""python -m sofie.conformance [--ops Conv,Gemm] [--tests NAME,...] [--jobs N] [--readme]"""

from __future__ import annotations

import argparse
import os
import sys
import time

from sofie.conformance.report import readme_section, summary_line, update_readme, write_reports
from sofie.conformance.suite import cache_root, run_suite

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m sofie.conformance",
                                description="Runs the ONNX node tests through sofie and reports by op.")
    p.add_argument("--ops", help="only tests with a node of these op types (comma-separated, ONNX spelling)")
    p.add_argument("--tests", help="only these tests (comma-separated names)")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="parallel g++ builds and test runs")
    p.add_argument("--batch", type=int, default=60, help="models per g++ build (default 60)")
    p.add_argument("--out", default=os.path.join("build", "conformance"), help="report folder")
    p.add_argument("--readme", action="store_true",
                   help="run the whole suite and rewrite the conformance section of README.md")
    p.add_argument("--pick-subset", metavar="PATH",
                   help="run the whole suite and write the CI subset (a few passing tests per op) to PATH")
    a = p.parse_args(argv)
    if (a.readme or a.pick_subset) and (a.ops or a.tests):
        p.error("--readme and --pick-subset run the whole suite: drop --ops and --tests")
    from sofie.conformance.collect import collect
    ops = set(a.ops.split(",")) if a.ops else None
    names = set(a.tests.split(",")) if a.tests else None
    start = time.perf_counter()
    tests = collect(ops, names, cache=cache_root())
    collected = time.perf_counter() - start
    if names:
        unknown = sorted(names - {t.name for t in tests})
        if unknown:
            p.error(f"no such node test(s): {', '.join(unknown)}")
    if not tests:
        p.error(f"no node test has op(s) {a.ops}")
    run = run_suite(tests, jobs=a.jobs, batch_size=a.batch, progress=True)
    run.timings = {"collect": collected, **run.timings}
    md, js = write_reports(run.results, run.timings, a.out)
    print(summary_line(run.results))
    phase, seconds = max(run.timings.items(), key=lambda kv: kv[1])
    print("phases: " + ", ".join(f"{k} {v:.1f} s" for k, v in run.timings.items())
          + f"; slowest: {phase} ({seconds:.1f} s)")
    if run.compiled_models:
        per = run.timings["C++ build"] / run.compiled_models
        print(f"C++ build: {per:.2f} s per compiled model ({run.compiled_models} compiled, --jobs {a.jobs}); "
              f"were all {len(tests)} tests to compile: about {per * len(tests) / 60:.0f} min of builds")
    print(f"reports: {md}, {js}")
    if a.readme:
        readme = os.path.join(_REPO, "README.md")
        update_readme(readme, readme_section(run.results, len(run.results)))
        print(f"rewrote the conformance section of {readme}")
    if a.pick_subset:
        from sofie.conformance.subset import pick_subset
        from sofie.ir.registry import onnx_op_types
        with open(a.pick_subset, "w") as f:
            f.write(pick_subset(run.results, onnx_op_types()))
        print(f"wrote {a.pick_subset}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
