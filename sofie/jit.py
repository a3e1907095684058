"""`sofie.compile(model) -> CompiledModel`: the generated code built as a Python extension.

Builds are cached by a content hash of the model, the options, sofie's own sources and the
CPU; a cache folder holds NAME.hxx, NAME.dat, the extension and a manifest.json.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import sysconfig
import tempfile
import threading
from typing import Any

from sofie.backend_cpp.binding import binding_source
from sofie.backend_cpp.toolchain import blas_flags, default_blas, run_compiler
from sofie.compiled import CompiledModel
from sofie.custom_ops import custom_ops_fingerprint
from sofie.driver import build
from sofie.errors import SofieError
from sofie.frontends import split_address
from sofie.frontends.files import check_model_file
from sofie.frontends.torch import is_exported_program, is_torch_module
from sofie.ir.run_time_dims import table
from sofie.version import __version__

_SOFIE_DIR = os.path.dirname(os.path.abspath(__file__))


def cache_dir() -> str:
    return os.environ.get("SOFIE_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "sofie")


def source_hash() -> str:
    """Hash of sofie's own sources: a new compiler never reuses an old build."""
    h = hashlib.sha256(__version__.encode())
    for root, dirs, files in sorted(os.walk(_SOFIE_DIR)):
        dirs.sort()
        for f in sorted(files):
            if f.endswith((".py", ".hxx")):
                with open(os.path.join(root, f), "rb") as fh:
                    h.update(f.encode() + fh.read())
    return h.hexdigest()


def cpu_id() -> str:
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


def _model_bytes(model: Any, example_inputs: Any, dynamic_shapes: Any = None) -> bytes:
    import onnx
    if isinstance(model, onnx.ModelProto):
        return model.SerializeToString()
    if isinstance(model, str | os.PathLike):
        path, member = split_address(str(model))
        check_model_file(path)
        with open(path, "rb") as f:
            data = f.read()
        h = hashlib.sha256(data + f"|{member}".encode())
        for extra in _external_files(data, os.path.dirname(os.path.abspath(path))):
            st = os.stat(extra)  # external weights: their size and time stand for their bytes
            h.update(f"{extra}:{st.st_size}:{st.st_mtime_ns}".encode())
        return h.digest()
    if is_torch_module(model) or is_exported_program(model):
        return _torch_bytes(model, example_inputs, dynamic_shapes)
    raise SofieError(f"cannot compile a {type(model).__name__}: pass a model file, an onnx.ModelProto, "
                     f"a torch.nn.Module with example_inputs= or a torch.export.ExportedProgram")


def _forward_code(module: Any) -> bytes:
    """The bytecode and constants of forward() of a module and of each submodule's class."""
    code = b""
    for m in {type(sub): sub for sub in module.modules()}.values():
        fn = getattr(type(m).forward, "__code__", None)
        if fn is not None:
            code += fn.co_code + repr(fn.co_consts).encode() + repr(fn.co_names).encode()
    return code


def _torch_bytes(model: Any, example_inputs: Any, dynamic_shapes: Any) -> bytes:
    """A torch module's or program's code and weights, and the traced inputs' shapes."""
    program = is_exported_program(model)
    h = hashlib.sha256(repr(model.graph if program else model).encode())
    if not program:  # two modules with the same layers may differ in their forward code
        h.update(_forward_code(model))
    tensors = {**model.state_dict, **model.constants} if program else model.state_dict()
    for k, v in tensors.items():
        if hasattr(v, "detach"):  # a program's constants may hold script objects too
            h.update(k.encode() + v.detach().cpu().numpy().tobytes())
    for x in (example_inputs if isinstance(example_inputs, tuple | list) else [example_inputs]):
        h.update(str(getattr(x, "shape", x)).encode())
    h.update(repr(dynamic_shapes).encode())
    return h.digest()


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
            passes: list[str] | None = None, example_inputs: Any = None, dynamic_shapes: Any = None,
            max_batch: int | None = None, dims: dict[str, int] | None = None,
            intra_op_threads: int = 1) -> CompiledModel:
    """Compiles `model` to C++, builds a Python extension around it (cached) and loads it.

    `max_batch`: events per run of the generated code (default: the model's, up to 64);
    larger batches run in chunks. `dims`: maxima of the other dim symbols ({"P": 128}, default
    64 each); larger values are refused. `intra_op_threads` > 1: each Session of the result (one
    per calling thread) owns a pool of that many threads its large GEMMs and convs split over,
    with the results of one thread (a run-time option: the cached build is the same). A
    torch.nn.Module is exported with `example_inputs` and a dynamic batch, or the
    `dynamic_shapes` given (as `torch.export.export` takes them)."""
    if isinstance(intra_op_threads, bool) or not isinstance(intra_op_threads, int) or intra_op_threads < 1:
        raise SofieError(f"sofie.compile: intra_op_threads must be an int >= 1, got {intra_op_threads!r}")
    blas = blas or default_blas()
    key = hashlib.sha256(b"|".join([
        _model_bytes(model, example_inputs, dynamic_shapes),
        repr((name, blas, passes, sorted((dims or {}).items()))).encode(),
        source_hash().encode(), custom_ops_fingerprint().encode(), sys.version.encode(),
        cpu_id().encode()])).hexdigest()[:24]
    folder = os.path.join(cache_dir(), key)
    manifest = os.path.join(folder, "manifest.json")
    with _LOCK:
        if not os.path.isfile(manifest):
            _build_extension(model, folder, key, name=name, blas=blas, passes=passes,
                             example_inputs=example_inputs, dynamic_shapes=dynamic_shapes, dims=dims)
        with open(manifest) as f:
            info = json.load(f)
    return CompiledModel(folder, info, max_batch or info["max_batch"], intra_op_threads)


def _build_extension(model: Any, folder: str, key: str, **options: Any) -> None:
    os.makedirs(cache_dir(), exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f"{key}.", dir=cache_dir())
    r = build(model, tmp, name=options["name"], blas=options["blas"], passes=options["passes"],
              example_inputs=options["example_inputs"], dynamic_shapes=options["dynamic_shapes"],
              dims=options["dims"])
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
        "max_batch": r.stats["symbols"]["max_batch"],
        "batch_symbol": r.stats["symbols"]["batch"],
        "dims": r.stats["symbols"]["dims"],
        "run_time_dims": table(f),  # name -> bound, in the order Session.run reports them
    }
    with open(os.path.join(tmp, "manifest.json"), "w") as fh:
        json.dump(info, fh, indent=1)
    try:
        os.rename(tmp, folder)  # atomic: a concurrent builder of the same key loses harmlessly
    except OSError:
        import shutil
        shutil.rmtree(tmp, ignore_errors=True)
