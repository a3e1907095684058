"""Step 1: each node test through sofie's Python pipeline, up to NAME.hxx + NAME.dat.

A SofieError is a refusal (its first line is the reason); any other exception is a crash, a
sofie bug. Results are cached by the model's bytes and sofie's sources, so a rerun after an
unrelated change imports nothing again; emitted folders are keyed by their own content, so a
rebuild follows only a changed header, weights file or runtime."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass, field
from typing import Any

from sofie.conformance.binding import RUN_TIME_SHAPE, bind, shape_inputs
from sofie.conformance.collect import NodeTest
from sofie.conformance.report import CRASH, REFUSED

OK = "ok"  # imported; CRASH and REFUSED are the report's categories


@dataclass
class Imported:
    name: str
    status: str                 # OK, REFUSED or CRASH
    reason: str = ""
    key: str = ""               # content hash of the emitted folder (header, weights, runtime)
    folder: str = ""            # holds NAME.hxx, NAME.dat, sofie_rt/
    inputs: list[list[Any]] = field(default_factory=list)   # [name, dtype, shape]
    outputs: list[list[Any]] = field(default_factory=list)
    batch: str | None = None    # the batch symbol, if any
    dims: list[str] = field(default_factory=list)  # other dim symbols, in the Session's order
    # dims computed in infer from the data -> their bounds, in the order the Session reports them
    run_time_dims: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    bound: list[int] = field(default_factory=list)  # graph inputs bound as constants (binding.py)


def one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


def short_reason(reason: str) -> str:
    """A refusal without the model's name in front and the list of supported ops behind (which
    grows with every op added)."""
    reason = re.sub(r"^(<ModelProto>|\S+\.onnx): ", "", reason)
    return reason.split(". Supported ops:", 1)[0]


def content_key(folder: str) -> str:
    h = hashlib.sha256()
    for root, dirs, files in sorted(os.walk(folder)):
        dirs.sort()
        for f in sorted(files):
            with open(os.path.join(root, f), "rb") as fh:
                h.update(os.path.relpath(os.path.join(root, f), folder).encode() + b"\0" + fh.read())
    return h.hexdigest()[:24]


def _sofie_path(filename: str) -> str:
    """sofie/lowering/x.py for a file of sofie's, the file name for others."""
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if os.path.abspath(filename).startswith(package + os.sep):
        return os.path.relpath(filename, os.path.dirname(package))
    return os.path.basename(filename)


def import_test(test: NodeTest, models_dir: str) -> Imported:
    """Imports, lowers and emits one test's model into models_dir/<content hash>/; refused for
    a shape operand given at run time, again with those inputs bound (see binding.py)."""
    result = _import_model(test.model, test.name, models_dir)
    if result.status != REFUSED or RUN_TIME_SHAPE not in result.reason:
        return result
    positions = shape_inputs(test.model)
    model = bind(test.model, test.data_sets, positions) if positions else None
    if model is None:
        return result
    again = _import_model(model, test.name, models_dir)
    again.bound = positions
    if again.status == REFUSED:
        again.reason = f"{again.reason} (with shape inputs bound)"
    return again


def _import_model(model: Any, name: str, models_dir: str) -> Imported:
    from sofie.backend_cpp.symbols import model_symbols
    from sofie.driver import build
    from sofie.errors import SofieError
    from sofie.ir.run_time_dims import table

    start = time.perf_counter()
    os.makedirs(models_dir, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="tmp.", dir=models_dir)
    try:
        r = build(model, tmp, name=name)
        f = r.low.main
        symbols = model_symbols(f)
        key = content_key(tmp)
        folder = os.path.join(models_dir, key)
        try:
            os.rename(tmp, folder)
        except OSError:  # already there: the same content, emitted by another worker
            if not os.path.isdir(folder):
                raise
            shutil.rmtree(tmp)
        return Imported(name, OK, key=key, folder=folder,
                        inputs=[[a.name, a.type.dtype, list(a.type.shape)] for a in f.args],
                        outputs=[[v.name, v.type.dtype, list(v.type.shape)] for v in f.outputs],
                        batch=symbols.batch, dims=list(symbols.dims), run_time_dims=table(f),
                        seconds=time.perf_counter() - start)
    except SofieError as e:
        return Imported(name, REFUSED, one_line(e), seconds=time.perf_counter() - start)
    except Exception as e:  # noqa: BLE001 - any other exception is a sofie bug, reported as such
        where = traceback.extract_tb(e.__traceback__)[-1]
        reason = f"{type(e).__name__}: {one_line(e)} ({_sofie_path(where.filename)}:{where.lineno})"
        return Imported(name, CRASH, reason, seconds=time.perf_counter() - start)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def import_cached(test: NodeTest, cache: str, source_hash: str) -> Imported:
    """import_test, remembered by the model's bytes and sofie's sources (crashes are not)."""
    key = hashlib.sha256(test.model.SerializeToString() + source_hash.encode()).hexdigest()[:24]
    record = os.path.join(cache, "imports", key + ".json")
    if os.path.isfile(record):
        with open(record) as f:
            cached = Imported(**json.load(f))
        if cached.status != OK or os.path.isdir(cached.folder):
            return cached
    result = import_test(test, os.path.join(cache, "models"))
    if result.status != CRASH:
        os.makedirs(os.path.dirname(record), exist_ok=True)
        tmp = record + f".{os.getpid()}"
        with open(tmp, "w") as f:
            json.dump(asdict(result), f)
        os.replace(tmp, record)
    return result
