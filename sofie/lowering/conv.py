"""Convolution and pooling: the kernel each Conv gets, and the scratch that kernel needs.

A 2-D 3x3 or 5x5 stride-1 conv with enough channels goes to Winograd F(m x m, r x r) with
weights transformed here, at compile time (sofie.lowering.winograd); every other 1-D or 2-D
conv to im2col + GEMM in bands of output rows (a 1-D conv is a 2-D one of height 1; a
depthwise one runs a direct kernel), a 3-D conv to im2col + GEMM in bands of output planes.
ConvTranspose is GEMM + col2im.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from sofie.ir.core import Operation, is_constant
from sofie.ir.dialects.graph.nn import (
    AveragePool,
    Conv,
    ConvTranspose,
    GlobalAveragePool,
    GlobalLpPool,
    GlobalMaxPool,
    LpPool,
    MaxPool,
)
from sofie.ir.dialects.low import direct_scratch_floats
from sofie.ir.registry import lookup
from sofie.lowering.context import LoweringContext, refuse, rule
from sofie.lowering.epilogue import epilogue
from sofie.lowering.gemm_pack import packed_a_columns
from sofie.lowering.winograd import POINTS, winograd_weights

# Winograd (sofie.lowering.winograd): the scratch budget gives the n*n GEMMs at least 64 columns
# up to 512 + 512 channels with 4x4 input tiles. Below WINOGRAD_MIN_CHANNELS input or output
# channels im2col + GEMM is as fast (measured with F(2x2, 3x3): C = M = 8 breaks even, 16 takes
# 0.8x its time).
WINOGRAD_MIN_CHANNELS = 16
WINOGRAD_SCRATCH_BYTES = 4 << 20  # 1 to 8 MB: within noise for conv14's and ResNet's shapes
# Fewest tiles (GEMM columns) of the batch for F(m x m, .): measured at batch 1 on ResNet's 3x3
# convs (C = M) against im2col + GEMM, OpenBLAS and the built-in GEMM alike, time / im2col's:
#   C=64 56x56: F(2,3) 0.55, F(4,3) 0.45;  C=128 28x28: 0.56, 0.45 (49 tiles of 4x4);
#   C=256 14x14: 0.6, 0.65 (16 tiles of 4x4);  C=512 7x7: 0.9 (16 tiles of 2x2), 1.7-1.9.
# conv14's 5x5, C=128 100x100 (625 tiles of 4x4): F(2,5) 0.44-0.48, F(4,5) 0.22-0.24.
# In ResNet-18 at batch 1 (profile, OpenBLAS) the 7x7 layers' F(2,3) runs at im2col's rate per
# FLOP: both are held by the GEMM's packing of 512 x 512 weights for 16 or 49 columns.
WINOGRAD_MIN_TILES = {4: 48, 2: 16}


class WinogradPlan(NamedTuple):
    """F(m x m, r x r) on blocks of `tiles` output tiles."""
    m: int
    r: int
    tiles: int

# im2col bands: at least IM2COL_MIN_COLUMNS GEMM columns, more while the band fits this
# scratch (cache-resident). 64 columns left ResNet-50's 3x3 s2 convs GEMMs of 84 and 70
# columns (a 64-wide tile and a narrow one) that re-read the weights once per band: on an Intel
# Xeon (2 MB L2) whole convs at 140 columns took 0.87 (128 channels, 56 -> 28) and 0.83 (256,
# 28 -> 14) of the time, though the band then outgrows half of a 1 MB L2.
IM2COL_BAND_FLOATS = 64 * 1024
IM2COL_MIN_COLUMNS = 128


def geometry_2d(op: Operation) -> tuple[list[int], list[int], list[int], list[int], list[int]]:
    """(pads, strides, dilations, output dims, kernel) of a 1-D or 2-D conv as 2-D (a 1-D conv
    is a 2-D one of height 1)."""
    pads, strides, dil, out = op.opdef.geometry(op)
    kernel = list(op.W.type.shape[2:])
    if len(out) == 1:
        return [0, pads[0], 0, pads[1]], [1, *strides], [1, *dil], [1, *out], [1, *kernel]
    return pads, strides, dil, out, kernel


def is_pointwise(op: Operation) -> bool:
    """A 1x1, stride-1, unpadded conv: its input already is the im2col matrix."""
    pads, strides, _, _, kernel = geometry_2d(op)
    return kernel == [1, 1] and not any(pads) and strides == [1, 1]


def tile_rows(op: Operation) -> int:
    """Output rows per im2col band: at least IM2COL_MIN_COLUMNS GEMM columns when the image has
    them, more while the band fits IM2COL_BAND_FLOATS (cache-resident, batch-independent)."""
    _, _, _, (oh, ow), (kh, kw) = geometry_2d(op)
    k = op.W.type.shape[1] * kh * kw
    rows = min(oh, -(-IM2COL_MIN_COLUMNS // ow))
    return max(1, rows, min(oh, IM2COL_BAND_FLOATS // (k * ow)))


def tile_planes(op: Operation) -> int:
    """Output depth planes per band of a 3-D conv, by the same rule as tile_rows."""
    w = op.W.type
    _, _, _, (od, oh, ow) = op.opdef.geometry(op)
    k = w.shape[1] * w.shape[2] * w.shape[3] * w.shape[4]
    plane = oh * ow
    return max(1, min(od, -(-IM2COL_MIN_COLUMNS // plane)), min(od, IM2COL_BAND_FLOATS // (k * plane)))


def winograd_output_tile(r: int, batch: int, oh: int, ow: int) -> int:
    """The m of F(m x m, r x r) for an r x r conv on `batch` oh x ow outputs (a symbolic batch
    counts as 1); 0 for im2col + GEMM. The n*n GEMMs run on as many columns as the batch has
    tiles: below WINOGRAD_MIN_TILES[m] columns their weight packing and the transforms cost
    more than the multiplications saved (see the thresholds)."""
    for m in (4, 2):
        if (m, r) in POINTS and batch * -(-oh // m) * -(-ow // m) >= WINOGRAD_MIN_TILES[m]:
            return m
    return 0


def winograd_plan(op: Operation) -> WinogradPlan | None:
    """Winograd for square 3x3 or 5x5, stride-1, dilation-1, group-1 float32 convs with constant
    weights and at least WINOGRAD_MIN_CHANNELS input and output channels, the F(m x m, r x r)
    `winograd_output_tile` picks; None for im2col + GEMM. The block (tiles of the whole batch)
    keeps the V [n*n][C][T] + M [n*n][M][T] scratch within WINOGRAD_SCRATCH_BYTES."""
    x, w = op.X, op.W
    if x.type.rank != 4:
        return None
    _, strides, dil, (oh, ow) = op.opdef.geometry(op)
    m_out, c = w.type.shape[:2]
    r = w.type.shape[2]
    if (w.type.shape[2:] not in ((3, 3), (5, 5)) or strides != [1, 1] or dil != [1, 1] or op.group != 1
            or w.type.dtype != "f32" or not is_constant(w) or op.exact
            or c < WINOGRAD_MIN_CHANNELS or m_out < WINOGRAD_MIN_CHANNELS):
        return None
    batch = x.type.shape[0] if isinstance(x.type.shape[0], int) else 1
    m = winograd_output_tile(r, batch, oh, ow)
    if not m:
        return None
    n = m + r - 1
    block = max(32, WINOGRAD_SCRATCH_BYTES // (n * n * (c + m_out) * 4) // 16 * 16)
    if isinstance(x.type.shape[0], int):  # a static batch: no block larger than all its tiles
        block = min(block, x.type.shape[0] * -(-oh // m) * -(-ow // m))
    return WinogradPlan(m, r, block)


def winograd_scratch_bytes(op: Operation, plan: WinogradPlan) -> int:
    """sofie::rt::conv2d_winograd_scratch_floats<m, r>: V[k] and M[k] strides padded to 4 KB + 64 B."""
    w = op.W.type
    n = plan.m + plan.r - 1

    def stride(rows: int) -> int:
        return -(-rows * plan.tiles // 1024) * 1024 + 16
    return n * n * (stride(w.shape[1]) + stride(w.shape[0])) * w.itemsize


def depthwise_scratch_elements(kh: int, kw: int, sh: int, sw: int, oh: int, ow: int) -> int:
    """sofie::rt::conv2d_depthwise_scratch_floats: min(stride, kernel) phase planes per axis of
    (OH + (kH - 1) / sH) rows of pitch OW + (kW - 1) / sW, and the flat output of OH such rows,
    each with 64 + kW elements of slack."""
    slack = 64 + kw
    pitch = ow + (kw - 1) // sw
    planes = min(sh, kh) * min(sw, kw) * ((oh + (kh - 1) // sh) * pitch + slack)
    return planes + oh * pitch + slack


def depthwise_scratch_bytes(op: Operation) -> int:
    """The direct depthwise kernel's scratch; dilated convs run a loop that needs none."""
    _, (sh, sw), dil, (oh, ow), (kh, kw) = geometry_2d(op)
    if dil != [1, 1]:
        return 0
    return depthwise_scratch_elements(kh, kw, sh, sw, oh, ow) * op.W.type.itemsize


