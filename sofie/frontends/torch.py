"""PyTorch: nn.Modules, torch.export programs and `.pt2` files, through torch's ONNX exporter.

A module is exported with `torch.export` and a dynamic batch (torch's `Dim.AUTO` on axis 0 of
every input, or the caller's `dynamic_shapes`), then translated to ONNX (opset 18+) by
torch's default exporter and imported like any ONNX model. When `torch.export` cannot trace
the module, the legacy TorchScript exporter (`dynamo=False`) takes over; a warning says so,
and the `sofie` logger says which path was taken in every case.
"""

from __future__ import annotations

import logging
import os
import re
import warnings
import zipfile
from typing import Any

from sofie.errors import SofieError
from sofie.frontends.names import module_name
from sofie.ir.core import Module

log = logging.getLogger("sofie")

BATCH = "N"  # the batch symbol's name in sofie, whatever torch calls it (s0, s77, batch)
LEGACY_OPSET = 17
# torch's DeprecationWarnings on every legacy export (the second is torch calling itself)
LEGACY_EXPORT_NOTICE = "You are using the legacy TorchScript-based ONNX export"
TORCH_INTERNAL_NOTICE = "The feature will be removed. Please remove usage of this function"


def is_torch_module(model: Any) -> bool:
    torch = _torch_if_loaded()
    return torch is not None and isinstance(model, torch.nn.Module)


def is_exported_program(model: Any) -> bool:
    torch = _torch_if_loaded()
    return torch is not None and isinstance(model, torch.export.ExportedProgram)


def _torch_if_loaded() -> Any:
    """torch when the caller has it (it made the object we are asked about), without paying
    torch's import time for every ONNX path."""
    import sys
    return sys.modules.get("torch")


def is_pt2(path: str, head: bytes) -> bool:
    """A `torch.export.save` archive: a zip whose `<name>/archive_format` says pt2."""
    if not head.startswith(b"PK\x03\x04"):
        return False
    try:
        with zipfile.ZipFile(path) as z:
            fmt = next((n for n in z.namelist() if n.endswith("archive_format")), None)
            return fmt is not None and z.read(fmt).strip() == b"pt2"
    except (OSError, zipfile.BadZipFile):
        return False


def is_torch_save(path: str, head: bytes) -> bool:
    """A `torch.save` file (a pickled module or state dict): a zip holding `<name>/data.pkl`."""
    if not head.startswith(b"PK\x03\x04"):
        return head.startswith(b"\x80\x02")  # torch.save's legacy (pre-1.6) pickle format
    try:
        with zipfile.ZipFile(path) as z:
            return any(n.endswith("/data.pkl") for n in z.namelist())
    except (OSError, zipfile.BadZipFile):
        return False


def load_torch(model: Any, example_inputs: Any, name: str | None,
               dynamic_shapes: Any = None) -> Module:
    """An nn.Module traced on `example_inputs` (a tensor or a tuple of them)."""
    import torch
    if example_inputs is None:
        raise SofieError("compiling a torch.nn.Module needs example_inputs= (a tensor or a tuple of them)")
    inputs = tuple(example_inputs) if isinstance(example_inputs, tuple | list) else (example_inputs,)
    name = name or type(model).__name__.lower()
    model.eval()
    auto = dynamic_shapes is None
    shapes = _auto_batch(inputs) if auto else dynamic_shapes
    try:
        with torch.no_grad():
            program = torch.export.export(model, inputs, dynamic_shapes=shapes)
    except Exception as e:  # torch raises many kinds (Unsupported, UserError, guard failures)
        if not auto:
            raise SofieError(f"{name}: torch.export failed with the dynamic_shapes given: {_first_line(e)}") from None
        warnings.warn(f"{name}: torch.export failed ({_first_line(e)}); exported with the legacy TorchScript "
                      f"exporter (dynamo=False, opset {LEGACY_OPSET}, batch dynamic on axis 0)", stacklevel=3)
        return _load_legacy(model, inputs, name)
    if auto:
        _check_batch_is_dynamic(model, inputs, program, name)
    log.info("%s: exported with torch.export (batch %s) and torch's ONNX exporter", name,
             "dynamic" if auto else "as in dynamic_shapes")
    return load_exported_program(program, name)


def load_exported_program(program: Any, name: str | None, source: str = "<ExportedProgram>") -> Module:
    """A `torch.export.ExportedProgram`, translated by torch's default ONNX exporter."""
    import torch

    from sofie.frontends.onnx import load_onnx
    try:
        onnx_program = torch.onnx.export(program, dynamo=True, verbose=False)
    except Exception as e:
        raise SofieError(f"{source}: torch's ONNX exporter cannot translate this program: {_first_line(e)}") from None
    proto = onnx_program.model_proto
    _rename_batch(proto, program)
    return load_onnx(proto, module_name(name or proto.graph.name or "model"))


def load_pt2(path: str, name: str | None = None) -> Module:
    """A program saved with `torch.export.save` (`.pt2`)."""
    import torch
    try:
        program = torch.export.load(path)
    except Exception as e:
        raise SofieError(f"{path}: not a readable torch.export program (.pt2): {_first_line(e)}") from None
    log.info("%s: read with torch.export.load, translated by torch's ONNX exporter", path)
    return load_exported_program(program, name or os.path.splitext(os.path.basename(path))[0], path)


def _auto_batch(inputs: tuple) -> tuple:
    """Dim.AUTO on axis 0 of every tensor input: torch keeps it symbolic unless the model's
    code fixes it (then we say so, see `_check_batch_is_dynamic`)."""
    import torch
    return tuple({0: torch.export.Dim.AUTO} if isinstance(x, torch.Tensor) and x.dim() > 0 else None
                 for x in inputs)


