"""ONNX's quantization ops as graph ops (adapters of `sofie.frontends.onnx`).

QuantizeLinear / DequantizeLinear become `graph.quantize_linear` / `graph.dequantize_linear`
with their scale and zero point made to broadcast against x: a per-axis vector is reshaped
to [C, 1, ..], a blocked one gathered along its axis to x's shape (`block_size` need not
divide the axis).

The integer matmuls and convolutions compute on zero-point-shifted operands in double, which
is exact for 8-bit integers (each product is below 2^16, a sum of them stays far below 2^53
whatever the order, with or without FMA) and reaches BLAS and the float conv kernels instead
of a scalar integer loop. A matmul whose sums provably stay below 2^24 (from the constant
weight's data, or the types) runs in float instead, as exactly and twice as fast; so does a
conv, marked `exact` so that it never takes Winograd, whose transforms round.

  MatMulInteger: cast_i32(matmul(f64(a) - f64(a_zp), f64(b) - f64(b_zp)))
  ConvInteger:   cast_i32(conv(f64(x) - f64(x_zp), f64(w) - f64(w_zp)))
  QLinearMatMul / QLinearConv: the same accumulator (plus the int32 bias) times
  a_scale * b_scale / y_scale in double, quantized with scale 1 and y's zero point, as
  onnx's reference computes (int32 times float32 is double in numpy).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import onnx
from onnx import helper

from sofie.errors import SofieError
from sofie.ir.core import Value
from sofie.ir.dialects.graph.quantize import FLOAT_QUANTIZED, QUANTIZED
from sofie.ir.types import dtype_name

if TYPE_CHECKING:
    from sofie.frontends.onnx import _Importer

EIGHT_BIT = ("u8", "i8")


def _onnx_type(imp: _Importer, code: Any, what: str, where: str) -> str:
    """sofie's element type for an ONNX type code, or a clear refusal."""
    try:
        return dtype_name(helper.tensor_dtype_to_np_dtype(int(code)))
    except (KeyError, SofieError, TypeError, ValueError):
        try:
            name = onnx.TensorProto.DataType.Name(int(code))
        except (TypeError, ValueError):
            name = str(code)
        raise SofieError(f"{where}: {what} has unsupported element type {name}") from None


def _const(imp: _Importer, data: np.ndarray, loc: str, suffix: str) -> Value:
    return imp.b.weight(np.asarray(data), f"{loc}/{suffix}")


def _cast(imp: _Importer, v: Value, to: str, loc: str, where: str) -> Value:
    return v if v.type.dtype == to else imp.create("graph.cast", [v], {"to": to}, loc, where)