# The direct depthwise kernel (sofie_rt/depthwise_small.hxx): on AVX-512 each output row of up
# to 16 columns one register, wider rows in chunks of 16 columns, several output rows per step;
# other builds and shapes run the phase-plane kernel (sofie_rt/depthwise.hxx) through it, so the
# op costs them nothing. It takes every depthwise conv of dilation 1, kW up to 8 and s_w 1 or 2.
# Measured alone on the AVX-512 host (one thread, Relu6 epilogue, median of 41, 3 runs on a
# loaded machine), time / the phase-plane kernel's, rows of up to 16 outputs: 3x3 s1 7x7 C=960
# 0.57-0.78, 14x14 C=384 0.61-0.73, C=576 0.69-1.02; 3x3 s2 14->7 0.53-0.63, 28->14 0.52-0.54;
# 5x5 s1 7x7 C=1152 0.78-0.88, 14x14 0.70-0.82; 5x5 s2 14->7 0.74-0.78, 28->14 0.83-0.91; 16x16
# 0.44-0.64. Wider rows (bench/probes/depthwise_wide.cpp: inputs and outputs rotating out of
# L2, minimum of 9-11 rounds alternating the two kernels, 3 runs on a loaded machine; Relu6 for
# MobileNet's shapes, SiLU for EfficientNet's): 3x3 s1 112x112 C=32 0.59-0.89 (SiLU 0.66-0.69),
# 56x56 C=144 0.79-0.88 (SiLU 0.69-0.76), 28x28 C=192 0.70-0.89; 3x3 s2 112->56 C=96 0.50-0.58
# (SiLU 0.62-0.65), 56->28 C=144 0.59; 5x5 s1 28x28 C=240 0.69-0.70; 5x5 s2 56->28 C=144
# 0.71-0.85. No width measured slower, so no width limit.
_DW_SMALL_MAX_KERNEL = 8  # depthwise_small.hxx's kDwSmallMaxKernel (kW); s_w 1 or 2


