"""Reading Keras files with h5py and json only: Keras 3 `.keras` zip archives (config.json and
model.weights.h5) and legacy HDF5 `.h5` files (a `model_config` attribute and `model_weights`).

Both give a model config (the JSON Keras writes) and each layer's weights in the order of the
layer's `weights` list, keyed by layer name.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sofie.errors import SofieError

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
ZIP_SIGNATURE = b"PK\x03\x04"


@dataclass
class KerasFile:
    path: str
    config: dict[str, Any]
    weights: dict[str, list[np.ndarray]] = field(default_factory=dict)  # layer name -> arrays


def sniff(path: str) -> str | None:
    """'keras' for a zip holding config.json, 'h5' for HDF5 with a model config, else None."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError:
        return None
    if head.startswith(ZIP_SIGNATURE):
        try:
            with zipfile.ZipFile(path) as z:
                return "keras" if "config.json" in z.namelist() else None
        except Exception:  # a damaged zip raises several types; sniffing must not crash
            return "keras" if path.lower().endswith(".keras") else None
    if head == HDF5_SIGNATURE:
        try:
            import h5py
        except ImportError:  # the loader says to install the keras extra
            return "h5" if path.lower().endswith((".h5", ".hdf5")) else None
        try:
            with h5py.File(path, "r") as f:
                return "h5" if "model_config" in f.attrs else None
        except Exception:  # damaged: say so when the name says it is a Keras model
            return "h5" if path.lower().endswith((".h5", ".hdf5")) else None
    return None


def read_keras(path: str) -> KerasFile:
    """Reads a `.keras` archive or a legacy `.h5` model; a damaged file is a SofieError."""
    kind = sniff(path)
    try:
        if kind == "keras":
            return _read_archive(path)
        if kind == "h5":
            return _read_h5(path)
    except SofieError:
        raise
    except Exception as e:  # zipfile, h5py and json raise many types for a damaged file
        raise SofieError(f"{path}: not a readable Keras model ({type(e).__name__}: {e})") from None
    raise SofieError(f"{path}: not a Keras model (neither a .keras zip archive with config.json nor "
                     f"an HDF5 file with a model_config attribute)")


def _h5py():
    try:
        import h5py
    except ImportError:
        raise SofieError("reading Keras models needs h5py: pip install 'sofie[keras]'") from None
    return h5py


def _read_archive(path: str) -> KerasFile:
    h5py = _h5py()
    with zipfile.ZipFile(path) as z:
        config = json.loads(z.read("config.json"))
        names = z.namelist()
        if "model.weights.h5" not in names:
            raise SofieError(f"{path}: the archive has no model.weights.h5 "
                             f"(sharded or npz weights are not supported)")
        blob = z.read("model.weights.h5")
    out = KerasFile(path, config)
    with h5py.File(io.BytesIO(blob), "r") as f:
        if "layers" in f:
            for key in f["layers"]:
                group = f["layers"][key]
                name = _vars_name(group) or key
                out.weights[name] = _group_arrays(group)
    return out


def _vars_name(group: Any) -> str | None:
    v = group.get("vars")
    name = v.attrs.get("name") if v is not None else None
    return name.decode() if isinstance(name, bytes) else name


# sub-layers in the order their weights appear in the layer's `weights` list
_SUBLAYER_ORDER = {"forward_layer": 0, "backward_layer": 1}


def _group_arrays(group: Any) -> list[np.ndarray]:
    """A layer's variables: its own `vars/0..n`, then its sub-layers' (cell, forward_layer, ...)."""
    out = []
    if "vars" in group:
        v = group["vars"]
        out += [np.array(v[k]) for k in sorted(v, key=int)]
    subs = sorted((k for k in group if k != "vars"), key=lambda k: (_SUBLAYER_ORDER.get(k, 2), k))
    for k in subs:
        if hasattr(group[k], "keys"):
            out += _group_arrays(group[k])
    return out


def _read_h5(path: str) -> KerasFile:
    h5py = _h5py()
    with h5py.File(path, "r") as f:
        raw = f.attrs["model_config"]
        config = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
        out = KerasFile(path, config)
        root = f["model_weights"] if "model_weights" in f else f
        for name in _strings(root.attrs.get("layer_names", [])):
            g = root[name]
            out.weights[name] = [np.array(g[w]) for w in _strings(g.attrs.get("weight_names", []))]
    return out


def _strings(items: Any) -> list[str]:
    return [s.decode() if isinstance(s, bytes) else str(s) for s in items]
