"""Imports every pass module so each registers itself by name."""

from sofie.passes import plan_memory  # noqa: F401
