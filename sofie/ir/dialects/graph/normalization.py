"""Normalizations over axes and the softmax relatives: LogSoftmax, Hardmax, LayerNormalization,
RMSNormalization, GroupNormalization, InstanceNormalization, LRN, LpNormalization and
MeanVarianceNormalization. (Softmax and BatchNormalization live in `nn`.)

The element types are the float types: statistics of integers are not defined by ONNX.
"""

from __future__ import annotations

import numpy as np

from sofie.errors import SofieError
from sofie.ir.core import Operation
from sofie.ir.dialects.graph.shape import _axis
from sofie.ir.registry import INPLACE, PURE, Attr, OpDef, register
from sofie.ir.types import COMPUTED_AS_F32, FLOATS, TensorType, broadcast_shapes, fmt_shape


def float_input(op: Operation, *types: TensorType | None) -> str:
    """The one float element type of the operands."""
    dts = {t.dtype for t in types if t is not None}
    if len(dts) != 1:
        raise SofieError(f"{op.describe()}: operand element types differ: {sorted(dts)}")
    dt = dts.pop()
    if dt not in FLOATS and dt not in COMPUTED_AS_F32:
        raise SofieError(f"{op.describe()}: not defined on element type {dt} (supported: {', '.join(FLOATS)})")
    return dt


class AxisOp(OpDef):
    """Softmax-like: the same shape, computed along one axis (opset >= 13 semantics; the
    importer flattens the older 2-D form)."""

    operands = "X"
    attrs = {"axis": Attr("int", -1)}
    traits = frozenset({PURE, INPLACE})

    def shape(self, op, x):
        float_input(op, x)
        _axis(op, op.attr("axis"), x.rank)
        return x


@register
class LogSoftmax(AxisOp):
    name = "graph.log_softmax"
    onnx = "LogSoftmax"
    doc = "x - max - log(sum(exp(x - max))) along axis"

    def reference(self, op, x):
        a = op.attr("axis")
        d = x - x.max(axis=a, keepdims=True)
        return (d - np.log(np.exp(d).sum(axis=a, keepdims=True))).astype(x.dtype)


@register
class Hardmax(AxisOp):
    name = "graph.hardmax"
    onnx = "Hardmax"
    traits = frozenset({PURE})
    doc = "1 at the first largest element along axis, 0 elsewhere"

    def reference(self, op, x):
        a = op.attr("axis") % x.ndim
        y = np.zeros_like(x)
        np.put_along_axis(y, np.expand_dims(np.argmax(x, axis=a), a), 1, axis=a)
        return y


def _check_param(op: Operation, what: str, t: TensorType | None, want: tuple) -> None:
    """A scale / bias must broadcast (unidirectionally) to the normalized shape `want`."""
    if t is not None and broadcast_shapes(t.shape, want) != tuple(want):
        raise SofieError(f"{op.describe()}: {what} {fmt_shape(t.shape)} does not broadcast to "
                         f"the normalized shape {fmt_shape(want)}")


