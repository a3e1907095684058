"""Resize (ONNX opsets 10-19; Upsample imports as it): nearest, linear and cubic interpolation.

Resizing is separable: each resized axis maps every output position to a few input positions
and weights (its *table*), computed here once, at compile time, from the attributes and the
static sizes. The numpy reference applies the tables axis by axis, and lowering hands the same
tables to the runtime kernel (`sofie_rt/resize.hxx`), so both read one definition. The tables
follow the ONNX reference implementation (onnx.reference.ops.op_resize) step for step.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from sofie.errors import SofieError
from sofie.ir.core import Operation
from sofie.ir.folding import known_value
from sofie.ir.registry import Attr, OpDef, register
from sofie.ir.symbolic import Sym
from sofie.ir.types import Dim, fmt_shape

MODES = ("nearest", "linear", "cubic")
# "simple" is Resize-10 / Upsample: floor when upsampling an axis, ceil when downsampling it
NEAREST_MODES = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil", "simple")
TRANSFORMS = ("half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners",
              "asymmetric", "tf_crop_and_resize")
POLICIES = ("stretch", "not_larger", "not_smaller")


@dataclass(frozen=True)
class AxisTable:
    """Output position j of `axis` reads input positions index[j, t] with weights weight[j, t]
    (one tap per position, no weights, for nearest); index -1 marks an output position outside
    a tf_crop_and_resize crop, which takes the extrapolation value."""

    axis: int
    index: np.ndarray           # int64 [out, taps]
    weight: np.ndarray | None   # float64 [out, taps]; None for nearest


# ---- coefficients per output position (ratio: the distance past the left input pixel, in (0, 1]) ----

def _nearest(mode: str) -> Callable[[float, float], np.ndarray]:
    def coeffs(ratio: float, scale: float) -> np.ndarray:
        if float(ratio).is_integer():
            return np.array([0.0, 1.0])
        up = {"round_prefer_floor": ratio > 0.5, "round_prefer_ceil": ratio >= 0.5, "floor": False,
              "ceil": True, "simple": scale < 1}[mode]
        return np.array([0.0, 1.0]) if up else np.array([1.0, 0.0])
    return coeffs


def _linear(ratio: float, scale: float) -> np.ndarray:
    return np.array([1 - ratio, ratio])


def _linear_antialias(ratio: float, scale: float) -> np.ndarray:
    scale = min(scale, 1.0)  # the filter widens by 1/scale when downsampling
    start = int(np.floor(-1 / scale) + 1)
    args = (np.arange(start, start + 2 - 2 * start) - ratio) * scale
    c = np.clip(1 - np.abs(args), 0, 1)
    return c / c.sum()


def _cubic(a: float, antialias: bool) -> Callable[[float, float], np.ndarray]:
    def kernel(x: float) -> float:
        x = abs(x)
        if x <= 1:
            return (a + 2) * x ** 3 - (a + 3) * x * x + 1
        return a * x ** 3 - 5 * a * x * x + 8 * a * x - 4 * a if x < 2 else 0.0

    def coeffs(ratio: float, scale: float) -> np.ndarray:
        if not antialias:
            return np.array([kernel(ratio + 1), kernel(ratio), kernel(1 - ratio), kernel(2 - ratio)])
        s = min(scale, 1.0)
        start = int(np.floor(-2 / s) + 1)
        c = np.array([kernel(s * (i - ratio)) for i in range(start, 2 - start)])
        return c / c.sum()
    return coeffs


def _source_coords(op: Operation, y: np.ndarray, scale: float, n_in: int, n_out: int,
                   roi: tuple[float, float] | None) -> tuple[np.ndarray, np.ndarray | None]:
    """Output positions -> input coordinates, and for tf_crop_and_resize the positions outside."""
    mode = op.attr("coordinate_transformation_mode")
    width = scale * n_in
    # scale * n_in, not the integer output length: the ONNX reference's choice; onnxruntime
    # takes the integer length, so they differ when scales do not give whole lengths
    if mode == "align_corners":
        return (np.zeros(n_out) if width == 1 else y * (n_in - 1) / (width - 1)), None
    if mode == "asymmetric":
        return y / scale, None
    if mode == "tf_crop_and_resize":
        lo, hi = roi if roi is not None else (0.0, 1.0)
        x = np.full(n_out, (hi - lo) * (n_in - 1) / 2) if width == 1 else y * (hi - lo) * (n_in - 1) / (width - 1)
        x = x + lo * (n_in - 1)
        return x, (x < 0) | (x > n_in - 1)
    if mode == "pytorch_half_pixel":
        return (np.full(n_out, -0.5) if width == 1 else (y + 0.5) / scale - 0.5), None
    if mode == "half_pixel":
        return (y + 0.5) / scale - 0.5, None
    offset = n_in / 2 * (1 - n_out / width)  # half_pixel_symmetric
    return offset + (y + 0.5) / scale - 0.5, None


def axis_table(op: Operation, axis: int, n_in: int, n_out: int, scale: float,
               roi: tuple[float, float] | None) -> AxisTable:
    mode = op.attr("mode")
    if mode == "nearest":
        fn = _nearest(op.attr("nearest_mode"))
    elif mode == "linear":
        fn = _linear_antialias if op.attr("antialias") else _linear
    else:
        fn = _cubic(op.attr("cubic_coeff_a"), bool(op.attr("antialias")))
    # nearest rounds coordinates that may fall a hair off .5: in float32, as onnxruntime does
    ft = np.float32 if mode == "nearest" else np.float64
    x, outside = _source_coords(op, np.arange(n_out, dtype=ft), ft(scale), n_in, n_out, roi)
    x = x.astype(np.float64)
    left = np.floor(x)
    ratios = np.where(x == left, 1.0, x - left)  # an exact pixel counts as 1 past its left one
    coeffs = np.array([fn(float(r), scale) for r in ratios]).reshape(n_out, -1)
    taps = coeffs.shape[1]
    # the `taps` input positions nearest x, ties to the smaller one (the reference's edge padding)
    pad = -(-taps // 2)
    xp = x + pad
    p = np.floor(xp).astype(np.int64)
    frac = xp - p
    if taps % 2 == 0:
        first = p + np.where(frac == 0, -(taps // 2), -(taps // 2) + 1)
    else:
        first = p + np.where(frac <= 0.5, -((taps - 1) // 2), -((taps - 1) // 2) + 1)
    index = first[:, None] + np.arange(taps)[None, :] - pad
    if op.attr("exclude_outside"):
        coeffs = np.where((index < 0) | (index >= n_in), 0.0, coeffs)
        total = coeffs.sum(axis=1, keepdims=True)
        coeffs = coeffs / np.where(total == 0, 1.0, total)
    index = np.clip(index, 0, n_in - 1)
    weight: np.ndarray | None = coeffs
    if mode == "nearest":  # the one tap of weight 1
        index = index[np.arange(n_out), coeffs.argmax(axis=1)][:, None]
        weight = None
    if outside is not None:
        index = np.where(outside[:, None], -1, index)
    return AxisTable(axis, index.astype(np.int64), weight)


def _array(op: Operation, key: str) -> np.ndarray | None:
    """A compile-time operand's value; None when absent or empty (ONNX's placeholder)."""
    v = op.operand(key)
    if v is None:
        return None
    data = known_value(v)
    if data is None:
        raise SofieError(f"{op.describe()}: the {key} are computed at run time; sofie needs them at "
                         f"compile time (the output shape depends on them)")
    return None if data.size == 0 else np.asarray(data)


@dataclass(frozen=True)
class Plan:
    out_shape: tuple[Dim, ...]
    tables: list[AxisTable]      # the resized axes, outermost first; identity axes have none


def plan(op: Operation, shape: tuple[Dim, ...], roi: np.ndarray | None = None,
         scales: np.ndarray | None = None, sizes: np.ndarray | None = None, known: bool = False) -> Plan:
    """Output shape and per-axis tables. `known`: read roi/scales/sizes from the operands."""
    if known:
        roi, scales, sizes = _array(op, "roi"), _array(op, "scales"), _array(op, "sizes")
    roi = None if roi is None or roi.size == 0 else roi
    scales = None if scales is None or scales.size == 0 else scales
    sizes = None if sizes is None or sizes.size == 0 else sizes
    where, r = op.describe(), len(shape)
    axes = [a % r if -r <= a < r else r for a in op.attr("axes")] or list(range(r))
    if max(axes) >= r or len(set(axes)) != len(axes):
        raise SofieError(f"{where}: axes {op.attr('axes')} are out of range or repeated for rank {r}")
    if (scales is None) == (sizes is None):
        raise SofieError(f"{where}: exactly one of scales and sizes must be given")
    given = scales if scales is not None else sizes
    if given.shape != (len(axes),):
        raise SofieError(f"{where}: {'scales' if scales is not None else 'sizes'} has shape "
                         f"{list(given.shape)}, expected [{len(axes)}] (one per resized axis)")
    if roi is not None and roi.shape != (2 * len(axes),):
        raise SofieError(f"{where}: roi has shape {list(roi.shape)}, expected [{2 * len(axes)}]")
    scale: list[float] = [1.0] * r
    out: list[Dim] = list(shape)
    crop: list[tuple[float, float] | None] = [None] * r
    for i, a in enumerate(axes):
        if roi is not None:
            crop[a] = (float(roi[i]), float(roi[len(axes) + i]))
        if scales is not None:
            scale[a] = float(scales[i])
            if scale[a] <= 0:
                raise SofieError(f"{where}: scales must be positive, got {scales.tolist()}")
            if scale[a] != 1.0:
                out[a] = int(scale[a] * _static(op, shape, a))
        elif _size(sizes[i]) != shape[a]:
            if isinstance(_size(sizes[i]), str) or int(sizes[i]) <= 0:
                raise SofieError(f"{where}: sizes must be positive, got {sizes.tolist()}")
            _static(op, shape, a)
            out[a] = int(sizes[i])
            scale[a] = out[a] / shape[a]
    policy = op.attr("keep_aspect_ratio_policy")
    if sizes is not None and policy != "stretch":
        if any(isinstance(_size(v), str) for v in sizes):
            raise SofieError(f"{where}: keep_aspect_ratio_policy needs numeric sizes, got {sizes.tolist()}")
        ratios = [int(sizes[i]) / _static(op, shape, a) for i, a in enumerate(axes)]
        s = min(ratios) if policy == "not_larger" else max(ratios)
        for a in axes:
            scale[a] = s
            out[a] = int(s * _static(op, shape, a) + 0.5)
    tables = []
    for a in axes:
        uncropped = crop[a] is None or (math.isclose(crop[a][0], 0.0) and math.isclose(crop[a][1], 1.0))
        if math.isclose(scale[a], 1.0) and out[a] == shape[a] and uncropped:
            continue  # identity along this axis
        if out[a] <= 0:
            raise SofieError(f"{where}: axis {a} of {fmt_shape(shape)} would resize to {out[a]}")
        tables.append(axis_table(op, a, _static(op, shape, a), int(out[a]), scale[a], crop[a]))
    return Plan(tuple(out), sorted(tables, key=lambda t: t.axis))


def _size(v: object) -> Dim:
    """A `sizes` entry: a number, or a dim symbol (PyTorch exports sizes built from Shape)."""
    return v.dim if isinstance(v, Sym) else int(v)


def _static(op: Operation, shape: tuple[Dim, ...], axis: int) -> int:
    if not isinstance(shape[axis], int):
        raise SofieError(f"{op.describe()}: axis {axis} ({shape[axis]}) of {fmt_shape(shape)} is resized "
                         f"and must be static")
    return shape[axis]


def apply_table(x: np.ndarray, t: AxisTable, extrapolation: float) -> np.ndarray:
    """One axis of the resize in numpy (float64), as the runtime kernel computes it."""
    index = np.maximum(t.index, 0)
    gathered = np.take(x, index, axis=t.axis)  # [..., out, taps, ...]
    if t.weight is None:
        y = gathered.squeeze(t.axis + 1)
    else:
        w = t.weight.reshape((1,) * t.axis + t.weight.shape + (1,) * (x.ndim - t.axis - 1))
        y = (gathered * w).sum(axis=t.axis + 1)
    outside = (t.index[:, 0] < 0).reshape((1,) * t.axis + (-1,) + (1,) * (x.ndim - t.axis - 1))
    return np.where(outside, extrapolation, y)


@register
class Resize(OpDef):
    name = "graph.resize"
    onnx = "Resize"
    operands = "X roi?:const scales?:const sizes?:const"
    attrs = {"mode": Attr("str", "nearest"), "coordinate_transformation_mode": Attr("str", "half_pixel"),
             "nearest_mode": Attr("str", "round_prefer_floor"), "cubic_coeff_a": Attr("float", -0.75),
             "exclude_outside": Attr("int", 0), "extrapolation_value": Attr("float", 0.0),
             "antialias": Attr("int", 0), "axes": Attr("ints", []),
             "keep_aspect_ratio_policy": Attr("str", "stretch")}
    doc = "ONNX Resize; roi, scales and sizes are compile-time (they decide the output shape)"

    def verify(self, op: Operation) -> None:
        for key, allowed in (("mode", MODES), ("nearest_mode", NEAREST_MODES),
                             ("coordinate_transformation_mode", TRANSFORMS),
                             ("keep_aspect_ratio_policy", POLICIES)):
            if op.attr(key) not in allowed:
                raise SofieError(f"{op.describe()}: {key} '{op.attr(key)}' is not one of {', '.join(allowed)}")
        if op.attr("antialias") and op.attr("mode") == "nearest":
            raise SofieError(f"{op.describe()}: antialias applies to linear and cubic modes only")

    def shape(self, op, x, roi, scales, sizes):
        self.verify(op)
        return x.with_shape(plan(op, x.shape, known=True).out_shape)

    def reference(self, op, x, roi, scales, sizes):
        p = plan(op, x.shape, roi, scales, sizes)
        y = x.astype(np.float64)
        for t in p.tables:
            y = apply_table(y, t, op.attr("extrapolation_value"))
        return y.astype(x.dtype)

