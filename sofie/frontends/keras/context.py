"""What a layer converter works with: the builder, the layer's config and weights, and the
helpers every family shares (channel-layout transposes, activations by Keras name)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from sofie.errors import SofieError
from sofie.ir.core import Builder, Value


@dataclass
class Layer:
    name: str
    cls: str
    config: dict[str, Any]

    def get(self, key: str, default: Any = None) -> Any:
        return self.config.get(key, default)


class Context:
    def __init__(self, builder: Builder, source: str, weights: dict[str, list[np.ndarray]]) -> None:
        self.b = builder
        self.source = source
        self._weights = weights
        self.layer: Layer | None = None

    @property
    def where(self) -> str:
        la = self.layer
        return f"{self.source}: layer '{la.name}' ({la.cls})" if la else self.source

    def error(self, message: str) -> SofieError:
        return SofieError(f"{self.where}: {message}")

    def op(self, name: str, inputs: list[Value | None], attrs: dict[str, Any] | None = None,
           suffix: str = "") -> Value:
        return self.ops(name, inputs, attrs, suffix)[0]

    def ops(self, name: str, inputs: list[Value | None], attrs: dict[str, Any] | None = None,
            suffix: str = "") -> list[Value]:
        loc = self.layer.name + (f"/{suffix}" if suffix else "") if self.layer else suffix
        try:
            return self.b.create(name, inputs, attrs or {}, loc).results
        except SofieError as e:
            raise self.error(str(e)) from None

    def const(self, data: Any, what: str, dtype: Any = None) -> Value:
        arr = np.asarray(data, dtype=dtype)
        prefix = self.layer.name if self.layer else "keras"
        return self.b.weight(np.array(arr, order="C"), f"{prefix}/{what}")

    def ints(self, values: Any, what: str) -> Value:
        return self.const(np.array(list(values), np.int64), what)

    def weights(self, count: int | None = None) -> list[np.ndarray]:
        """The layer's arrays in the order of its `weights` list; `count` checks how many."""
        assert self.layer is not None
        ws = self._weights.get(self.layer.name, [])
        if count is not None and len(ws) != count:
            raise self.error(f"expected {count} weight arrays, the file holds {len(ws)} "
                             f"({', '.join(str(w.shape) for w in ws) or 'none'})")
        return ws

    def cast_weight(self, arr: np.ndarray, like: Value) -> np.ndarray:
        from sofie.ir.types import numpy_dtype
        return np.asarray(arr, dtype=numpy_dtype(like.type.dtype))

    # channels-last <-> channels-first: the layout pass cancels the pairs this leaves
    def to_channels_first(self, x: Value) -> Value:
        r = x.type.rank
        return self.op("graph.transpose", [x], {"perm": [0, r - 1, *range(1, r - 1)]}, "to_nchw")

    def to_channels_last(self, x: Value) -> Value:
        r = x.type.rank
        return self.op("graph.transpose", [x], {"perm": [0, *range(2, r), 1]}, "to_nhwc")

    def axis(self, axis: int, rank: int) -> int:
        a = axis + rank if axis < 0 else axis
        if not 0 <= a < rank:
            raise self.error(f"axis {axis} is out of range for rank {rank}")
        return a

    def static_dims(self, x: Value, axes: list[int]) -> list[int]:
        dims = [x.type.shape[a] for a in axes]
        if not all(isinstance(d, int) for d in dims):
            raise self.error(f"needs static dims on axes {axes}, got {x.type.shape}")
        return dims  # type: ignore[return-value]
