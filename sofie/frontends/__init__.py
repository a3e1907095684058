"""Frontends: every model format becomes a graph-dialect module."""

from __future__ import annotations

import os
from typing import Any

from sofie.errors import SofieError
from sofie.ir.core import Module


def load_model(model: Any, name: str | None = None, example_inputs: Any = None) -> Module:
    """Dispatches on the model's kind: an ONNX path or ModelProto, a path to graph-dialect IR
    text (.ir, .sofie, .mlir, or any file starting `module @`), a Keras model (a `.keras` zip
    archive or a legacy HDF5 file, told by their contents), or a torch.nn.Module."""
    import onnx

    from sofie.frontends.ir_text import is_ir_text, load_ir_text
    from sofie.frontends.onnx import load_onnx
    if isinstance(model, onnx.ModelProto):
        return load_onnx(model, name)
    if isinstance(model, str | os.PathLike):
        path = str(model)
        ext = os.path.splitext(path)[1].lower()
        if ext == ".onnx":
            return load_onnx(path, name)
        if not os.path.isfile(path):
            raise SofieError(f"{path}: no such file")
        if is_ir_text(path):
            return load_ir_text(path, name)
        from sofie.frontends.keras import is_keras_file, load_keras
        if is_keras_file(path) or ext in (".keras", ".h5", ".hdf5"):
            return load_keras(path, name)
        if _looks_like_onnx(path):
            return load_onnx(path, name)
        raise SofieError(f"{path}: unsupported model format '{ext or '(none)'}'; sofie reads ONNX (.onnx), "
                         f"sofie IR text (.ir), Keras 3 archives (.keras) and legacy Keras HDF5 (.h5) "
                         f"(ROOT and .pt files are on the roadmap)")
    from sofie.frontends.torch import is_torch_module, load_torch
    if is_torch_module(model):
        return load_torch(model, example_inputs, name)
    raise SofieError(f"cannot compile a {type(model).__name__}: pass an ONNX path or ModelProto, "
                     f"or a torch.nn.Module with example_inputs=")


def _looks_like_onnx(path: str) -> bool:
    """An ONNX model under another name: a protobuf that parses to a model with a graph."""
    import onnx
    try:
        proto = onnx.load(path, load_external_data=False)
    except Exception:  # protobuf raises several types for bytes that are not a model
        return False
    return bool(proto.graph.node) and proto.ir_version > 0
