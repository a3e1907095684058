"""The Python API: `sofie.compile(model) -> CompiledModel`, and the build pipeline the CLIs share.

model -> graph dialect -> passes -> low dialect -> NAME.hxx + NAME.dat (+ pybind11 module).
Builds are cached by a content hash of the model, the options and sofie's own sources.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import sys
import sysconfig
import tempfile
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sofie.backend_cpp.binding import binding_source
from sofie.backend_cpp.emit import emit
from sofie.backend_cpp.header import default_max_batch
from sofie.backend_cpp.toolchain import DEFAULT_BLAS, blas_flags, run_compiler
from sofie.errors import SofieError
from sofie.frontends import load_model
from sofie.ir.core import Module
from sofie.ir.registry import CONSTANT_LIKE, VIEW
from sofie.ir.types import numpy_dtype
from sofie.lowering.lower import needed_ops
from sofie.passes.low.plan_memory import arena_bytes
from sofie.pipeline import DEFAULT_PIPELINE, LOW, LOWERING_PIPELINE, PassStat, get_pass, op_counts, run_pipeline
from sofie.version import __version__

_SOFIE_DIR = os.path.dirname(os.path.abspath(__file__))


@dataclass
class BuildResult:
    graph: Module
    low: Module
    header: str
    weights: str
    stats: dict[str, Any] = field(default_factory=dict)


def build(model: Any, out_dir: str, *, name: str | None = None, blas: str | None = None,
          passes: list[str] | None = None, example_inputs: Any = None) -> BuildResult:
    """Compiles a model into `out_dir` (NAME.hxx, NAME.dat, sofie_rt/)."""
    blas = blas or DEFAULT_BLAS
    blas_flags(blas)  # fail early on a BLAS that is not available
    graph = load_model(model, name=name, example_inputs=example_inputs)
    imported_bytes = intermediate_bytes(graph)
    pipeline = list(DEFAULT_PIPELINE if passes is None else passes)
    graph_passes = [p for p in pipeline if get_pass(p).level != LOW and p not in LOWERING_PIPELINE]
    low_passes = [p for p in pipeline if p not in graph_passes]
    graph, graph_stats = run_pipeline(graph, graph_passes)
    counts = op_counts(graph)
    intermediates = intermediate_bytes(graph)
    # the printer needs planned low IR whatever the pipeline asked for
    low_passes += [p for p in LOWERING_PIPELINE if p not in low_passes]
    low, low_stats = run_pipeline(graph, low_passes)
    out = emit(low, out_dir, blas=blas, source=_describe(model))
    stats = _stats(counts, intermediates, low, out.weights_bytes, graph_stats + low_stats)
    stats["intermediate_bytes_as_imported"] = imported_bytes
    return BuildResult(graph, low, out.header, out.weights, stats)


def _describe(model: Any) -> str:
    return os.path.basename(str(model)) if isinstance(model, str | os.PathLike) else type(model).__name__


def intermediate_bytes(graph: Module) -> int:
    """Bytes of every tensor computed at run time (batch 1), views excepted: what a plan
    without reuse would allocate."""
    return sum(r.type.static_size() * r.type.itemsize for op in needed_ops(graph.main)
               if not op.has_trait(CONSTANT_LIKE) and not op.has_trait(VIEW) for r in op.results)


def _stats(counts: dict[str, int], intermediates: int, low: Module, weights_bytes: int,
           pass_stats: list[PassStat]) -> dict[str, Any]:
    f = low.main
    return {
        "ops": dict(sorted(counts.items())),
        "arena_bytes": arena_bytes(f),
        "peak_live_bytes": f.attrs["peak_live_bytes"],
        "arena_terms": f.attrs["arena_terms"],
        "arena": f.attrs["arena"],
        "low_ops": dict(sorted(op_counts(low).items())),
        "intermediate_bytes": intermediates,
        "weights_bytes": weights_bytes,
        "passes": [{"name": s.name, "ops_before": s.ops_before, "ops_after": s.ops_after,
                    "seconds": round(s.seconds, 6)} for s in pass_stats],
    }


# ---- sofie.compile ---------------------------------------------------------------------------

def cache_dir() -> str:
    return os.environ.get("SOFIE_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "sofie")


def _source_hash() -> str:
    """Hash of sofie's own sources: a new compiler never reuses an old build."""
    h = hashlib.sha256(__version__.encode())
    for root, dirs, files in sorted(os.walk(_SOFIE_DIR)):
        dirs.sort()
        for f in sorted(files):
            if f.endswith((".py", ".hxx")):
                with open(os.path.join(root, f), "rb") as fh:
                    h.update(f.encode() + fh.read())
    return h.hexdigest()


def _cpu_id() -> str:
    """Extensions are built with -march=native: a cache shared between machines (NFS on a
    cluster) must not hand one CPU's build to another."""
    import platform
    flags = ""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith(("flags", "Features"))), "")
    except OSError:
        pass
    return platform.machine() + platform.processor() + flags


