"""Frontends: every model format becomes a graph-dialect module.

A path is recognised by its contents (`FORMATS`, first match wins), then by its extension;
a ROOT file may be addressed as `file.root:name` (uproot's convention).
"""

from __future__ import annotations

import importlib
import os
from typing import Any, NamedTuple

from sofie.errors import SofieError
from sofie.frontends.files import check_model_file
from sofie.ir.core import Module

_SNIFF_BYTES = 1 << 16


class Format(NamedTuple):
    """A model file format: `module.sniff(path, head)` tells it by its first bytes (cheaply,
    without importing a framework), `module.load(path, name)` imports it; a file that holds
    several models (`addressable`) is loaded with `member=` the NAME of `file:NAME`."""
    description: str
    module: str
    sniff: str
    load: str
    extensions: tuple[str, ...]
    addressable: bool = False


FORMATS = (
    Format("ROOT files (.root, file.root:name)", "sofie.frontends.root", "is_root_file", "load_root", (".root",),
           addressable=True),
    Format("torch.export programs (.pt2)", "sofie.frontends.torch", "is_pt2", "load_pt2", (".pt2",)),
    Format("sofie IR text (.ir)", "sofie.frontends.ir_text", "sniff_ir_text", "load_ir_text",
           (".ir", ".sofie", ".mlir")),
    Format("Keras 3 archives (.keras) and legacy Keras HDF5 (.h5)", "sofie.frontends.keras", "is_keras_file",
           "load_keras", (".keras", ".h5", ".hdf5")),
    Format("ONNX (.onnx)", "sofie.frontends.onnx", "is_onnx", "load_onnx", (".onnx",)),
)
# formats recognised only to say what to do instead
_HINTS = (
    ("sofie.frontends.torch", "is_torch_save",
     "a torch.save file (pickled module or weights); save a torch.export program instead "
     "(torch.export.save(torch.export.export(model, (x,)), 'model.pt2')) or pass the nn.Module to sofie.compile"),
)


def load_model(model: Any, name: str | None = None, example_inputs: Any = None,
               dynamic_shapes: Any = None) -> Module:
    """Dispatches on the model's kind: a path (any format of `FORMATS`, `file.root:name`), an
    onnx.ModelProto, a torch.nn.Module (with `example_inputs`) or a torch.export program."""
    import onnx
    if isinstance(model, onnx.ModelProto):
        from sofie.frontends.onnx import load_onnx
        return load_onnx(model, name)
    if isinstance(model, str | os.PathLike):
        return load_path(str(model), name)
    from sofie.frontends.torch import is_exported_program, is_torch_module, load_exported_program, load_torch
    if is_torch_module(model):
        return load_torch(model, example_inputs, name, dynamic_shapes)
    if is_exported_program(model):
        return load_exported_program(model, name or "model")
    raise SofieError(f"cannot compile a {type(model).__name__}: pass a model file, an onnx.ModelProto, "
                     f"a torch.nn.Module with example_inputs= or a torch.export.ExportedProgram")


def split_address(address: str) -> tuple[str, str | None]:
    """'file.root:name' -> ('file.root', 'name'); a path that exists as given has no name."""
    if os.path.exists(address) or ":" not in address:
        return address, None
    path, _, member = address.rpartition(":")
    if path and os.path.isfile(path):
        return path, member or None
    return address, None


def format_of(path: str) -> Format | None:
    """The format of an existing file: by its contents, else by its extension."""
    try:
        with open(path, "rb") as f:
            head = f.read(_SNIFF_BYTES)
    except OSError as e:
        raise SofieError(f"{path}: {e.strerror}") from None
    for fmt in FORMATS:
        if getattr(importlib.import_module(fmt.module), fmt.sniff)(path, head):
            return fmt
    ext = os.path.splitext(path)[1].lower()
    return next((fmt for fmt in FORMATS if ext in fmt.extensions), None)


def load_path(address: str, name: str | None = None) -> Module:
    path, member = split_address(address)
    check_model_file(path)
    fmt = format_of(path)
    if fmt is None:
        raise SofieError(_unknown_format(path))
    load = getattr(importlib.import_module(fmt.module), fmt.load)
    if fmt.addressable:
        return load(path, name, member=member)
    if member is not None:
        raise SofieError(f"{address}: ':{member}' names a model inside a ROOT file, but {path} holds "
                         f"{fmt.description.split(' (')[0]}")
    return load(path, name)


def _unknown_format(path: str) -> str:
    with open(path, "rb") as f:
        head = f.read(_SNIFF_BYTES)
    what = next((text for module, sniff, text in _HINTS
                 if getattr(importlib.import_module(module), sniff)(path, head)), None)
    ext = os.path.splitext(path)[1].lower() or "(none)"
    known = ", ".join(fmt.description for fmt in FORMATS)
    return (f"{path}: unsupported model format '{ext}'" + (f": {what}" if what else "")
            + f"; sofie reads {known}")
