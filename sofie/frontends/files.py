"""The one wording of a missing or wrong model path, shared by every reader and both CLIs."""

from __future__ import annotations

import os

from sofie.errors import SofieError


def check_model_file(path: str) -> None:
    """Raises unless `path` is an existing regular file (a directory is not "no such file")."""
    if os.path.isdir(path):
        raise SofieError(f"{path}: is a directory, expected a model file")
    if not os.path.isfile(path):
        raise SofieError(f"{path}: no such file")