def _model_bytes(model: Any, example_inputs: Any) -> bytes:
    import onnx
    if isinstance(model, onnx.ModelProto):
        return model.SerializeToString()
    if isinstance(model, str | os.PathLike):
        path = str(model)
        if not os.path.isfile(path):
            raise SofieError(f"{path}: no such file")
        with open(path, "rb") as f:
            data = f.read()
        h = hashlib.sha256(data)
        for extra in _external_files(data, os.path.dirname(os.path.abspath(path))):
            st = os.stat(extra)  # external weights: their size and time stand for their bytes
            h.update(f"{extra}:{st.st_size}:{st.st_mtime_ns}".encode())
        return h.digest()
    try:  # a torch module: its weights and the traced inputs' shapes
        import torch
        if isinstance(model, torch.nn.Module):
            h = hashlib.sha256(repr(model).encode())
            for k, v in model.state_dict().items():
                h.update(k.encode() + v.detach().cpu().numpy().tobytes())
            for x in (example_inputs if isinstance(example_inputs, tuple | list) else [example_inputs]):
                h.update(str(getattr(x, "shape", x)).encode())
            return h.digest()
    except ImportError:
        pass
    raise SofieError(f"cannot compile a {type(model).__name__}: pass an ONNX path or ModelProto, "
                     f"or a torch.nn.Module with example_inputs=")


def _external_files(data: bytes, folder: str) -> list[str]:
    """The existing external-data files an ONNX file refers to (the frontend checks them)."""
    import onnx
    proto = onnx.ModelProto()
    try:
        proto.ParseFromString(data)
    except Exception:  # the frontend reports a damaged file with its own message
        return []
    locations = {e.value for t in proto.graph.initializer for e in t.external_data if e.key == "location"}
    paths = (os.path.join(folder, loc) for loc in sorted(locations))
    return [p for p in paths if os.path.isfile(p)]


_LOCK = threading.Lock()


def compile(model: Any, *, name: str | None = None, blas: str | None = None,
            passes: list[str] | None = None, example_inputs: Any = None,
            max_batch: int | None = None) -> CompiledModel:
    """Compiles `model` to C++, builds a Python extension around it (cached) and loads it.

    `max_batch`: events per run of the generated code (default: the model's, up to 64);
    larger batches run in chunks."""
    blas = blas or DEFAULT_BLAS
    key = hashlib.sha256(b"|".join([
        _model_bytes(model, example_inputs), repr((name, blas, passes)).encode(),
        _source_hash().encode(), sys.version.encode(), _cpu_id().encode()])).hexdigest()[:24]
    folder = os.path.join(cache_dir(), key)
    manifest = os.path.join(folder, "manifest.json")
    with _LOCK:
        if not os.path.isfile(manifest):
            _build_extension(model, folder, key, name=name, blas=blas, passes=passes,
                             example_inputs=example_inputs)
        with open(manifest) as f:
            info = json.load(f)
    return CompiledModel(folder, info, max_batch or info["max_batch"])


def _build_extension(model: Any, folder: str, key: str, **options: Any) -> None:
    os.makedirs(cache_dir(), exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f"{key}.", dir=cache_dir())
    r = build(model, tmp, name=options["name"], blas=options["blas"], passes=options["passes"],
              example_inputs=options["example_inputs"])
    module_name = f"_sofie_{key}"
    src = os.path.join(tmp, "binding.cpp")
    with open(src, "w") as f:
        f.write(binding_source(r.low, module_name))
    import pybind11
    so = os.path.join(tmp, module_name + sysconfig.get_config_var("EXT_SUFFIX"))
    run_compiler(["-std=c++17", "-O3", "-march=native", "-shared", "-fPIC", "-fvisibility=hidden",
                  f"-I{pybind11.get_include()}", f"-I{sysconfig.get_paths()['include']}", f"-I{tmp}",
                  src, "-o", so, *blas_flags(options["blas"])], f"the Python extension for {r.low.name}")
    f = r.low.main
    info = {
        "name": r.low.name, "module": module_name, "so": os.path.basename(so),
        "header": os.path.basename(r.header), "weights": os.path.basename(r.weights),
        "inputs": [[a.name, a.type.dtype, list(a.type.shape)] for a in f.args],
        "outputs": [[v.name, v.type.dtype, list(v.type.shape)] for v in f.outputs],
        "stats": r.stats,
        "max_batch": default_max_batch(f),
    }
    with open(os.path.join(tmp, "manifest.json"), "w") as fh:
        json.dump(info, fh, indent=1)
    try:
        os.rename(tmp, folder)  # atomic: a concurrent builder of the same key loses harmlessly
    except OSError:
        import shutil
        shutil.rmtree(tmp, ignore_errors=True)


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