def _broadcastable(imp: _Importer, v: Value | None, x: Value, axis: int, block: int, what: str,
                   loc: str, where: str) -> Value | None:
    """A scale or zero point shaped to broadcast against x as ONNX means it: one value, one
    per index of `axis`, or one per block of `block` indices of `axis`."""
    if v is None:
        return None
    shape, xs = v.type.shape, x.type.shape
    if v.type.is_static and v.type.static_size() == 1 and not block:
        if v.type.rank == 0:
            return v
        return imp.create("graph.reshape", [v, _const(imp, np.zeros(0, np.int64), loc, f"{what}_scalar")],
                          {}, loc, where)
    if not -len(xs) <= axis < len(xs):
        raise SofieError(f"{where}: axis {axis} is out of range for x of rank {len(xs)}")
    axis %= len(xs)
    if not block:
        if len(shape) != 1 or shape[0] != xs[axis]:
            raise SofieError(f"{where}: {what} has shape {list(shape)}, expected one value or [{xs[axis]}] "
                             f"(x axis {axis})")
        dims = np.array([xs[axis]] + [1] * (len(xs) - 1 - axis), np.int64)
        return imp.create("graph.reshape", [v, _const(imp, dims, loc, f"{what}_shape")], {}, loc, where)
    if block < 0:
        raise SofieError(f"{where}: block_size must be positive, got {block}")
    d = xs[axis]
    if not isinstance(d, int):
        raise SofieError(f"{where}: blocked quantization along axis {axis} of symbolic size {d} is not supported")
    want = xs[:axis] + (-(-d // block),) + xs[axis + 1:]
    if tuple(shape) != want:
        raise SofieError(f"{where}: {what} has shape {list(shape)}, expected {list(want)} for blocks of "
                         f"{block} along axis {axis}")
    index = _const(imp, np.arange(d, dtype=np.int64) // block, loc, f"{what}_blocks")
    return imp.create("graph.gather", [v, index], {"axis": axis}, loc, where)


def _operands(inputs: list, n: int) -> list:
    return list(inputs) + [None] * (n - len(inputs))


def quantize_linear(imp: _Importer, inputs, attrs, loc, where):
    x, scale, zp = _operands(inputs, 3)
    to = zp.type.dtype if zp is not None else "u8"
    if zp is None and attrs.get("output_dtype"):
        to = _onnx_type(imp, attrs["output_dtype"], "output_dtype", where)
    if to not in QUANTIZED and to not in FLOAT_QUANTIZED:
        raise SofieError(f"{where}: the result has unsupported element type {to} "
                         f"(supported: {', '.join((*QUANTIZED, *FLOAT_QUANTIZED))})")
    if attrs.get("precision"):
        precision = _onnx_type(imp, attrs["precision"], "precision", where)
        if precision not in ("f32", "f64"):
            raise SofieError(f"{where}: precision {precision} is not supported (float or double)")
        x, scale = _cast(imp, x, precision, loc, where), _cast(imp, scale, precision, loc, where)
    axis, block = int(attrs.get("axis", 1)), int(attrs.get("block_size", 0))
    operands = [x] + [_broadcastable(imp, v, x, axis, block, what, loc, where)
                      for v, what in ((scale, "scale"), (zp, "zero_point"))]
    # `saturate` concerns float8 results only
    return imp.create("graph.quantize_linear", operands, {"to": to, "saturate": int(attrs.get("saturate", 1))},
                      loc, where)


def dequantize_linear(imp: _Importer, inputs, attrs, loc, where):
    x, scale, zp = _operands(inputs, 3)
    to = scale.type.dtype
    if attrs.get("output_dtype"):
        to = _onnx_type(imp, attrs["output_dtype"], "output_dtype", where)
    axis, block = int(attrs.get("axis", 1)), int(attrs.get("block_size", 0))
    operands = [x] + [_broadcastable(imp, v, x, axis, block, what, loc, where)
                      for v, what in ((scale, "scale"), (zp, "zero_point"))]
    return imp.create("graph.dequantize_linear", operands, {"to": to}, loc, where)


def _check_eight_bit(v: Value | None, what: str, where: str) -> None:
    if v is not None and v.type.dtype not in EIGHT_BIT:
        raise SofieError(f"{where}: {what} is {v.type.dtype}, expected u8 or i8")


def _shifted(imp: _Importer, v: Value, zp: Value | None, zp_shape: tuple | None, to: str,
             loc: str, where: str) -> Value:
    """to(v) - to(zp), zp reshaped to `zp_shape` first (a per-row / per-channel vector)."""
    out = _cast(imp, v, to, loc, where)
    if zp is None:
        return out
    if zp_shape is not None:
        zp = imp.create("graph.reshape", [zp, _const(imp, np.array(zp_shape, np.int64), loc, "zp_shape")],
                        {}, loc, where)
    return imp.create("graph.sub", [out, _cast(imp, zp, to, loc, where)], {}, loc, where)


F32_EXACT = 2 ** 24  # every integer of magnitude up to this is a float


def _shifted_range(imp: _Importer, v: Value, zp: Value | None) -> int:
    """The largest |v - zp| v's type and zp allow."""
    lo, hi = (0, 255) if v.type.dtype == "u8" else (-128, 127)
    if zp is None:
        return max(-lo, hi)
    z = imp.b.func.module.constant_value(zp)
    if z is None:
        return hi - lo
    return int(max(hi - int(z.min()), int(z.max()) - lo))


def _l1(imp: _Importer, v: Value, zp: np.ndarray | None, k_axis: int, k: int, largest: int) -> int:
    """The largest sum over the K axis of |v - zp|: from the data when v is a constant (zp
    shaped to broadcast against it), else K times the largest |v - zp|."""
    data = imp.b.func.module.constant_value(v)
    if data is None:
        return k * largest
    shifted = np.abs(data.astype(np.int64) - (0 if zp is None else zp.astype(np.int64)))
    return int(shifted.sum(axis=k_axis).max()) if shifted.size else 0


def _matmul_type(imp: _Importer, a: Value, b: Value, azp: Value | None, bzp: Value | None,
                 row: tuple | None) -> str:
    """f32 when every product and partial sum of (a - a_zp) @ (b - b_zp) is an integer below
    2^24 in magnitude, whatever the order (so float32 BLAS computes it exactly), else f64. The
    bound is max|a'| times the largest column sum of |b'| (or the other way round), from the
    data of a constant operand, else from the types."""
    k = a.type.shape[-1]
    if not isinstance(k, int):
        return "f64"
    module = imp.b.func.module
    za = None if azp is None else module.constant_value(azp)
    zb = None if bzp is None else module.constant_value(bzp)
    if (azp is not None and za is None) or (bzp is not None and zb is None):
        return "f64"
    if za is not None and row is not None:
        za = za.reshape(row)
    bound = min(_shifted_range(imp, a, azp) * _l1(imp, b, zb, -2 if b.type.rank > 1 else -1, k,
                                                   _shifted_range(imp, b, bzp)),
                _shifted_range(imp, b, bzp) * _l1(imp, a, za, -1, k, _shifted_range(imp, a, azp)))
    return "f32" if bound <= F32_EXACT else "f64"


def _matmul_float(imp: _Importer, a: Value, b: Value, azp: Value | None, bzp: Value | None,
                  loc: str, where: str) -> Value:
    """(a - a_zp) @ (b - b_zp) exactly, in float when the bound allows, else in double. A
    vector a_zp is one per row of a."""
    for v, what in ((a, "A"), (b, "B"), (azp, "a_zero_point"), (bzp, "b_zero_point")):
        _check_eight_bit(v, what, where)
    row = None
    if azp is not None and azp.type.rank == 1 and azp.type.shape[0] != 1:
        row = (azp.type.shape[0], 1)  # [M] against [.., M, K]
    t = _matmul_type(imp, a, b, azp, bzp, row)
    af = _shifted(imp, a, azp, row, t, loc, where)
    bf = _shifted(imp, b, bzp, None, t, loc, where)  # [N] broadcasts against [.., K, N] as it is
    return imp.create("graph.matmul", [af, bf], {}, loc, where)


def matmul_integer(imp: _Importer, inputs, attrs, loc, where):
    a, b, azp, bzp = _operands(inputs, 4)
    return _cast(imp, _matmul_float(imp, a, b, azp, bzp, loc, where), "i32", loc, where)


def _conv_type(imp: _Importer, x: Value, w: Value, xzp: Value | None, wzp: Value | None,
               bias: Value | None, per_channel: tuple | None) -> str:
    """f32 when every partial sum of conv(x - x_zp, w - w_zp) + bias is an integer below 2^24
    whatever the order: max|x'| times the largest sum of |w'| over one output channel, plus
    the largest |bias|, from the constant weights and zero points; else f64."""
    module = imp.b.func.module
    wd = module.constant_value(w)
    zw = None if wzp is None else module.constant_value(wzp)
    bd = None if bias is None else module.constant_value(bias)
    if wd is None or (wzp is not None and zw is None) or (bias is not None and bd is None):
        return "f64"
    if xzp is not None and module.constant_value(xzp) is None:
        return "f64"
    shifted = np.abs(wd.astype(np.int64) - (0 if zw is None else zw.astype(np.int64).reshape(per_channel or ())))
    per_output = shifted.reshape(shifted.shape[0], -1).sum(axis=1).max() if shifted.size else 0
    bound = _shifted_range(imp, x, xzp) * int(per_output) + (int(np.abs(bd).max()) if bd is not None and bd.size else 0)
    return "f32" if bound <= F32_EXACT else "f64"


def _conv_float(imp: _Importer, x: Value, w: Value, xzp: Value | None, wzp: Value | None, bias: Value | None,
                attrs: dict, loc: str, where: str) -> Value:
    """conv(x - x_zp, w - w_zp) + bias exactly: in float, with no Winograd, when the bound
    allows, else in double; padding adds zeros after the shift, as padding x with its zero
    point. A vector w_zp is one per output channel."""
    for v, what in ((x, "x"), (w, "w"), (xzp, "x_zero_point"), (wzp, "w_zero_point")):
        _check_eight_bit(v, what, where)
    if xzp is not None and xzp.type.is_static and xzp.type.static_size() != 1:
        raise SofieError(f"{where}: x_zero_point must be one value (per-tensor), got shape {list(xzp.type.shape)}")
    per_channel = None
    if wzp is not None and wzp.type.rank == 1 and wzp.type.shape[0] != 1:
        per_channel = (wzp.type.shape[0],) + (1,) * (w.type.rank - 1)
    t = _conv_type(imp, x, w, xzp, wzp, bias, per_channel)
    if xzp is not None and xzp.type.rank > 0:
        xzp = imp.create("graph.reshape", [xzp, _const(imp, np.zeros(0, np.int64), loc, "x_zp_scalar")],
                         {}, loc, where)
    xf = _shifted(imp, x, xzp, None, t, loc, where)
    wf = _shifted(imp, w, wzp, per_channel, t, loc, where)
    bf = _cast(imp, bias, t, loc, where) if bias is not None else None
    return imp.create("graph.conv", [xf, wf] + ([bf] if bf is not None else []), {**attrs, "exact": 1}, loc, where)


def conv_integer(imp: _Importer, inputs, attrs, loc, where):
    x, w, xzp, wzp = _operands(inputs, 4)
    return _cast(imp, _conv_float(imp, x, w, xzp, wzp, None, attrs, loc, where), "i32", loc, where)


def _requantize(imp: _Importer, acc: Value, multiplier: Value, yzp: Value | None, default: str,
                loc: str, where: str) -> Value:
    """quantize(acc * multiplier, scale 1, y_zp) with acc and the multiplier in double."""
    acc = _cast(imp, acc, "f64", loc, where)
    y = imp.create("graph.mul", [acc, _cast(imp, multiplier, "f64", loc, where)], {}, loc, where)
    one = _const(imp, np.array(1.0, np.float64), loc, "unit_scale")
    to = yzp.type.dtype if yzp is not None else default
    return imp.create("graph.quantize_linear", [y, one] + ([yzp] if yzp is not None else []), {"to": to}, loc, where)


def _multiplier(imp: _Importer, in_scale: Value, w_scale: Value, y_scale: Value, loc: str, where: str) -> Value:
    """in_scale * w_scale / y_scale in the scales' own type (f16 scales round at each step, as
    numpy's half arithmetic)."""
    m = imp.create("graph.mul", [in_scale, w_scale], {}, loc, where)
    return imp.create("graph.div", [m, y_scale], {}, loc, where)


def qlinear_matmul(imp: _Importer, inputs, attrs, loc, where):
    a, a_s, azp, b, b_s, bzp, y_s, yzp = _operands(inputs, 8)
    for s, what in ((a_s, "a_scale"), (y_s, "y_scale"), (yzp, "y_zero_point")):
        if s is not None and (not s.type.is_static or s.type.static_size() != 1):
            raise SofieError(f"{where}: {what} must be one value (per-tensor quantization)")
    n = b.type.shape[-1] if b.type.rank > 1 else 1
    if b_s.type.rank > 1 or b_s.type.static_size() not in (1, n):
        raise SofieError(f"{where}: b_scale has shape {list(b_s.type.shape)}, expected one value or [{n}] "
                         f"(per column of B)")
    acc = _matmul_float(imp, a, b, azp, bzp, loc, where)
    return _requantize(imp, acc, _multiplier(imp, a_s, b_s, y_s, loc, where), yzp, a.type.dtype, loc, where)


def qlinear_conv(imp: _Importer, inputs, attrs, loc, where):
    x, x_s, xzp, w, w_s, wzp, y_s, yzp, bias = _operands(inputs, 9)
    if bias is not None and bias.type.dtype != "i32":
        raise SofieError(f"{where}: B is {bias.type.dtype}, expected i32")
    acc = _conv_float(imp, x, w, xzp, wzp, bias, attrs, loc, where)
    if w_s.type.rank == 1 and w_s.type.shape[0] != 1:  # one per output channel
        dims = np.array((w_s.type.shape[0],) + (1,) * (w.type.rank - 2), np.int64)
        w_s = imp.create("graph.reshape", [w_s, _const(imp, dims, loc, "w_scale_shape")], {}, loc, where)
    return _requantize(imp, acc, _multiplier(imp, x_s, w_s, y_s, loc, where), yzp, x.type.dtype, loc, where)


ADAPTERS = {
    "QuantizeLinear": quantize_linear,
    "DequantizeLinear": dequantize_linear,
    "MatMulInteger": matmul_integer,
    "ConvInteger": conv_integer,
    "QLinearMatMul": qlinear_matmul,
    "QLinearConv": qlinear_conv,
}
