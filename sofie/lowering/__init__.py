"""graph dialect -> low dialect. Importing this package registers the `lower` pass."""

from sofie.lowering import lower  # noqa: F401