def takes_depthwise_small(op: Operation) -> bool:
    """A depthwise conv (one input channel per group) of dilation 1 with kW up to 8 and s_w 1 or
    2: the AVX-512 row paths' domain (the others stay conv2d_depthwise, which the op would run
    anyway)."""
    w = op.W.type
    if w.shape[1] != 1 or op.group <= 1 or op.X.type.rank not in (3, 4) or w.dtype not in ("f32", "f64"):
        return False
    _, (_, sw), dil, (_, ow), (_, kw) = geometry_2d(op)
    if not isinstance(ow, int):
        return False
    return dil == [1, 1] and ow >= 1 and 1 <= kw <= _DW_SMALL_MAX_KERNEL and sw <= 2


def depthwise_small_scratch_bytes(op: Operation) -> int:
    """sofie::rt::conv2d_depthwise_small_scratch_floats: the phase-plane kernel's, which the
    builds without AVX-512 run."""
    return depthwise_scratch_bytes(op)


# Convs of few taps per output over wide rows (3-channel stems) run without im2col
# (sofie_rt/conv_direct.hxx). Alone on the AVX-512 host (one thread, bias + ReLU, inputs and
# outputs rotating out of cache), time / im2col + GEMM's: ResNet's 7x7 s2 stem 3 -> 64 at 224
# 0.79-0.81, MobileNet's 3x3 s2 3 -> 32 0.84-0.91, a 3x3 s1 3 -> 16 at 64 0.62, a 5x5 1 -> 2
# at 100 (the conv1 seed model) 0.38. AVX2 builds (a 6 x 16 tile) run up to 32 taps this way,
# wider convs as conv2d: built for AVX2, conv1 0.39, MobileNet's stem 0.86-0.92, 72 taps 0.85-1.08,
# 100 to 147 taps 1.04-1.17 (sofie_rt's kDirectMaxTapsAvx2). DIRECT_MAX_TAPS mirrors kDirectMaxTaps; below
# DIRECT_MIN_COLUMNS output columns a row fills too few of a tile's 64 lanes.
DIRECT_MAX_TAPS = 192
DIRECT_MIN_COLUMNS = 32


