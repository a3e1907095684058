"""Every dialect's declarations; importing this package registers them all."""

from sofie.ir.dialects import low  # noqa: F401
from sofie.ir.dialects.graph import (  # noqa: F401
    einsum,
    elementwise,
    indexing,
    movement,
    nn,
    normalization,
    quantize,
    recurrent,
    reduction,
    resize,
    shape,
    signal,
    spatial,
    tensor,
)
