"""Every Keras layer class sofie converts, by class name (with Keras's aliases)."""

from __future__ import annotations

from collections.abc import Callable

from sofie.frontends.keras import layers_conv, layers_core, layers_merge, layers_recurrent
from sofie.frontends.keras.context import Context, Layer
from sofie.ir.core import Value

Converter = Callable[[Context, Layer, list[Value]], "Value | list[Value]"]

CONVERTERS: dict[str, Converter] = {
    **layers_core.CONVERTERS, **layers_conv.CONVERTERS, **layers_merge.CONVERTERS,
    **layers_recurrent.CONVERTERS,
}

_ALIASES = {"Convolution1D": "Conv1D", "Convolution2D": "Conv2D", "Convolution3D": "Conv3D",
            "Convolution2DTranspose": "Conv2DTranspose", "Convolution3DTranspose": "Conv3DTranspose",
            "SeparableConvolution1D": "SeparableConv1D", "SeparableConvolution2D": "SeparableConv2D"}
for n in (1, 2, 3):
    _ALIASES |= {f"MaxPool{n}D": f"MaxPooling{n}D", f"AvgPool{n}D": f"AveragePooling{n}D",
                 f"GlobalMaxPool{n}D": f"GlobalMaxPooling{n}D",
                 f"GlobalAvgPool{n}D": f"GlobalAveragePooling{n}D"}
CONVERTERS |= {alias: CONVERTERS[target] for alias, target in _ALIASES.items()}