class LastAxesNorm(OpDef):
    """Normalizes over axes [axis, rank): LayerNormalization and RMSNormalization."""

    attrs = {"axis": Attr("int", -1), "epsilon": Attr("float", 1e-5), "stash_type": Attr("int", 1)}
    centered = True

    def first_axis(self, op: Operation, rank: int) -> int:
        return _axis(op, op.attr("axis"), rank)

    def stats_type(self, op: Operation, x: TensorType) -> TensorType:
        a = self.first_axis(op, x.rank)
        return x.with_shape(x.shape[:a] + (1,) * (x.rank - a))

    def check(self, op: Operation, x, scale, b) -> None:
        float_input(op, x, scale, b)
        want = x.shape[self.first_axis(op, x.rank):]
        _check_param(op, "scale", scale, want)
        _check_param(op, "bias", b, want)

    def normalize(self, op: Operation, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(normalized x, mean, 1 / std) in float64 then cast back."""
        a = self.first_axis(op, x.ndim)
        axes = tuple(range(a, x.ndim))
        xd = x.astype(np.float64)
        mean = xd.mean(axis=axes, keepdims=True) if self.centered else np.zeros_like(xd[..., :1])
        d = xd - mean
        inv = 1 / np.sqrt((d * d).mean(axis=axes, keepdims=True) + op.attr("epsilon"))
        return d * inv, mean, inv


@register
class LayerNormalization(LastAxesNorm):
    name = "graph.layer_normalization"
    onnx = "LayerNormalization"
    operands = "X Scale B?"
    doc = "(X - mean) / sqrt(var + epsilon) * Scale + B over axes [axis, rank); also Mean and InvStdDev"

    def shape(self, op, x, scale, b):
        self.check(op, x, scale, b)
        stats = self.stats_type(op, x)
        return [x, stats, stats]

    def reference(self, op, x, scale, b):
        y, mean, inv = self.normalize(op, x)
        y = y * scale + (b if b is not None else 0)
        return [y.astype(x.dtype), mean.astype(x.dtype), inv.astype(x.dtype)]


@register
class RMSNormalization(LastAxesNorm):
    name = "graph.rms_normalization"
    onnx = "RMSNormalization"
    operands = "X scale"
    centered = False
    doc = "X / sqrt(mean(X^2) + epsilon) * scale over axes [axis, rank)"

    def shape(self, op, x, scale):
        self.check(op, x, scale, None)
        return x

    def reference(self, op, x, scale):
        y, _, _ = self.normalize(op, x)
        return (y * scale).astype(x.dtype)


class ChannelGroupNorm(OpDef):
    """Per (image, group of channels) statistics over the group's channels and all spatial
    positions, then a per-channel (or per-group) scale and bias."""

    def groups(self, op: Operation, channels: int) -> int:
        raise NotImplementedError

    def shape(self, op, x, scale, b):
        float_input(op, x, scale, b)
        if x.rank < 2 or not isinstance(x.shape[1], int):
            raise SofieError(f"{op.describe()}: X {fmt_shape(x.shape)} needs rank >= 2 and static channels")
        c = x.shape[1]
        g = self.groups(op, c)
        if g < 1 or c % g:
            raise SofieError(f"{op.describe()}: {c} channels do not split into {g} groups")
        for what, t in (("scale", scale), ("bias", b)):
            if t.shape not in ((c,), (g,)):
                raise SofieError(f"{op.describe()}: {what} has shape {fmt_shape(t.shape)}, expected [{c}]")
        if scale.shape != b.shape:
            raise SofieError(f"{op.describe()}: scale {fmt_shape(scale.shape)} and bias "
                             f"{fmt_shape(b.shape)} differ")
        return x

    def reference(self, op, x, scale, b):
        n, c = x.shape[:2]
        g = self.groups(op, c)
        xg = x.reshape(n, g, -1).astype(np.float64)
        mean = xg.mean(axis=2, keepdims=True)
        var = ((xg - mean) ** 2).mean(axis=2, keepdims=True)
        y = ((xg - mean) / np.sqrt(var + op.attr("epsilon"))).reshape(x.shape)
        if scale.shape[0] != c:  # opset 18: one scale and bias per group
            scale, b = np.repeat(scale, c // g), np.repeat(b, c // g)
        shape = (1, c) + (1,) * (x.ndim - 2)
        return (y * scale.reshape(shape) + b.reshape(shape)).astype(x.dtype)


@register
class GroupNormalization(ChannelGroupNorm):
    name = "graph.group_normalization"
    onnx = "GroupNormalization"
    operands = "X scale B"
    attrs = {"num_groups": Attr("int"), "epsilon": Attr("float", 1e-5), "stash_type": Attr("int", 1)}
    doc = "normalized per group of channels, then scale and bias per channel (per group before opset 21)"

    def groups(self, op: Operation, channels: int) -> int:
        return op.attr("num_groups")


@register
class InstanceNormalization(ChannelGroupNorm):
    name = "graph.instance_normalization"
    onnx = "InstanceNormalization"
    operands = "X scale B"
    attrs = {"epsilon": Attr("float", 1e-5)}
    doc = "normalized per image and channel over the spatial positions, then scale and bias"

    def groups(self, op: Operation, channels: int) -> int:
        return channels


@register
class LRN(OpDef):
    name = "graph.lrn"
    onnx = "LRN"
    operands = "X"
    attrs = {"alpha": Attr("float", 1e-4), "beta": Attr("float", 0.75), "bias": Attr("float", 1.0),
             "size": Attr("int")}
    doc = "X / (bias + alpha / size * sum of X^2 over `size` neighbouring channels) ^ beta"

    def shape(self, op, x):
        float_input(op, x)
        if x.rank < 3 or not isinstance(x.shape[1], int):
            raise SofieError(f"{op.describe()}: X {fmt_shape(x.shape)} needs rank >= 3 and static channels")
        if op.attr("size") < 1:
            raise SofieError(f"{op.describe()}: size must be >= 1, got {op.attr('size')}")
        return x

    def reference(self, op, x):
        size, c = op.attr("size"), x.shape[1]
        sq = np.zeros_like(x, dtype=np.float64)
        lo, hi = (size - 1) // 2, size - 1 - (size - 1) // 2
        for ch in range(c):
            sq[:, ch] = (x[:, max(0, ch - lo):min(c, ch + hi + 1)].astype(np.float64) ** 2).sum(axis=1)
        scale = op.attr("bias") + op.attr("alpha") / size * sq
        return (x / scale ** op.attr("beta")).astype(x.dtype)


@register
class LpNormalization(OpDef):
    name = "graph.lp_normalization"
    onnx = "LpNormalization"
    operands = "X"
    attrs = {"axis": Attr("int", -1), "p": Attr("int", 2)}
    doc = "X divided by its L1 or L2 norm along axis (0 where the norm is 0)"

    def shape(self, op, x):
        float_input(op, x)
        _axis(op, op.attr("axis"), x.rank)
        if op.attr("p") not in (1, 2):
            raise SofieError(f"{op.describe()}: p must be 1 or 2, got {op.attr('p')}")
        return x

    def reference(self, op, x):
        a = op.attr("axis")
        norm = (np.abs(x).sum(axis=a, keepdims=True) if op.attr("p") == 1
                else np.sqrt((x * x).sum(axis=a, keepdims=True)))
        with np.errstate(all="ignore"):
            return np.where(norm == 0, 0, x / norm).astype(x.dtype)


MVN_EPSILON = 1e-9  # the ONNX function's


@register
class MeanVarianceNormalization(OpDef):
    name = "graph.mean_variance_normalization"
    onnx = "MeanVarianceNormalization"
    operands = "X"
    attrs = {"axes": Attr("ints", [0, 2, 3])}
    doc = "(X - E[X]) / (sqrt(E[X^2] - E[X]^2) + 1e-9) over axes"

    def axes(self, op: Operation, rank: int) -> list[int]:
        return sorted({_axis(op, a, rank) for a in op.attr("axes")})

    def shape(self, op, x):
        float_input(op, x)
        self.axes(op, x.rank)
        return x

    def reference(self, op, x):
        axes = tuple(self.axes(op, x.ndim))
        mean = x.mean(axis=axes, keepdims=True)
        var = (x * x).mean(axis=axes, keepdims=True) - mean * mean
        return ((x - mean) / (np.sqrt(var) + MVN_EPSILON)).astype(x.dtype)