def _check_batch_is_dynamic(model: Any, inputs: tuple, program: Any, name: str) -> None:
    """Dim.AUTO specializes silently: find the inputs whose batch torch fixed, and ask torch
    why (a strict Dim) so the warning can say it."""
    import torch
    from torch.fx.experimental.symbolic_shapes import is_concrete_int
    user = torch.export.graph_signature.InputKind.USER_INPUT
    specs = [s for s in program.graph_signature.input_specs if s.kind == user]
    shapes = {n.name: n.meta.get("val") for n in program.graph.nodes if n.op == "placeholder"}
    fixed = []
    for spec in specs:
        val = shapes.get(spec.arg.name)
        if isinstance(val, torch.Tensor) and val.dim() > 0 and is_concrete_int(val.shape[0]):
            fixed.append((spec.arg.name, int(val.shape[0])))
    if not fixed:
        return
    why = ""
    try:
        strict = tuple({0: torch.export.Dim("batch")} if isinstance(x, torch.Tensor) and x.dim() > 0 else None
                       for x in inputs)
        with torch.no_grad():
            torch.export.export(model, inputs, dynamic_shapes=strict)
    except Exception as e:
        why = f": {_first_line(e)}"
    names = ", ".join(f"'{n}' (axis 0 = {b})" for n, b in fixed)
    warnings.warn(f"{name}: the batch cannot be dynamic, the model's code fixes it for input {names}{why}; "
                  f"the compiled model takes only that batch (TORCH_LOGS=+dynamic shows where)", stacklevel=4)


def _load_legacy(model: Any, inputs: tuple, name: str) -> Module:
    import io

    import onnx
    import torch

    from sofie.frontends.onnx import load_onnx
    names = [f"x{i}" if len(inputs) > 1 else "x" for i in range(len(inputs))]
    buf = io.BytesIO()
    try:
        with torch.no_grad(), warnings.catch_warnings():
            # the fallback is deliberate and the caller was told (load_torch's warning): torch's
            # notices that the TorchScript exporter is legacy would only repeat it
            warnings.filterwarnings("ignore", LEGACY_EXPORT_NOTICE, DeprecationWarning)
            warnings.filterwarnings("ignore", TORCH_INTERNAL_NOTICE, DeprecationWarning)
            torch.onnx.export(model, inputs, buf, input_names=names, output_names=["y"], opset_version=LEGACY_OPSET,
                              dynamic_axes={n: {0: BATCH} for n in names + ["y"]}, dynamo=False)
    except Exception as e:
        raise SofieError(f"{name}: neither torch.export nor the legacy ONNX exporter can export this module: "
                         f"{_first_line(e)}") from None
    log.info("%s: exported with the legacy TorchScript ONNX exporter", name)
    return load_onnx(onnx.load_from_string(buf.getvalue()), name)


def _rename_batch(proto: Any, program: Any) -> None:
    """torch names the batch after its own symbols (s77), one per input under Dim.AUTO unless
    the model relates them: sofie's interface calls it N, shared by every input whose example
    had the first input's batch. A dim torch fixed may come as the symbol "2": it becomes the
    number it is."""
    graph = proto.graph
    infos = [*graph.input, *graph.output, *graph.value_info]
    for v in infos:
        for d in v.type.tensor_type.shape.dim:
            if d.dim_param.isdigit():
                d.dim_value = int(d.dim_param)
    firsts = [v.type.tensor_type.shape.dim[0] if v.type.tensor_type.shape.dim else None for v in graph.input]
    examples = _example_batches(program)
    if not firsts or firsts[0] is None or not firsts[0].dim_param or len(examples) != len(firsts):
        return
    symbols = {d.dim_param for d, b in zip(firsts, examples) if d is not None and d.dim_param and b == examples[0]}
    used = {w for v in infos for d in v.type.tensor_type.shape.dim for w in re.findall(r"\w+", d.dim_param)}
    if BATCH in used - symbols:
        return
    word = re.compile(r"\b(" + "|".join(re.escape(x) for x in sorted(symbols)) + r")\b")
    for v in infos:
        for d in v.type.tensor_type.shape.dim:
            if d.dim_param:
                d.dim_param = word.sub(BATCH, d.dim_param)


def _example_batches(program: Any) -> list[int | None]:
    """Axis 0 of each user input of the example the program was traced on."""
    import torch
    user = torch.export.graph_signature.InputKind.USER_INPUT
    names = [s.arg.name for s in program.graph_signature.input_specs if s.kind == user]
    vals = {n.name: n.meta.get("val") for n in program.graph.nodes if n.op == "placeholder"}
    out: list[int | None] = []
    for name in names:
        v = vals.get(name)
        if not isinstance(v, torch.Tensor) or v.dim() == 0:
            out.append(None)
            continue
        d = v.shape[0]
        hint = d.node.hint if isinstance(d, torch.SymInt) else d
        out.append(None if hint is None else int(hint))
    return out


def _first_line(e: BaseException) -> str:
    """torch's reason in one line: its first bullet when it lists them ("Constraints violated
    (batch)! ... - You marked batch as dynamic but your code specialized it to be a
    constant (2). If you're using ..."), else its first line."""
    lines = (str(e).strip() or type(e).__name__).splitlines()
    bullets = [ln.strip()[2:] for ln in lines if ln.strip().startswith("- ")]
    text = bullets[0].split(". ")[0] if bullets else lines[0]
    return text.strip()[:400]
