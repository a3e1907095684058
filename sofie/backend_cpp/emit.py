"""Writes NAME.hxx, NAME.dat and the runtime headers into one self-contained folder."""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass

import numpy as np

from sofie.backend_cpp.custom import used_custom_code
from sofie.backend_cpp.header import BLAS_MACROS, emit_header
from sofie.errors import SofieError
from sofie.ir.core import Module
from sofie.ir.dialects.low import Weight as LowWeight
from sofie.runtime import weightfile

RUNTIME_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "runtime", "sofie_rt")


@dataclass
class Emitted:
    header: str
    weights: str
    weights_bytes: int


def weight_blobs(low: Module) -> tuple[list[bytes], list[int]]:
    """The weights in file order, and the offsets lowering assigned to them."""
    ops = sorted((op for op in low.main.ops if op.isa(LowWeight)), key=lambda o: o.attrs["offset"])
    blobs = [np.ascontiguousarray(low.weights[op.attrs["ref"]].data).tobytes() for op in ops]
    return blobs, [op.attrs["offset"] for op in ops]


def fingerprint(name: str, blobs: list[bytes]) -> int:
    h = hashlib.blake2b(name.encode(), digest_size=8)
    for b in blobs:
        h.update(len(b).to_bytes(8, "little"))
        h.update(b)
    return int.from_bytes(h.digest(), "little")


def emit(low: Module, out_dir: str, *, blas: str = "openblas", source: str = "",
         dims: dict[str, int] | None = None, profile: bool = False) -> Emitted:
    if blas not in BLAS_MACROS:
        raise SofieError(f"unknown BLAS '{blas}' (choose one of {', '.join(BLAS_MACROS)})")
    os.makedirs(out_dir, exist_ok=True)
    blobs, offsets = weight_blobs(low)
    fp = fingerprint(low.name, blobs)
    dat = os.path.join(out_dir, f"{low.name}.dat")
    written = weightfile.write_weights(dat, blobs, fp)
    if written != offsets:
        raise AssertionError(f"weights layout mismatch: lowering {offsets[:4]}.. vs file {written[:4]}..")
    text = emit_header(low, fingerprint=fp, n_tensors=len(blobs), blas=blas, source=source, dims=dims,
                       profile=profile)
    hxx = os.path.join(out_dir, f"{low.name}.hxx")
    with open(hxx, "w") as f:
        f.write(text)
    shutil.copytree(RUNTIME_DIR, os.path.join(out_dir, "sofie_rt"), dirs_exist_ok=True)
    headers = [c.header for c in used_custom_code(low.main) if c.header]
    if headers:
        os.makedirs(os.path.join(out_dir, "custom"), exist_ok=True)
    for h in headers:  # the folder stays self-contained: it carries the custom ops' headers
        shutil.copyfile(h, os.path.join(out_dir, "custom", os.path.basename(h)))
    return Emitted(hxx, dat, sum(len(b) for b in blobs))
