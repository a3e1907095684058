"""The whole run: collect, import, build, run and compare; one Result per test."""

from __future__ import annotations

import multiprocessing
import os
import time
from dataclasses import dataclass, field

from sofie.conformance.building import Builder
from sofie.conformance.collect import NodeTest
from sofie.conformance.importing import OK, Imported, import_cached, short_reason
from sofie.conformance.report import BUILD_ERROR, REFUSED, Result
from sofie.conformance.running import check
from sofie.progress import track


@dataclass
class Run:
    results: list[Result]
    timings: dict[str, float] = field(default_factory=dict)   # phase -> seconds
    compiled_models: int = 0   # models compiled by g++ in this run (cache misses)
    compiles: int = 0          # g++ invocations


_WORK: tuple[list[NodeTest], str, str] | None = None  # what forked import workers inherit


def _import_one(i: int) -> Imported:
    tests, cache, source = _WORK
    return import_cached(tests[i], cache, source)


def import_all(tests: list[NodeTest], cache: str, source: str, jobs: int, progress: bool = False) -> list[Imported]:
    """import_cached for every test, in `jobs` forked processes (import is pure Python)."""
    global _WORK
    if jobs <= 1 or len(tests) < 16 or "fork" not in multiprocessing.get_all_start_methods():
        return list(track((import_cached(t, cache, source) for t in tests), len(tests), "import", quiet=not progress))
    _WORK = (tests, cache, source)
    try:
        with multiprocessing.get_context("fork").Pool(jobs) as pool:
            done = pool.imap(_import_one, range(len(tests)), chunksize=8)  # in order, as they finish
            return list(track(done, len(tests), "import", quiet=not progress))
    finally:
        _WORK = None


def cache_root() -> str:
    from sofie.jit import cache_dir
    return os.path.join(cache_dir(), "conformance")


def run_suite(tests: list[NodeTest], *, jobs: int = 1, batch_size: int = 60, cache: str | None = None,
              log=print, progress: bool = False) -> Run:
    """Imports, builds, runs and compares `tests` (from collect()); `progress` draws a bar per
    phase on stderr (the command line's choice; a library call stays quiet)."""
    from concurrent.futures import ThreadPoolExecutor

    from sofie.jit import source_hash
    cache = cache or cache_root()
    timings: dict[str, float] = {}
    start = time.perf_counter()
    imported = import_all(tests, cache, source_hash(), jobs, progress)
    timings["import"] = time.perf_counter() - start
    accepted = [m for m in imported if m.status == OK]
    log(f"imported {len(tests)} tests: {len(accepted)} accepted ({timings['import']:.1f} s)")

    builder = Builder(cache, batch_size=batch_size, jobs=jobs, progress=progress)
    built = builder.build(accepted)
    timings["C++ build"] = built.seconds
    log(f"built {built.compiled_models} model(s) in {built.compiles} g++ run(s), "
        f"{len(built.errors)} build error(s) ({built.seconds:.1f} s)")

    start = time.perf_counter()
    runnable = [(t, m) for t, m in zip(tests, imported) if m.status == OK and m.key in built.programs]
    with ThreadPoolExecutor(max(1, jobs)) as pool:
        checked = pool.map(lambda tm: check(tm[0], built.programs[tm[1].key], tm[1]), runnable)
        checked = list(track(checked, len(runnable), "run", quiet=not progress))  # whole: the bar ends
        outcomes = dict(zip((t.name for t, _ in runnable), checked))
    timings["run"] = time.perf_counter() - start

    results = []
    for t, m in zip(tests, imported):
        if m.status != OK:
            results.append(Result(t.name, t.op, m.status, short_reason(m.reason) if m.status == REFUSED else m.reason))
        elif m.key in built.errors:
            results.append(Result(t.name, t.op, BUILD_ERROR, built.errors[m.key]))
        else:
            status, reason = outcomes[t.name]
            results.append(Result(t.name, t.op, status, reason, bound=bool(m.bound)))
    return Run(results, timings, built.compiled_models, built.compiles)