def takes_direct(op: Operation) -> bool:
    """A float32 2-D group-1 conv of dilation 1 with at most DIRECT_MAX_TAPS taps (C*kH*kW) per
    output, s_w 1 or 2 and output rows of at least DIRECT_MIN_COLUMNS columns; not a pointwise
    one, whose GEMM reads X in place."""
    w = op.W.type
    if (op.group != 1 or w.dtype != "f32" or op.X.type.rank != 4 or not isinstance(op.X.type.shape[1], int)
            or is_pointwise(op)):
        return False
    _, (_, sw), dil, (oh, ow), _ = geometry_2d(op)
    if not (isinstance(oh, int) and isinstance(ow, int)) or oh < 1:
        return False
    taps = w.shape[1] * w.shape[2] * w.shape[3]
    return dil == [1, 1] and sw <= 2 and taps <= DIRECT_MAX_TAPS and ow >= DIRECT_MIN_COLUMNS


def direct_scratch_bytes(op: Operation) -> int:
    _, (sh, sw), _, (oh, ow), (kh, kw) = geometry_2d(op)
    return direct_scratch_floats(op.W.type.shape[1], kh, kw, sh, sw, oh, ow) * op.W.type.itemsize


# GEMMs of few columns go to sofie_rt/gemm_small_n.hxx (vectorized over output channels, weights
# packed at compile time). Measured alone against the built-in GEMM on the AVX-512 host (one
# thread, bias + ReLU, weights out of cache as in a model's inference, 64 copies round robin),
# time / its time, M x N x K: 49 columns 960x49x160 0.71, 576x49x96 0.68, 1152x49x192 0.66,
# 160x49x960 0.81, 512x49x2048 0.85, 16 columns 512x16x512 0.72; 196 columns 384x196x64 0.89,
# 576x196x96 0.78, 96x196x576 0.96, 256x196x1024 0.94, but 64x196x384 1.02 and 64x196x576 1.17:
# with few rows the main GEMM's tiles waste nothing either. Once the main GEMM read B in place
# (then packed it in its first row tiles), 196 columns went to it: on the AVX-512 AMD host it
# took 0.91-0.97 of gemm_small_n's time with ReLU, and on an AVX-512 Intel Xeon (bias, B and
# weights out of L2) 384x196x64 0.89, 256x196x1024 0.83, 256x196x2304 0.60 (ResNet-50's
# 3x3 s2 conv to 14x14 in the model: 2.0x ORT's time through gemm_small_n). At 49 columns
# gemm_small_n stays: on Intel 2048x49x1024 0.90, 320x49x1152 0.95, but 512x49x4608 1.12.
SMALL_N_RULES = ((64, 1),)  # (most GEMM columns, fewest output channels) pairs


