"""Every dialect's declarations; importing this package registers them all."""

from sofie.ir.dialects import low  # noqa: F401
from sofie.ir.dialects.graph import elementwise, nn, recurrent, shape, tensor  # noqa: F401
