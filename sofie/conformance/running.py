"""Step 3: each test's stored inputs through its driver program (its own process), and the
outputs compared with the stored ones."""

from __future__ import annotations

import math
import os
import subprocess
import tempfile

import numpy as np

from sofie.conformance.binding import unbound
from sofie.conformance.building import Program
from sofie.conformance.collect import NodeTest
from sofie.conformance.compare import compare
from sofie.conformance.importing import Imported
from sofie.conformance.report import PASSED, RUN_ERROR, WRONG
from sofie.ir.run_time_dims import bound_sizes
from sofie.ir.types import dim_factors, numpy_dtype

TIMEOUT_SECONDS = 60


class RunError(Exception):
    """The model could not be run on the test's data (a crash, a timeout, wrong inputs)."""


def symbol_sizes(m: Imported, arrays: list[np.ndarray]) -> dict[str, int]:
    """The size of every dim symbol, read off the inputs (checked against the fixed dims)."""
    if len(arrays) != len(m.inputs):
        raise RunError(f"the model takes {len(m.inputs)} input(s), the test gives {len(arrays)}")
    sizes: dict[str, int] = {}
    for a, (name, dt, shape) in zip(arrays, m.inputs):
        if a.dtype != numpy_dtype(dt):
            raise RunError(f"input '{name}': sofie's model takes {numpy_dtype(dt)}, the test gives {a.dtype}")
        if a.ndim != len(shape):
            raise RunError(f"input '{name}': sofie's model takes rank {len(shape)}, "
                           f"the test gives shape {list(a.shape)}")
        for want, got in zip(shape, a.shape):
            if isinstance(want, str):
                if sizes.setdefault(want, got) != got:
                    raise RunError(f"input '{name}': dim {want} is {got} here, {sizes[want]} elsewhere")
            elif want != got:
                raise RunError(f"input '{name}': sofie's model takes shape {shape}, the test gives {list(a.shape)}")
    return sizes


def _shape(shape: list, sizes: dict[str, int]) -> tuple[int, ...]:
    out = []
    for d in shape:
        coef, syms = dim_factors(d)
        out.append(coef * math.prod(sizes[s] for s in syms))
    return tuple(out)


def run_model(program: Program, m: Imported, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """Runs the model on `inputs` in a process of its own; its outputs."""
    arrays = [np.asarray(a) for a in inputs]
    sizes = symbol_sizes(m, arrays)
    batch = sizes.get(m.batch, 1) if m.batch else 1
    bounds = {**sizes, **bound_sizes(m.run_time_dims, sizes)}
    shapes = [_shape(shape, bounds) for _, _, shape in m.outputs]
    with tempfile.TemporaryDirectory(prefix="sofie-conformance.") as tmp:
        args = [program.exe, str(program.index), os.path.join(m.folder, m.name + ".dat"), str(batch),
                str(len(m.dims)), *(str(sizes.get(d, 1)) for d in m.dims), str(len(arrays))]
        for i, a in enumerate(arrays):
            path = os.path.join(tmp, f"in{i}")
            np.ascontiguousarray(a).tofile(path)
            args += [path, str(a.size)]
        args.append(str(len(shapes)))
        for i, shape in enumerate(shapes):
            args += [os.path.join(tmp, f"out{i}"), str(math.prod(shape))]
        env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
        try:
            r = subprocess.run(args, capture_output=True, text=True, timeout=TIMEOUT_SECONDS, env=env)
        except subprocess.TimeoutExpired:
            raise RunError(f"timed out after {TIMEOUT_SECONDS} s") from None
        if r.returncode != 0:
            what = f"killed by signal {-r.returncode}" if r.returncode < 0 else f"exit code {r.returncode}"
            message = r.stderr.strip().splitlines()
            raise RunError(what + (f": {message[0]}" if message else ""))
        if m.run_time_dims:  # written packed at the dims of this run, which it printed
            values = next(line.split()[1:] for line in r.stdout.splitlines() if line.startswith("run_time_dims"))
            actual = {**sizes, **{d: int(v) for d, v in zip(m.run_time_dims, values)}}
            shapes = [_shape(shape, actual) for _, _, shape in m.outputs]
        return [np.fromfile(os.path.join(tmp, f"out{i}"), dtype=numpy_dtype(dt))[:math.prod(shape)].reshape(shape)
                for i, ((_, dt, _), shape) in enumerate(zip(m.outputs, shapes))]


def check(test: NodeTest, program: Program, m: Imported) -> tuple[str, str]:
    """(PASSED, ""), (WRONG, why) or (RUN_ERROR, why), over every data set of the test."""
    names = [o.name for o in test.model.graph.output]
    for k, (inputs, expected) in enumerate(test.data_sets):
        where = f"data set {k}: " if len(test.data_sets) > 1 else ""
        if not all(isinstance(a, np.ndarray) for a in list(inputs) + list(expected)):
            return RUN_ERROR, where + "the test's data are not all tensors (sequences, optionals)"
        try:
            got = run_model(program, m, unbound(inputs, m.bound))
        except RunError as e:
            return RUN_ERROR, where + str(e)
        except Exception as e:  # noqa: BLE001 - e.g. outputs not of the size sofie declared: keep the others' results
            return RUN_ERROR, where + f"{type(e).__name__}: {e}"
        if len(got) != len(expected):
            return WRONG, where + f"{len(got)} output(s), expected {len(expected)}"
        for name, g, w in zip(names, got, expected):
            why = compare(name, g, np.asarray(w))
            if why:
                return WRONG, where + why
    return PASSED, ""