def takes_small_n(op: Operation) -> bool:
    """A float32 group-1 conv (1-D or 2-D) with constant weights whose GEMMs per image (a band of
    tile_rows output rows, the whole image for a pointwise conv) fit SMALL_N_RULES."""
    w = op.W.type
    if op.group != 1 or w.dtype != "f32" or not is_constant(op.W) or op.X.type.rank not in (3, 4):
        return False
    _, _, _, (oh, ow), _ = geometry_2d(op)
    if not (isinstance(oh, int) and isinstance(ow, int)):
        return False
    cols = oh * ow if is_pointwise(op) else min(oh, tile_rows(op)) * ow
    return any(cols <= most and w.shape[0] >= fewest for most, fewest in SMALL_N_RULES)


# Winograd's GEMMs take gemm_small_n from 256 input channels (K): ResNet-18 at batch 1, its 3x3
# convs on 14x14 (49 tiles of 2x2, C = 256) ran in 0.92-0.95 of the main GEMM's time (profile).
WINOGRAD_SMALL_N_MIN_CHANNELS = 256


def winograd_small_n_block(op: Operation, plan: WinogradPlan) -> int:
    """The tile block for Winograd GEMMs run by gemm_small_n, 0 for the main GEMM: when a block
    has at most SMALL_N_RULES' first column count and WINOGRAD_SMALL_N_MIN_CHANNELS input
    channels (a symbolic batch counts as 1, its blocks then capped at that count)."""
    most = SMALL_N_RULES[0][0]
    x = op.X.type
    _, _, _, (oh, ow) = op.opdef.geometry(op)
    batch = x.shape[0] if isinstance(x.shape[0], int) else 1
    cols = min(plan.tiles, batch * -(-oh // plan.m) * -(-ow // plan.m))
    return min(plan.tiles, most) if cols <= most and op.W.type.shape[1] >= WINOGRAD_SMALL_N_MIN_CHANNELS else 0


def im2col_scratch_bytes(op: Operation) -> int:
    w = op.W.type
    _, _, _, (_, ow), (kh, kw) = geometry_2d(op)
    if w.shape[1] == 1 and op.group > 1:
        return depthwise_scratch_bytes(op)  # a direct kernel (sofie::rt::conv2d_depthwise)
    if is_pointwise(op):
        return 0
    return (w.shape[1] * kh * kw) * tile_rows(op) * ow * w.itemsize


def conv3d_scratch_bytes(op: Operation) -> int:
    w = op.W.type
    _, _, _, (_, oh, ow) = op.opdef.geometry(op)
    return w.shape[1] * w.shape[2] * w.shape[3] * w.shape[4] * tile_planes(op) * oh * ow * w.itemsize


@rule(Conv)
def _conv(ctx: LoweringContext, op: Operation) -> None:
    pads, strides, dilations, _ = op.opdef.geometry(op)
    plan = winograd_plan(op)
    if plan:
        u = winograd_weights(ctx.weight_data(op.W), plan.m)
        small_n = winograd_small_n_block(op, plan)
        if small_n:
            plan = plan._replace(tiles=small_n)
            u = np.stack([packed_a_columns(uk) for uk in u])
        u = ctx.constant(u, f"{op.W.owner.ref}.winograd{plan.m}x{plan.r}")
        scratch = ctx.scratch(op, winograd_scratch_bytes(op, plan))
        ctx.create("low.conv2d_winograd", [ctx.value(op.X), u, ctx.value(op.B), ctx.value(op.Z), scratch,
                                           ctx.dest(op)],
                   {"pads": pads, "output_tile": plan.m, "tile_block": plan.tiles, "small_n": int(bool(small_n)),
                    **epilogue(op)}, op)
        return
    if op.X.type.rank == 5:
        scratch = ctx.scratch(op, conv3d_scratch_bytes(op), op.X.type.dtype)
        ctx.create("low.conv3d", [ctx.value(op.X), ctx.value(op.W), ctx.value(op.B), ctx.value(op.Z), scratch,
                                  ctx.dest(op)],
                   {"pads": pads, "strides": strides, "dilations": dilations, "group": op.group,
                    "tile_planes": tile_planes(op), **epilogue(op)}, op)
        return
    pads, strides, dilations, _, kernel = geometry_2d(op)
    if takes_depthwise_small(op):
        scratch = ctx.scratch(op, depthwise_small_scratch_bytes(op), op.X.type.dtype)
        ctx.create("low.conv2d_depthwise_small", [ctx.value(op.X), ctx.value(op.W), ctx.value(op.B),
                                                  ctx.value(op.Z), scratch, ctx.dest(op)],
                   {"pads": pads, "strides": strides, **epilogue(op)}, op)
        return
    if takes_direct(op):
        scratch = ctx.scratch(op, direct_scratch_bytes(op), op.X.type.dtype)
        ctx.create("low.conv2d_direct", [ctx.value(op.X), ctx.value(op.W), ctx.value(op.B), ctx.value(op.Z),
                                         scratch, ctx.dest(op)],
                   {"pads": pads, "strides": strides, **epilogue(op)}, op)
        return
    scratch = ctx.scratch(op, im2col_scratch_bytes(op), op.X.type.dtype)
    if takes_small_n(op):
        w = ctx.weight_data(op.W)
        packed = ctx.constant(packed_a_columns(w.reshape(w.shape[0], -1)), f"{op.W.owner.ref}.small_n")
        ctx.create("low.conv2d_small_n", [ctx.value(op.X), packed, ctx.value(op.B), ctx.value(op.Z), scratch,
                                          ctx.dest(op)],
                   {"pads": pads, "strides": strides, "dilations": dilations, "kernel_shape": kernel,
                    "tile_rows": tile_rows(op), **epilogue(op)}, op)
        return
    ctx.create("low.conv2d", [ctx.value(op.X), ctx.value(op.W), ctx.value(op.B), ctx.value(op.Z), scratch,
                              ctx.dest(op)],
               {"pads": pads, "strides": strides, "dilations": dilations, "group": op.group,
                "kernel_shape": kernel, "tile_rows": tile_rows(op), **epilogue(op)}, op)


@rule(ConvTranspose)
def _conv_transpose(ctx: LoweringContext, op: Operation) -> None:
    pads, strides, dilations, _ = op.opdef.geometry(op)
    w = op.W.type
    # the GEMM's product: [M/group * prod(kernel), prod(input spatial dims)]
    spatial = math.prod(op.X.type.shape[2:])
    scratch = ctx.scratch(op, math.prod(w.shape[1:]) * spatial * w.itemsize, w.dtype)
    ctx.create("low.conv_transpose", [ctx.value(op.X), ctx.value(op.W), ctx.value(op.B), scratch, ctx.dest(op)],
               {"pads": pads, "strides": strides, "dilations": dilations, "group": op.group}, op)


@rule(MaxPool, AveragePool, LpPool)
def _pool(ctx: LoweringContext, op: Operation) -> None:
    pads, strides, dilations, _ = op.opdef.geometry(op)
    attrs = {"kernel_shape": list(op.kernel_shape), "pads": pads, "strides": strides, "dilations": dilations}
    if op.isa(MaxPool):
        dtypes = lookup("low.max_pool").dtypes
        if op.X.type.dtype not in dtypes:
            refuse(op, op.X.type.dtype, dtypes)
        indices = ctx.dest(op, 1) if op.indices else None
        ctx.create("low.max_pool", [ctx.value(op.X), indices, ctx.dest(op)],
                   {**attrs, "storage_order": op.storage_order}, op)
        return
    if op.isa(AveragePool):
        attrs.update(kind="avg", count_include_pad=op.count_include_pad)
    else:
        attrs.update(kind="lp", p=op.p)
    ctx.create("low.pool", [ctx.value(op.X), ctx.dest(op)], attrs, op)


@rule(GlobalAveragePool, GlobalMaxPool, GlobalLpPool)
def _global_pool(ctx: LoweringContext, op: Operation) -> None:
    attrs = {"kind": "lp", "p": op.p} if op.isa(GlobalLpPool) else {"kind": "max" if op.isa(GlobalMaxPool) else "avg"}
    ctx.create("low.global_pool", [ctx.value(op.X), ctx.dest(op)], attrs, op)
