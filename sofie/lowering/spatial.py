"""GridSample, Col2Im, MaxUnpool, RoiAlign and DeformConv: one runtime kernel each
(sofie_rt/spatial.hxx; Col2Im shares ConvTranspose's col2im in conv_nd.hxx)."""

from __future__ import annotations

from sofie.errors import SofieError
from sofie.ir.core import Operation
from sofie.ir.dialects.graph.spatial import Col2Im, DeformConv, GridSample, MaxUnpool, RoiAlign, col2im_geometry
from sofie.ir.types import FLOATS, fmt_shape
from sofie.lowering.context import LoweringContext, refuse, rule


def _spatial_rank(op: Operation, shape: tuple, what: str) -> None:
    if not 1 <= len(shape) - 2 <= 3:
        raise SofieError(f"{op.describe()}: sofie's kernel takes 1 to 3 spatial dims, {what} is {fmt_shape(shape)}")


@rule(GridSample)
def _grid_sample(ctx: LoweringContext, op: Operation) -> None:
    x, grid = op.X.type, op.grid.type
    if x.dtype not in FLOATS:
        refuse(op, x.dtype, FLOATS)
    if grid.dtype != x.dtype:
        raise SofieError(f"{op.describe()}: grid is {grid.dtype} and X {x.dtype}; sofie's kernel needs one type")
    _spatial_rank(op, x.shape, "X")
    ctx.create("low.grid_sample", [ctx.value(op.X), ctx.value(op.grid), ctx.dest(op)],
               {"mode": op.mode, "padding_mode": op.padding_mode, "align_corners": op.align_corners}, op)


@rule(Col2Im)
def _col2im(ctx: LoweringContext, op: Operation) -> None:
    image, block = op.opdef.sizes(op)
    _spatial_rank(op, (0, 0, *image), "image_shape")
    pads, strides, dil, _ = col2im_geometry(op, image, block)
    ctx.create("low.col2im", [ctx.value(op.input), ctx.dest(op)],
               {"block_shape": block, "pads": pads, "strides": strides, "dilations": dil}, op)


@rule(MaxUnpool)
def _max_unpool(ctx: LoweringContext, op: Operation) -> None:
    _spatial_rank(op, op.X.type.shape, "X")
    unpooled, _ = op.opdef.geometry(op, op.X.type.shape)
    ctx.create("low.max_unpool", [ctx.value(op.X), ctx.value(op.I), ctx.dest(op)], {"unpooled": unpooled}, op)


@rule(RoiAlign)
def _roi_align(ctx: LoweringContext, op: Operation) -> None:
    if op.X.type.dtype not in FLOATS:
        refuse(op, op.X.type.dtype, FLOATS)
    ctx.create("low.roi_align", [ctx.value(op.X), ctx.value(op.rois), ctx.value(op.batch_indices), ctx.dest(op)],
               {"mode": op.mode, "half_pixel": int(op.coordinate_transformation_mode == "half_pixel"),
                "sampling_ratio": op.sampling_ratio, "spatial_scale": op.spatial_scale}, op)


@rule(DeformConv)
def _deform_conv(ctx: LoweringContext, op: Operation) -> None:
    pads, strides, dil, out = op.opdef.geometry(op)
    w = op.W.type
    # the sampled columns of one group: [C/group * kH * kW, OH * OW]
    scratch = ctx.scratch(op, w.shape[1] * w.shape[2] * w.shape[3] * out[0] * out[1] * w.itemsize, w.dtype)
    ctx.create("low.deform_conv", [ctx.value(op.X), ctx.value(op.W), ctx.value(op.offset), ctx.value(op.B),
                                   ctx.value(op.mask), scratch, ctx.dest(op)],
               {"pads": pads, "strides": strides, "dilations": dil, "group": op.group,
                "offset_group": op.offset_group}, op)
