"""Linear quantization: float <-> 2/4/8/16-bit integers or float8 / float4 through a scale and
a zero point.

Both ops broadcast their scale and zero point against x as numpy does; the ONNX importer
reshapes a per-axis scale to [C, 1, ..] and gathers a blocked one to x's shape, so the op
itself knows no axis. Each is a scalar body (an `Elementwise`), so it lowers to one loop and
fuses with its neighbours. The bodies follow onnx's reference evaluator:

  quantize:   y = clamp(round_half_even(x / scale) + zero_point, lo, hi)
  dequantize: y = (x - zero_point) * scale

and, into float8 / float4e2m1, y = cast(x / scale) (float8 saturating unless `saturate` is 0,
float4 adding its zero point first); out of them y = x * scale, the zero point unread (the
reference ignores it: ONNX requires it to be 0 for these types).
"""

from __future__ import annotations

from sofie.errors import SofieError
from sofie.ir.core import Operation
from sofie.ir.dialects.graph.elementwise import Elementwise
from sofie.ir.dialects.scalar import Expr, cast_op, parse_body
from sofie.ir.registry import INPLACE, PURE, Attr, register
from sofie.ir.types import FLOAT8, NARROW_INTS, TensorType, int_range

# the integer types a quantized tensor may have, with their ranges (ONNX's)
QUANTIZED = {"u8": (0, 255), "i8": (-128, 127), "u16": (0, 65535), "i16": (-32768, 32767),
             **{t: int_range(t) for t in NARROW_INTS}}
# the float types one may have: x / scale is cast to them (rounded to nearest even)
FLOAT_QUANTIZED = FLOAT8 + ("f4e2m1",)
SCALES = ("f32", "f64", "f16")


def _compute_type(*types: str) -> str:
    """The float type numpy divides / multiplies these in, f16 computing as f32 (as numpy's
    half arithmetic does before rounding back)."""
    return "f64" if "f64" in types else "f32"


def _read(var: str, dtype: str, want: str) -> str:
    return var if dtype == want else f"cast_{want}({var})"


@register
class QuantizeLinear(Elementwise):
    """y = saturate(round(x / scale) + zero_point) in the integer type `to`; ties round to even,
    out-of-range values (and inf) saturate, NaN gives the lowest value (as onnx's reference).
    Into a float type `to`, y = cast(x / scale) (see the module doc)."""

    name = "graph.quantize_linear"
    operands = "x scale zero_point?"
    attrs = {"to": Attr("str", "u8"), "saturate": Attr("int", 1)}  # saturate: float8 results only
    traits = frozenset({PURE, INPLACE})
    doc = "ONNX QuantizeLinear, numpy broadcasting of scale and zero point"

    def check(self, op: Operation, types: list[TensorType]) -> None:
        to = op.attr("to")
        if to not in QUANTIZED and to not in FLOAT_QUANTIZED:
            raise SofieError(f"{op.describe()}: unsupported element type {to} for a quantized tensor "
                             f"(supported: {', '.join((*QUANTIZED, *FLOAT_QUANTIZED))})")
        x, scale = types[0].dtype, types[1].dtype
        for what, t in (("x", x), ("scale", scale)):
            if t not in SCALES:
                raise SofieError(f"{op.describe()}: {what} is {t}, expected one of {', '.join(SCALES)}")
        if len(types) > 2 and types[2].dtype != to:
            raise SofieError(f"{op.describe()}: zero point is {types[2].dtype}, the result {to}")

    def body(self, op: Operation) -> Expr:
        types = self._operand_types(op)
        to = op.attr("to")
        c = _compute_type(*types[:2])
        q = f"div({_read('x0', types[0], c)}, {_read('x1', types[1], c)})"
        if types[0] == types[1] == "f16":  # numpy divides halves into a half
            q = f"cast_f32(cast_f16({q}))"
        if to in FLOAT_QUANTIZED:
            if to == "f4e2m1" and len(types) > 2:  # the reference adds float4's zero point, not float8's
                q = f"add({q}, cast_{c}(x2))"
            return parse_body(f"{cast_op(to, bool(op.attr('saturate')))}({q})")
        q = f"round({q})"
        if len(types) > 2:
            q = f"add({q}, cast_{c}(x2))"
        lo, hi = QUANTIZED[to]
        # NaN fails the comparison and takes lo, as in the reference (rint(nan) as int32 is INT_MIN)
        return parse_body(f"cast_{to}(select(ge({q}, {lo}), min({q}, {hi}), {lo}))")


@register
class DequantizeLinear(Elementwise):
    """y = (x - zero_point) * scale in the float type `to`, computed in float (double for an
    int32 x or a double scale), as onnx's reference."""

    name = "graph.dequantize_linear"
    operands = "x scale zero_point?"
    attrs = {"to": Attr("str", "f32")}
    traits = frozenset({PURE, INPLACE})
    doc = "ONNX DequantizeLinear, numpy broadcasting of scale and zero point"

    def check(self, op: Operation, types: list[TensorType]) -> None:
        x, scale, to = types[0].dtype, types[1].dtype, op.attr("to")
        if x not in (*QUANTIZED, "i32", *FLOAT_QUANTIZED):
            raise SofieError(f"{op.describe()}: unsupported element type {x} for a quantized tensor "
                             f"(supported: {', '.join((*QUANTIZED, 'i32', *FLOAT_QUANTIZED))})")
        for what, t in (("scale", scale), ("result", to)):
            if t not in SCALES:
                raise SofieError(f"{op.describe()}: {what} is {t}, expected one of {', '.join(SCALES)}")
        if len(types) > 2 and types[2].dtype != x:
            raise SofieError(f"{op.describe()}: zero point is {types[2].dtype}, x {x}")

    def body(self, op: Operation) -> Expr:
        types = self._operand_types(op)
        to = op.attr("to")
        # x - zero_point is exact in float for 8/16-bit x; numpy takes int32 x to double
        d_type = "f64" if types[0] == "i32" else "f32"
        d = f"cast_{d_type}(x0)"
        if len(types) > 2 and types[0] not in FLOAT_QUANTIZED:
            d = f"sub({d}, cast_{d_type}(x2))"
        c = _compute_type(d_type, types[1])
        y = f"mul({_read(d, d_type, c)}, {_read('x1', types[1], c)})"
        return parse_body(y if to == c else f"cast_{to}({y})")
