"""Spatial sampling and scattering ops: GridSample, Col2Im, MaxUnpool, RoiAlign, DeformConv.

Each reads or writes an image at positions that depend on data (a grid, indices, boxes or
offsets), so each lowers to one runtime kernel (`sofie_rt/spatial.hxx`). The numpy references
follow the ONNX reference implementation (onnx.reference.ops) step for step where the two
could differ (GridSample rounds before reflecting; RoiAlign's max mode takes the max of the
weighted corners), except GridSample's cubic mode, which pads each tap but not the point, as
PyTorch and onnxruntime do.
"""

from __future__ import annotations

import math

import numpy as np

from sofie.errors import SofieError
from sofie.ir.core import Operation
from sofie.ir.dialects.graph.shape import _known_numbers
from sofie.ir.registry import Attr, OpDef, register
from sofie.ir.types import FLOATS, Dim, fmt_shape

GRID_MODES = ("linear", "nearest", "cubic")
GRID_PADDINGS = ("zeros", "border", "reflection")
CUBIC_A = -0.75  # GridSample's cubic kernel (Keys), fixed by ONNX


# ---- GridSample ----------------------------------------------------------------------------

def _reflect(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """x reflected at the borders lo and hi until it lies between them."""
    span = hi - lo
    if span == 0:
        return np.full_like(x, lo)
    below, above = x < lo, x > hi
    dx = np.where(below, lo - x, x - hi)
    n = np.floor(dx / span)
    r = dx - n * span
    even = n % 2 == 0
    return np.where(below, np.where(even, lo + r, hi - r), np.where(above, np.where(even, hi - r, lo + r), x))


def _cubic_coeffs(t: np.ndarray) -> np.ndarray:
    a = CUBIC_A

    def near(v):  # |v| <= 1
        return ((a + 2) * v - (a + 3)) * v * v + 1

    def far(v):  # 1 < |v| < 2
        return ((a * v - 5 * a) * v + 8 * a) * v - 4 * a
    return np.stack([far(t + 1), near(t), near(1 - t), far(2 - t)], axis=-1)


def grid_axis_taps(n: np.ndarray, size: int, mode: str, padding: str, align: bool
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Normalized grid coordinates n along one axis of length `size` -> the input positions
    each point reads and their weights ([points, taps]); position -1 reads zero (padding
    zeros). The same steps as the runtime kernel (and the ONNX reference)."""
    x = (n + 1) / 2 * (size - 1) if align else ((n + 1) * size - 1) / 2
    lo, hi = (0.0, size - 1.0) if align else (-0.5, size - 0.5)
    if mode == "nearest":
        x = np.rint(x)  # half to even, before the border rule (as the ONNX reference)
    # the point itself moves inside, but for cubic (as PyTorch and onnxruntime; the ONNX
    # reference also clamps a cubic point, which changes its weights under border padding)
    outside = (x < lo) | (x > hi) if mode != "cubic" else np.zeros(x.shape, bool)
    if padding == "border":
        x = np.where(outside, np.clip(x, 0, size - 1), x)
    elif padding == "reflection":
        x = np.where(outside, _reflect(x, lo, hi), x)
    x = np.clip(np.nan_to_num(x, nan=-1e9), -1e9, 1e9)  # as the kernel: far-out points read padding
    if mode == "nearest":
        idx, w = x.astype(np.int64)[:, None], np.ones((x.size, 1), x.dtype)
    else:
        first = np.floor(x)
        t = x - first
        if mode == "linear":
            idx, w = first[:, None] + np.arange(2), np.stack([1 - t, t], axis=-1)
        else:
            idx, w = first[:, None] + np.arange(-1, 3), _cubic_coeffs(t)
        idx = idx.astype(np.int64)
    if padding == "zeros":
        idx = np.where((idx < 0) | (idx >= size), -1, idx)
    elif padding == "border":
        idx = np.clip(idx, 0, size - 1)
    else:
        idx = np.clip(_reflect(idx.astype(np.float64), lo, hi).astype(np.int64), 0, size - 1)
    return idx, w


@register
class GridSample(OpDef):
    name = "graph.grid_sample"
    onnx = "GridSample"
    operands = "X grid"
    attrs = {"align_corners": Attr("int", 0), "mode": Attr("str", "linear"),
             "padding_mode": Attr("str", "zeros")}
    doc = ("samples X [N, C, *in] at the normalized positions grid [N, *out, r] (x first: the last "
           "spatial axis); opset 16's bilinear / bicubic import as linear / cubic")

    def verify(self, op: Operation) -> None:
        if op.attr("mode") not in GRID_MODES:
            raise SofieError(f"{op.describe()}: mode '{op.attr('mode')}' is not one of {', '.join(GRID_MODES)}")
        if op.attr("padding_mode") not in GRID_PADDINGS:
            raise SofieError(f"{op.describe()}: padding_mode '{op.attr('padding_mode')}' is not one of "
                             f"{', '.join(GRID_PADDINGS)}")

    def shape(self, op, x, grid):
        self.verify(op)
        if x.rank < 3 or grid.rank != x.rank or grid.shape[-1] != x.rank - 2:
            raise SofieError(f"{op.describe()}: grid {fmt_shape(grid.shape)} does not fit X {fmt_shape(x.shape)} "
                             f"(expected [N, *out, {x.rank - 2}] for X of rank {x.rank} >= 3)")
        if grid.dtype not in FLOATS:
            raise SofieError(f"{op.describe()}: grid is {grid.dtype}, expected one of {', '.join(FLOATS)}")
        if x.shape[0] != grid.shape[0]:
            raise SofieError(f"{op.describe()}: X has batch {x.shape[0]}, grid {grid.shape[0]}; they must be equal")
        return x.with_shape((x.shape[0], x.shape[1], *grid.shape[1:-1]))

    def reference(self, op, x, grid):
        mode, padding, align = op.attr("mode"), op.attr("padding_mode"), bool(op.attr("align_corners"))
        nd = x.ndim - 2
        n, c = x.shape[:2]
        out = grid.shape[1:-1]
        y = np.zeros((n, c, math.prod(out)), np.float64)
        for b in range(n):
            pts = grid[b].reshape(-1, nd).astype(x.dtype if x.dtype.kind == "f" else np.float32)
            taps = [grid_axis_taps(pts[:, nd - 1 - i], x.shape[2 + i], mode, padding, align) for i in range(nd)]
            flat = x[b].reshape(c, -1).astype(np.float64)
            for combo in np.ndindex(*(t[0].shape[1] for t in taps)):
                w = np.ones(len(pts))
                off = np.zeros(len(pts), np.int64)
                valid = np.ones(len(pts), bool)
                for i, k in enumerate(combo):
                    idx = taps[i][0][:, k]
                    w = w * taps[i][1][:, k]
                    valid &= idx >= 0
                    off = off * x.shape[2 + i] + np.maximum(idx, 0)
                y[b] += np.where(valid, w * flat[:, off], 0.0)  # a padded tap adds 0, not 0 * x
        return y.reshape((n, c, *out)).astype(x.dtype)


# ---- Col2Im --------------------------------------------------------------------------------

def col2im_geometry(op: Operation, image: list[int], block: list[int]
                    ) -> tuple[list[int], list[int], list[int], list[int]]:
    """(pads [begin..., end...], strides, dilations, block positions per spatial dim)."""
    nd = len(image)
    pads = list(op.attr("pads")) or [0] * (2 * nd)
    strides = list(op.attr("strides")) or [1] * nd
    dil = list(op.attr("dilations")) or [1] * nd
    if len(block) != nd or len(pads) != 2 * nd or len(strides) != nd or len(dil) != nd:
        raise SofieError(f"{op.describe()}: image_shape {image}, block_shape {block}, pads {pads}, strides "
                         f"{strides} and dilations {dil} do not agree on the number of spatial dims")
    if min(image) < 1 or min(block) < 1 or min(strides) < 1 or min(dil) < 1 or min(pads) < 0:
        raise SofieError(f"{op.describe()}: image_shape, block_shape, strides and dilations must be >= 1, "
                         f"pads >= 0")
    blocks = [(image[i] + pads[i] + pads[i + nd] - dil[i] * (block[i] - 1) - 1) // strides[i] + 1
              for i in range(nd)]
    if min(blocks) < 1:
        raise SofieError(f"{op.describe()}: block_shape {block} does not fit the padded image {image}")
    return pads, strides, dil, blocks


@register
class Col2Im(OpDef):
    name = "graph.col2im"
    onnx = "Col2Im"
    operands = "input image_shape:const block_shape:const"
    attrs = {"dilations": Attr("ints", []), "pads": Attr("ints", []), "strides": Attr("ints", [])}
    doc = ("input [N, C * prod(block), L] -> [N, C, *image]: each column's block added into the image "
           "(the inverse of im2col); image_shape and block_shape are compile-time")

    def sizes(self, op: Operation) -> tuple[list[int], list[int]]:
        image = [int(v) for v in _known_numbers(op, "image_shape", "image_shape").reshape(-1)]
        block = [int(v) for v in _known_numbers(op, "block_shape", "block_shape").reshape(-1)]
        return image, block

    def shape(self, op, x, image_shape, block_shape):
        image, block = self.sizes(op)
        _, _, _, blocks = col2im_geometry(op, image, block)
        k, L = math.prod(block), math.prod(blocks)
        if x.rank != 3 or not isinstance(x.shape[1], int) or x.shape[1] % k or x.shape[2] != L:
            raise SofieError(f"{op.describe()}: input {fmt_shape(x.shape)} does not fit block_shape {block} over "
                             f"image_shape {image} (expected [N, C * {k}, {L}])")
        return x.with_shape((x.shape[0], x.shape[1] // k, *image))

    def reference(self, op, x, image_shape, block_shape):
        image, block = self.sizes(op)
        pads, strides, dil, blocks = col2im_geometry(op, image, block)
        nd = len(image)
        n, ck, _ = x.shape
        c = ck // math.prod(block)
        canvas = [image[i] + pads[i] + pads[i + nd] for i in range(nd)]
        y = np.zeros((n, c, *canvas), np.float64)
        cols = x.reshape(n, c, *block, *blocks).astype(np.float64)
        for taps in np.ndindex(*block):
            where = tuple(slice(t * d, t * d + s * (b - 1) + 1, s) for t, d, s, b in zip(taps, dil, strides, blocks))
            y[(slice(None), slice(None), *where)] += cols[(slice(None), slice(None), *taps)]
        y = y[(slice(None), slice(None), *(slice(pads[i], pads[i] + image[i]) for i in range(nd)))]
        return y.astype(x.dtype)


# ---- MaxUnpool -----------------------------------------------------------------------------

@register
class MaxUnpool(OpDef):
    name = "graph.max_unpool"
    onnx = "MaxUnpool"
    operands = "X I output_shape?:const"
    attrs = {"kernel_shape": Attr("ints"), "pads": Attr("ints", []), "strides": Attr("ints", [])}
    doc = ("Y = zeros, then Y.flat[I[k]] = X.flat[k] (I from MaxPool's Indices, storage_order 0); "
           "output_shape, when given, is compile-time")

    def geometry(self, op: Operation, shape: tuple[Dim, ...]) -> tuple[list[int], list[int]]:
        """(the unpooled spatial dims I indexes, the output's spatial dims): output_shape, when
        given, pads the unpooled image at the end (as the ONNX reference)."""
        k = list(op.attr("kernel_shape"))
        nd = len(k)
        pads = list(op.attr("pads")) or [0] * (2 * nd)
        strides = list(op.attr("strides")) or [1] * nd
        if nd != len(shape) - 2 or len(pads) != 2 * nd or len(strides) != nd:
            raise SofieError(f"{op.describe()}: kernel_shape {k}, pads {pads} and strides {strides} do not match "
                             f"X {fmt_shape(shape)}")
        if any(not isinstance(d, int) for d in shape[2:]):
            raise SofieError(f"{op.describe()}: the spatial dims of X {fmt_shape(shape)} must be static")
        inferred = [(shape[2 + i] - 1) * strides[i] - pads[i] - pads[i + nd] + k[i] for i in range(nd)]
        if min(inferred) < 1:
            raise SofieError(f"{op.describe()}: the unpooled dims {inferred} must be >= 1")
        if op.operand("output_shape") is None:
            return inferred, inferred
        given = [int(v) for v in _known_numbers(op, "output_shape", "output_shape").reshape(-1)]
        if len(given) != len(shape) or any(g < i for g, i in zip(given[2:], inferred)):
            raise SofieError(f"{op.describe()}: output_shape {given} must have X's rank {len(shape)} and spatial "
                             f"dims >= the unpooled {inferred}")
        return inferred, given[2:]

    def shape(self, op, x, i, output_shape):
        if i.dtype != "i64" or i.shape != x.shape:
            raise SofieError(f"{op.describe()}: I is {i.dtype} {fmt_shape(i.shape)}, expected i64 {fmt_shape(x.shape)}")
        return x.with_shape((*x.shape[:2], *self.geometry(op, x.shape)[1]))

    def reference(self, op, x, i, output_shape):
        inferred, out = self.geometry(op, x.shape)
        y = np.zeros((*x.shape[:2], *inferred), x.dtype)
        flat = y.reshape(-1)
        if np.any((i < 0) | (i >= flat.size)):
            raise SofieError(f"{op.describe()}: an index of I is outside the unpooled tensor ({flat.size} elements)")
        flat[i.reshape(-1)] = x.reshape(-1)
        return np.pad(y, [(0, 0), (0, 0)] + [(0, o - n) for o, n in zip(out, inferred)])


# ---- RoiAlign ------------------------------------------------------------------------------

@register
class RoiAlign(OpDef):
    name = "graph.roi_align"
    onnx = "RoiAlign"
    operands = "X rois batch_indices"
    attrs = {"coordinate_transformation_mode": Attr("str", "half_pixel"), "mode": Attr("str", "avg"),
             "output_height": Attr("int", 1), "output_width": Attr("int", 1),
             "sampling_ratio": Attr("int", 0), "spatial_scale": Attr("float", 1.0)}
    doc = ("X [N, C, H, W], rois [R, 4] (x1, y1, x2, y2), batch_indices [R] -> [R, C, output_height, "
           "output_width]: each bin the avg (max) of bilinear samples; opset 10's default transform "
           "(output_half_pixel) imports explicitly")

    def shape(self, op, x, rois, batch_indices):
        where = op.describe()
        if op.attr("mode") not in ("avg", "max"):
            raise SofieError(f"{where}: mode '{op.attr('mode')}' is not one of avg, max")
        if op.attr("coordinate_transformation_mode") not in ("half_pixel", "output_half_pixel"):
            raise SofieError(f"{where}: coordinate_transformation_mode "
                             f"'{op.attr('coordinate_transformation_mode')}' is not one of half_pixel, "
                             f"output_half_pixel")
        if min(op.attr("output_height"), op.attr("output_width")) < 1 or op.attr("sampling_ratio") < 0:
            raise SofieError(f"{where}: output_height and output_width must be >= 1, sampling_ratio >= 0")
        if x.rank != 4 or rois.rank != 2 or rois.shape[1] != 4 or batch_indices.rank != 1 \
                or batch_indices.shape[0] != rois.shape[0]:
            raise SofieError(f"{where}: X {fmt_shape(x.shape)}, rois {fmt_shape(rois.shape)} and batch_indices "
                             f"{fmt_shape(batch_indices.shape)} do not fit (expected [N, C, H, W], [R, 4], [R])")
        if rois.dtype != x.dtype or batch_indices.dtype != "i64":
            raise SofieError(f"{where}: rois is {rois.dtype} and batch_indices {batch_indices.dtype}, expected "
                             f"{x.dtype} (X's type) and i64")
        return x.with_shape((rois.shape[0], x.shape[1], op.attr("output_height"), op.attr("output_width")))


# ---- DeformConv ----------------------------------------------------------------------------

@register
class DeformConv(OpDef):
    name = "graph.deform_conv"
    onnx = "DeformConv"
    operands = "X W offset B? mask?"
    attrs = {"dilations": Attr("ints", []), "group": Attr("int", 1), "kernel_shape": Attr("ints", []),
             "offset_group": Attr("int", 1), "pads": Attr("ints", []), "strides": Attr("ints", [])}
    doc = ("2-D deformable convolution: each tap reads X bilinearly at its position plus its offset "
           "(zero outside), scaled by mask; offset [N, offset_group * kH * kW * 2, OH, OW] (y, x per tap)")

    def geometry(self, op: Operation) -> tuple[list[int], list[int], list[int], list[int]]:
        """(pads [top, left, bottom, right], strides, dilations, [OH, OW])."""
        x, w = op.X.type, op.W.type
        k = list(op.attr("kernel_shape")) or list(w.shape[2:])
        pads = list(op.attr("pads")) or [0] * 4
        strides = list(op.attr("strides")) or [1, 1]
        dil = list(op.attr("dilations")) or [1, 1]
        if len(k) != 2 or len(pads) != 4 or len(strides) != 2 or len(dil) != 2:
            raise SofieError(f"{op.describe()}: sofie supports 2-D DeformConv only (kernel_shape {k}, pads "
                             f"{pads}, strides {strides}, dilations {dil})")
        if any(not isinstance(d, int) for d in x.shape[2:]):
            raise SofieError(f"{op.describe()}: the spatial dims of X {fmt_shape(x.shape)} must be static")
        out = [(x.shape[2 + i] + pads[i] + pads[i + 2] - dil[i] * (k[i] - 1) - 1) // strides[i] + 1
               for i in range(2)]
        if min(out) < 1 or min(strides) < 1 or min(dil) < 1:
            raise SofieError(f"{op.describe()}: output dims {out}, strides and dilations must be >= 1")
        return pads, strides, dil, out

    def shape(self, op, x, w, offset, b, mask):
        where = op.describe()
        if x.rank != 4 or w.rank != 4 or not w.is_static:
            raise SofieError(f"{where}: sofie supports 2-D DeformConv only: X {fmt_shape(x.shape)} and W "
                             f"{fmt_shape(w.shape)} must be rank 4, W static")
        g, og = op.attr("group"), op.attr("offset_group")
        c, m = x.shape[1], w.shape[0]
        if g < 1 or og < 1 or not isinstance(c, int) or w.shape[1] * g != c or m % g or c % og:
            raise SofieError(f"{where}: X has {c} channels; W {fmt_shape(w.shape)}, group {g} and offset_group "
                             f"{og} do not agree")
        _, _, _, out = self.geometry(op)
        taps = w.shape[2] * w.shape[3]
        if offset.shape[0] != x.shape[0] or (mask is not None and mask.shape[0] != x.shape[0]):
            raise SofieError(f"{where}: X, offset and mask must have one batch size, got {x.shape[0]}, "
                             f"{offset.shape[0]} and {mask.shape[0] if mask is not None else '-'}")
        if offset.shape[1:] != (og * taps * 2, *out):
            raise SofieError(f"{where}: offset {fmt_shape(offset.shape)}, expected [N, {og * taps * 2}, "
                             f"{out[0]}, {out[1]}]")
        if mask is not None and mask.shape[1:] != (og * taps, *out):
            raise SofieError(f"{where}: mask {fmt_shape(mask.shape)}, expected [N, {og * taps}, {out[0]}, {out[1]}]")
        if b is not None and b.shape != (m,):
            raise SofieError(f"{where}: B {fmt_shape(b.shape)}, expected [{m}]")
        if {t.dtype for t in (x, w, offset, b, mask) if t is not None} != {x.dtype}:
            raise SofieError(f"{where}: X, W, offset, B and mask must have one element type")
        return x.with_shape((x.shape[0], m, *out))
