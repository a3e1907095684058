"""PyTorch modules, through torch's ONNX exporter (dynamic batch on axis 0)."""

from __future__ import annotations

import io
from typing import Any

from sofie.errors import SofieError
from sofie.ir.core import Module


def is_torch_module(model: Any) -> bool:
    try:
        import torch
    except ImportError:
        return False
    return isinstance(model, torch.nn.Module)


def load_torch(model: Any, example_inputs: Any, name: str | None) -> Module:
    import onnx
    import torch

    from sofie.frontends.onnx import load_onnx
    if example_inputs is None:
        raise SofieError("compiling a torch.nn.Module needs example_inputs= (a tensor or a tuple of them)")
    inputs = tuple(example_inputs) if isinstance(example_inputs, tuple | list) else (example_inputs,)
    names = [f"x{i}" if len(inputs) > 1 else "x" for i in range(len(inputs))]
    buf = io.BytesIO()
    model.eval()
    with torch.no_grad():
        torch.onnx.export(model, inputs, buf, input_names=names, output_names=["y"], opset_version=17,
                          dynamic_axes={n: {0: "N"} for n in names + ["y"]}, dynamo=False)
    return load_onnx(onnx.load_from_string(buf.getvalue()), name or type(model).__name__.lower())
