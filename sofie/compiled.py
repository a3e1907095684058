"""`CompiledModel`: a model built by `sofie.compile`, callable on numpy arrays."""

from __future__ import annotations

import importlib.util
import math
import os
import threading
from typing import Any

import numpy as np

from sofie.errors import SofieError
from sofie.ir.run_time_dims import bound_sizes
from sofie.ir.types import NARROW_INTS, STORAGE_FLOATS, dim_factors, numpy_dtype


def _dtype_spelling(dt: str) -> str:
    """The Python spelling of an element type's numpy dtype: np.float32, ml_dtypes.bfloat16."""
    if (dt in STORAGE_FLOATS and dt != "f16") or dt in NARROW_INTS:  # f16 is numpy's own
        return f"ml_dtypes.{numpy_dtype(dt).name}"
    return "np.bool_" if numpy_dtype(dt) == np.bool_ else f"np.{numpy_dtype(dt).name}"


class CompiledModel:
    """A compiled model, callable on numpy arrays: `outputs = model(x)`."""

    def __init__(self, folder: str, info: dict[str, Any], max_batch: int, intra_op_threads: int = 1) -> None:
        self.folder = folder
        self.info = info
        self.name = info["name"]
        self.header = os.path.join(folder, info["header"])
        self.weights = os.path.join(folder, info["weights"])
        self.stats = info["stats"]
        spec = importlib.util.spec_from_file_location(info["module"], os.path.join(folder, info["so"]))
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        self._batch = info.get("batch_symbol")
        self._dims = dict(info.get("dims", {}))  # symbol -> maximum, in the Session's order
        # dims computed in infer from the data -> their bounds (dims of the interface)
        self._run_time = dict(info.get("run_time_dims", {}))
        try:
            self._session = mod.Session(self.weights, max_batch, list(self._dims.values()), intra_op_threads)
        except Exception as e:  # a std::runtime_error from the weights check
            raise SofieError(f"{self.weights}: {e}") from None
        self._local = threading.local()
        self._module = mod
        self._max_batch = max_batch

    @property
    def inputs(self) -> list[tuple[str, str, list]]:
        return [tuple(i) for i in self.info["inputs"]]

    @property
    def outputs(self) -> list[tuple[str, str, list]]:
        return [tuple(o) for o in self.info["outputs"]]

    def session(self):
        """A Session for the calling thread: Sessions are single-threaded, weights are shared."""
        if threading.current_thread() is threading.main_thread():
            return self._session
        if not hasattr(self._local, "session"):
            self._local.session = self._session.sharing(self._max_batch)
        return self._local.session

    def __call__(self, *arrays: np.ndarray) -> list[np.ndarray]:
        sizes = self._check(arrays)
        batch = sizes.get(self._batch, 1) if self._batch else 1
        ins = [np.ascontiguousarray(a) for a in arrays]
        bounds = {**sizes, **bound_sizes(self._run_time, sizes)}
        outs = [np.empty(self._shape(shape, bounds), dtype=numpy_dtype(dt)) for _, dt, shape in self.outputs]
        try:
            run_time = self.session().run(batch, [sizes[s] for s in self._dims], ins, outs)
        except ValueError as e:  # std::invalid_argument from the Session (batch and dim limits)
            raise SofieError(f"{self.name}: {e}") from None
        except RuntimeError as e:  # std::runtime_error: data a run-time dim is computed from is invalid
            raise SofieError(f"{self.name}: {e}") from None
        if not self._run_time:
            return outs
        # allocated at the bounds, written packed at the dims of this call
        actual = {**sizes, **dict(zip(self._run_time, run_time))}
        shapes = [self._shape(shape, actual) for _, _, shape in self.outputs]
        return [o.reshape(-1)[:math.prod(s)].reshape(s) for o, s in zip(outs, shapes)]

    @staticmethod
    def _shape(shape: list, sizes: dict[str, int]) -> tuple[int, ...]:
        out = []
        for d in shape:
            coef, syms = dim_factors(d)
            out.append(coef * math.prod(sizes[s] for s in syms))
        return tuple(out)

    def _check(self, arrays: tuple[np.ndarray, ...]) -> dict[str, int]:
        """The size of every dim symbol, read off the inputs (which must agree)."""
        if len(arrays) != len(self.inputs):
            raise SofieError(f"{self.name}: expected {len(self.inputs)} input(s) "
                             f"({', '.join(n for n, _, _ in self.inputs)}), got {len(arrays)}")
        sizes: dict[str, int] = {}
        for a, (name, dt, shape) in zip(arrays, self.inputs):
            a = np.asarray(a)
            if a.dtype != numpy_dtype(dt):
                # numpy arrays default to float64/int64: the fix is almost always one cast
                raise SofieError(f"{self.name}: input '{name}' must be {numpy_dtype(dt)}, got {a.dtype}; "
                                 f"cast with x.astype({_dtype_spelling(dt)})")
            if a.ndim != len(shape):
                raise SofieError(f"{self.name}: input '{name}' must have rank {len(shape)} "
                                 f"(shape {shape}), got shape {list(a.shape)}")
            for axis, (want, got) in enumerate(zip(shape, a.shape)):
                if isinstance(want, str):
                    what = "batch" if want == self._batch else f"dim {want}"
                    if want in sizes and got != sizes[want]:
                        raise SofieError(f"{self.name}: input '{name}' has {what} {got}, other inputs {sizes[want]}")
                    if got == 0:
                        raise SofieError(f"{self.name}: input '{name}' has {what} 0"
                                         + (" (batch size 0)" if want == self._batch else ""))
                    sizes[want] = got
                elif want != got:
                    raise SofieError(f"{self.name}: input '{name}' must have shape {shape}, "
                                     f"got {list(a.shape)} (axis {axis}: {got} != {want})")
        return sizes
