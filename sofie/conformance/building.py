"""Step 2: the imported models compiled into driver programs, many per g++ run.

A batch that fails to compile is split: the models its errors name are built alone, the rest
together again (halves when the errors name none), so one bad header costs its batch two or
three more compiles, never the others' results. Programs are cached under their models'
content keys: a model already in a built program is never compiled again; build errors are
remembered per model too."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from sofie.backend_cpp.toolchain import CXX, blas_flags, default_blas
from sofie.conformance.driver import driver_source
from sofie.conformance.importing import Imported
from sofie.progress import track

FLAGS = ["-std=c++17", "-O2", "-march=native", "-w"]
COMPILE_TIMEOUT_SECONDS = 1200


@dataclass
class Program:
    exe: str
    index: int   # the model's INDEX argument


@dataclass
class BuildOutcome:
    programs: dict[str, Program]      # model key -> where it runs
    errors: dict[str, str]            # model key -> first compiler error line
    seconds: float = 0.0              # wall time of the builds
    compiles: int = 0                 # g++ runs made (cache hits excluded)
    compiled_models: int = 0          # models in the programs built this run


class Builder:
    def __init__(self, cache: str, *, batch_size: int = 60, jobs: int = 1, blas: str | None = None,
                 progress: bool = False) -> None:
        blas = blas or default_blas()
        self.root = os.path.join(cache, "bin")
        self.batch_size = batch_size
        self.jobs = max(1, jobs)
        self.link = blas_flags(blas)
        self.flags = FLAGS + [f"-DSOFIE_BLAS_{blas.upper()}"]
        self.progress = progress  # a bar over the batches on stderr
        self._compiles = 0
        self._compiled_models = 0

    def build(self, models: list[Imported]) -> BuildOutcome:
        """Programs for `models` (built or cached); one builder at a time per cache, so that two
        runs at once (pytest workers) build each batch once."""
        os.makedirs(self.root, exist_ok=True)
        with open(os.path.join(self.root, ".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            return self._build(models)

    def _build(self, models: list[Imported]) -> BuildOutcome:
        start = time.perf_counter()
        programs, errors = self._cached()
        todo = {m.key: m for m in models if m.key not in programs and m.key not in errors}
        todo_list = sorted(todo.values(), key=lambda m: m.name)
        batches = [todo_list[i:i + self.batch_size] for i in range(0, len(todo_list), self.batch_size)]
        with ThreadPoolExecutor(self.jobs) as pool:
            done = pool.map(self._build_isolating, batches)
            for found, failed in track(done, len(batches), "build batches", quiet=not self.progress):
                programs.update(found)
                errors.update(failed)
        keys = {m.key for m in models}
        return BuildOutcome({k: p for k, p in programs.items() if k in keys},
                            {k: e for k, e in errors.items() if k in keys},
                            time.perf_counter() - start, self._compiles, self._compiled_models)

    # -- the cache ---------------------------------------------------------------------------
    def _cached(self) -> tuple[dict[str, Program], dict[str, str]]:
        programs: dict[str, Program] = {}
        errors: dict[str, str] = {}
        if not os.path.isdir(self.root):
            return programs, errors
        for entry in os.listdir(self.root):
            if entry.startswith(("tmp.", ".")):  # a build under way (or killed), the lock
                continue
            path = os.path.join(self.root, entry)
            try:
                with open(os.path.join(path, "models.json")) as f:
                    info = json.load(f)
            except (OSError, ValueError):
                continue
            if info.get("flags") != self._flag_key():
                continue
            if "error" in info:
                errors[info["keys"][0]] = info["error"]
            elif os.path.isfile(os.path.join(path, "driver")):
                for i, k in enumerate(info["keys"]):
                    programs.setdefault(k, Program(os.path.join(path, "driver"), i))
        return programs, errors

    def _flag_key(self) -> str:
        return " ".join([CXX] + self.flags + self.link)

    def _batch_dir(self, models: list[Imported]) -> str:
        h = hashlib.sha256((self._flag_key() + "|" + "|".join(m.key for m in models)).encode())
        return os.path.join(self.root, h.hexdigest()[:24])

    # -- building ----------------------------------------------------------------------------
    def _build_isolating(self, models: list[Imported]) -> tuple[dict[str, Program], dict[str, str]]:
        if not models:
            return {}, {}
        stderr = self._compile(models)
        if stderr is None:
            exe = os.path.join(self._batch_dir(models), "driver")
            return {m.key: Program(exe, i) for i, m in enumerate(models)}, {}
        if len(models) == 1:
            error = first_error(stderr)
            self._remember_error(models[0], error)
            return {}, {models[0].key: error}
        named = [m for m in models if os.path.join(m.folder, "") in stderr]
        if named and len(named) < len(models):
            parts = [[m] for m in named] + [[m for m in models if m not in named]]
        else:
            half = len(models) // 2
            parts = [models[:half], models[half:]]
        programs: dict[str, Program] = {}
        errors: dict[str, str] = {}
        for part in parts:
            found, failed = self._build_isolating(part)
            programs.update(found)
            errors.update(failed)
        return programs, errors

    def _compile(self, models: list[Imported]) -> str | None:
        """Builds one driver program into its batch folder; the compiler's stderr on failure."""
        folder = self._batch_dir(models)
        os.makedirs(self.root, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix="tmp.", dir=self.root)
        src = os.path.join(tmp, "driver.cpp")
        with open(src, "w") as f:
            f.write(driver_source(models, [os.path.join(m.folder, m.name + ".hxx") for m in models]))
        cmd = [CXX, *self.flags, src, "-o", os.path.join(tmp, "driver"), *self.link]
        self._compiles += 1
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=COMPILE_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            shutil.rmtree(tmp, ignore_errors=True)
            return f"{CXX} timed out after {COMPILE_TIMEOUT_SECONDS} s"
        if r.returncode != 0:
            shutil.rmtree(tmp, ignore_errors=True)
            return r.stderr or f"{CXX} exited with code {r.returncode}"
        self._compiled_models += len(models)
        with open(os.path.join(tmp, "models.json"), "w") as f:
            json.dump({"flags": self._flag_key(), "keys": [m.key for m in models],
                       "names": [m.name for m in models]}, f, indent=1)
        _publish(tmp, folder)
        return None

    def _remember_error(self, model: Imported, error: str) -> None:
        os.makedirs(self.root, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix="tmp.", dir=self.root)
        with open(os.path.join(tmp, "models.json"), "w") as f:
            json.dump({"flags": self._flag_key(), "keys": [model.key], "names": [model.name], "error": error}, f)
        _publish(tmp, self._batch_dir([model]))


def _publish(tmp: str, folder: str) -> None:
    try:
        os.rename(tmp, folder)  # atomic: a folder there is complete, and the same build
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)


_ERROR = re.compile(r"(?:^|/)([^/\s:]+:\d+:\d+: (?:fatal )?error: .*)$")


def first_error(stderr: str) -> str:
    """The compiler's first error line, its path cut to the file name."""
    for line in stderr.splitlines():
        m = _ERROR.search(line)
        if m:
            return m.group(1)
    lines = [line for line in stderr.splitlines() if line.strip()]
    return next((line for line in lines if "error" in line), lines[0] if lines else "unknown compiler failure")
