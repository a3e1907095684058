"""`CompiledModel`: a model built by `sofie.compile`, callable on numpy arrays."""

from __future__ import annotations

import importlib.util
import os
import threading
from typing import Any

import numpy as np

from sofie.errors import SofieError
from sofie.ir.types import numpy_dtype


class CompiledModel:
    """A compiled model, callable on numpy arrays: `outputs = model(x)`."""

    def __init__(self, folder: str, info: dict[str, Any], max_batch: int) -> None:
        self.folder = folder
        self.info = info
        self.name = info["name"]
        self.header = os.path.join(folder, info["header"])
        self.weights = os.path.join(folder, info["weights"])
        self.stats = info["stats"]
        spec = importlib.util.spec_from_file_location(info["module"], os.path.join(folder, info["so"]))
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        try:
            self._session = mod.Session(self.weights, max_batch)
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
        batch = self._check(arrays)
        ins = [np.ascontiguousarray(a) for a in arrays]
        outs = [np.empty(self._shape(shape, batch), dtype=numpy_dtype(dt)) for _, dt, shape in self.outputs]
        try:
            self.session().run(batch, ins, outs)
        except ValueError as e:  # std::invalid_argument from the Session (batch limits)
            raise SofieError(f"{self.name}: {e}") from None
        return outs

    @staticmethod
    def _shape(shape: list, batch: int) -> tuple[int, ...]:
        return tuple(batch if isinstance(d, str) else d for d in shape)

    def _check(self, arrays: tuple[np.ndarray, ...]) -> int:
        if len(arrays) != len(self.inputs):
            raise SofieError(f"{self.name}: expected {len(self.inputs)} input(s) "
                             f"({', '.join(n for n, _, _ in self.inputs)}), got {len(arrays)}")
        batch = None
        for a, (name, dt, shape) in zip(arrays, self.inputs):
            a = np.asarray(a)
            if a.dtype != numpy_dtype(dt):
                raise SofieError(f"{self.name}: input '{name}' must be {numpy_dtype(dt)}, got {a.dtype}")
            if a.ndim != len(shape):
                raise SofieError(f"{self.name}: input '{name}' must have rank {len(shape)} "
                                 f"(shape {shape}), got shape {list(a.shape)}")
            for axis, (want, got) in enumerate(zip(shape, a.shape)):
                if isinstance(want, str):
                    if batch is not None and got != batch:
                        raise SofieError(f"{self.name}: input '{name}' has batch {got}, other inputs {batch}")
                    batch = got
                elif want != got:
                    raise SofieError(f"{self.name}: input '{name}' must have shape {shape}, "
                                     f"got {list(a.shape)} (axis {axis}: {got} != {want})")
        if batch == 0:
            raise SofieError(f"{self.name}: batch size 0")
        return 1 if batch is None else batch
