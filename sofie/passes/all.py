"""Imports every pass module so each registers itself by name."""

from sofie.passes import (  # noqa: F401
    canonicalize,
    cse,
    dce,
    fold_batchnorm,
    fold_constants,
    fuse,
    infer_shapes,
    sink_transposes,
)
from sofie.passes.low import fuse_loops, plan_memory  # noqa: F401
