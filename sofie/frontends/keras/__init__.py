"""Keras frontend: `.keras` archives and legacy `.h5` models, read with h5py and json (neither
TensorFlow nor Keras is needed to compile)."""

from __future__ import annotations

import os

from sofie.frontends.files import check_model_file
from sofie.frontends.keras.archive import read_keras, sniff
from sofie.frontends.names import module_name
from sofie.ir.core import Module


def is_keras_file(path: str, head: bytes = b"") -> bool:
    """By content: a zip archive holding config.json, or an HDF5 file with a model_config."""
    return sniff(path) is not None


def load_keras(path: str | os.PathLike, name: str | None = None) -> Module:
    """Imports a Keras model file into a verified graph-dialect module."""
    from sofie.frontends.keras.importer import import_keras
    path = str(path)
    check_model_file(path)
    kf = read_keras(path)
    return import_keras(kf, module_name(name or os.path.splitext(os.path.basename(path))[0]))
