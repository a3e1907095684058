"""ROOT files, read and written with uproot (compiling needs no ROOT installation).

A ROOT file may hold two kinds of models, addressed as `file.root:name` (uproot's
convention; the name may be left out when the file holds one model):
- TMultiLayerPerceptron objects (`sofie.frontends.root_mlp`);
- sofie models: the lossless IR text (weights in its resource section) in a TObjString, as
  `sofie-compile --save-root file.root[:name]` writes it, so a model travels with the
  analysis data and ROOT itself can open the file (`TFile::Get<TObjString>("name")`).
"""

from __future__ import annotations

import os
from typing import Any

from sofie.errors import SofieError
from sofie.frontends.names import module_name
from sofie.ir.core import Module

MLP = "TMultiLayerPerceptron"
SOFIE_MODEL = "sofie model"


def is_root_file(path: str, head: bytes) -> bool:
    return head.startswith(b"root")


def load_root(path: str, name: str | None = None, member: str | None = None) -> Module:
    """The model `member` of ROOT file `path` (or its only model); `name` renames it."""
    with open_root(path) as f:
        models = _models(f, path)
        key = _pick(models, member, path, f)
        what = f"{path}:{key}"
        try:
            obj = f[key]
        except Exception as e:
            raise SofieError(f"{what}: cannot read the object ({_reason(e)})") from None
        if models[key] == MLP:
            from sofie.frontends.onnx import load_onnx
            from sofie.frontends.root_mlp import mlp_to_onnx
            try:
                proto = mlp_to_onnx(obj, what)
            except (AttributeError, KeyError, TypeError, ValueError) as e:  # members missing or of odd types
                raise SofieError(f"{what}: a {MLP} sofie cannot read ({_reason(e)})") from None
            return load_onnx(proto, name or module_name(key.rsplit("/", 1)[-1]))
        from sofie.frontends.ir_text import load_ir_string
        return load_ir_string(str(obj), what, name)


def save_root(module: Module, address: str) -> str:
    """Writes `module`'s IR text into ROOT file `address` ('file.root' or 'file.root:name';
    default name: the module's), replacing an object of that name and keeping the others.
    Returns 'file.root:name'."""
    import uproot

    from sofie.ir.printer import print_module
    path, key = _save_address(address)
    key = key or module.name
    text = print_module(module)
    try:
        if os.path.exists(path):
            with open(path, "rb") as fh:
                if not is_root_file(path, fh.read(4)):
                    raise SofieError(f"{path}: exists and is not a ROOT file; sofie adds models only to ROOT files")
            with uproot.update(path) as f:
                for old in [k for k in f.keys(cycle=True) if k.rsplit(";", 1)[0] == key]:
                    del f[old]  # every cycle: ROOT's Get(name) may otherwise pick an old one
                f[key] = text
        else:
            with uproot.recreate(path) as f:
                f[key] = text
    except SofieError:
        raise
    except Exception as e:  # uproot raises OSError, ValueError, its own errors on a damaged file
        raise SofieError(f"{path}: cannot write the model ({_reason(e)})") from None
    return f"{path}:{key}"


def _save_address(address: str) -> tuple[str, str | None]:
    folder, base = os.path.split(address)
    if ":" in base:
        stem, _, key = base.rpartition(":")
        return os.path.join(folder, stem), key or None
    return address, None


def open_root(path: str) -> Any:
    """The file opened by uproot, with sofie's TFormula reader (see `_classes`)."""
    import uproot
    try:
        return uproot.open(path, custom_classes=_classes())
    except Exception as e:  # a damaged file raises anything from OSError to struct.error
        raise SofieError(f"{path}: not a readable ROOT file, damaged or truncated? ({_reason(e)})") from None


def _models(f: Any, path: str) -> dict[str, str]:
    """The models of the file, by key (sub-folders as 'dir/name'), with their kind."""
    try:
        classes = f.classnames(recursive=True, cycle=False)
    except Exception as e:
        raise SofieError(f"{path}: not a readable ROOT file, damaged or truncated? ({_reason(e)})") from None
    out = {}
    for key, cls in classes.items():
        if cls == MLP:
            out[key] = MLP
        elif cls == "TObjString" and _is_sofie_model(f, key):
            out[key] = SOFIE_MODEL
    return out


def _is_sofie_model(f: Any, key: str) -> bool:
    from sofie.frontends.ir_text import looks_like_ir_text
    try:
        return looks_like_ir_text(str(f[key])[:4096])
    except Exception:  # an unreadable string is not a model; the user asked for none by name
        return False


def _pick(models: dict[str, str], member: str | None, path: str, f: Any) -> str:
    listing = ", ".join(f"{k} ({v})" for k, v in models.items())
    if member is None:
        if len(models) == 1:
            return next(iter(models))
        if not models:
            raise SofieError(f"{path}: holds no model (sofie reads {MLP} objects and sofie models "
                             f"written by sofie-compile --save-root)")
        raise SofieError(f"{path}: holds {len(models)} models: {listing}; address one as {path}:NAME")
    key = member.rsplit(";", 1)[0]  # a cycle number is accepted and ignored
    if key in models:
        return key
    try:
        cls = f.classname_of(member)
    except Exception:
        raise SofieError(f"{path}: no object named '{member}'; its models: {listing or 'none'}") from None
    raise SofieError(f"{path}:{member} is a {cls}, not a model; its models: {listing or 'none'}")


def _reason(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0][:300]}" if text else type(e).__name__


_CLASSES: dict[str, Any] | None = None


def _classes() -> dict[str, Any]:
    """uproot's classes plus a reader for TFormula, which uproot cannot deserialize from its
    streamer (its std::map member fails on an empty map): we read the TNamed base, whose
    title holds the expression, and fClingParameters, and skip the rest by its byte count."""
    global _CLASSES
    if _CLASSES is None:
        import numpy as np
        import uproot

        class Model_TFormula(uproot.model.Model):
            def read_members(self, chunk, cursor, context, file):
                self._bases.append(file.class_named("TNamed", 1).read(
                    chunk, cursor, context, file, self._file, self._parent, concrete=self.concrete))
                self._members["fClingParameters"] = uproot.containers.AsVector(True, np.dtype(">f8")).read(
                    chunk, cursor, context, file, self._file, self.concrete)
                cursor.skip(self._num_bytes - cursor.displacement(self._cursor))

        _CLASSES = {**uproot.classes, "TFormula": Model_TFormula}
    return dict(_CLASSES)
