"""The `low` dialect: buffers in one arena and kernel calls in destination-passing style.

Every decision is made when these ops are built (kernel, sizes, buffer offsets); the C++
printer only spells them out. Operands list inputs first, then the outputs written.
"""

from __future__ import annotations

from sofie.errors import SofieError
from sofie.ir.core import Operation
from sofie.ir.dialects.graph.nn import CONV_ATTRS, EPILOGUE
from sofie.ir.registry import Attr, OpDef, register
from sofie.ir.types import TensorType


class Storage(OpDef):
    """Defines a value by where its bytes live; its type comes from the text, not a rule."""

    def infer(self, op: Operation) -> list[TensorType]:
        return [r.type for r in op.results]


@register
class Weight(Storage):
    name = "low.weight"
    attrs = {"ref": Attr("str"), "offset": Attr("int")}
    doc = "read-only bytes at `offset` in the weights file"


@register
class Buffer(Storage):
    name = "low.buffer"
    attrs = {"offset": Attr("int")}
    doc = "arena bytes; offset per event when the type has the batch symbol, else in the static region"


@register
class Output(Storage):
    name = "low.output"
    attrs = {"index": Attr("int")}
    doc = "the caller's output pointer number `index`"


@register
class View(OpDef):
    name = "low.view"
    operands = "source"
    view = True
    doc = "the same bytes under another shape"

    def infer(self, op: Operation) -> list[TensorType]:
        return [r.type for r in op.results]

    def verify(self, op: Operation) -> None:
        src, dst = op.operands[0].type, op.results[0].type
        if (src.static_size(), sorted(src.symbols)) != (dst.static_size(), sorted(dst.symbols)):
            raise SofieError(f"{op.describe()}: view changes the element count ({src} -> {dst})")


class Kernel(OpDef):
    """A kernel call writing its last operand(s); no SSA results."""

    side_effects = True
    results = 0

    def infer(self, op: Operation) -> list[TensorType]:
        return []


def _kernel(name: str, operands: str, attrs: dict | None = None, doc: str = "") -> None:
    register(type(name.split(".")[1].title().replace("_", ""), (Kernel,),
                  {"name": name, "operands": operands, "attrs": attrs or {}, "doc": doc}))


_kernel("low.gemm", "A B C? Y", {"transA": Attr("int", 0), "transB": Attr("int", 0),
                                 "alpha": Attr("float", 1.0), "beta": Attr("float", 1.0),
                                 "bias": Attr("str", "none"), **EPILOGUE},
        "Y = act(alpha op(A) op(B) + beta C) through the BLAS shim; bias: none | row | full")
_kernel("low.conv2d", "X W B? Z? scratch? Y", {**CONV_ATTRS, **EPILOGUE, "pads": Attr("ints"),
                                               "strides": Attr("ints"), "dilations": Attr("ints"),
                                               "tile_rows": Attr("int", 0)},
        "im2col of `tile_rows` output rows at a time into scratch + GEMM, per image and group; "
        "Z is a residual added before act")
_kernel("low.conv2d_winograd", "X U B? Z? scratch Y", {**EPILOGUE, "pads": Attr("ints"), "tile_block": Attr("int")},
        "Winograd F(2x2, 3x3) conv (3x3, stride 1, group 1); U = G w G^T is [16, M, C]; "
        "`tile_block` 2x2 output tiles of the batch at a time through 16 GEMMs; Z is a residual added before act")
_kernel("low.pool2d", "X Y", {"kind": Attr("str"), "kernel_shape": Attr("ints"), "pads": Attr("ints"),
                              "strides": Attr("ints"), "dilations": Attr("ints"),
                              "count_include_pad": Attr("int", 0)})
_kernel("low.global_average_pool", "X Y")
_kernel("low.batch_normalization", "X scale B mean var Y", {"epsilon": Attr("float", 1e-5)})
_kernel("low.softmax", "X Y", {"axis": Attr("int")})
_kernel("low.transpose", "X Y", {"perm": Attr("ints")})
_kernel("low.concat", "inputs*", {"axis": Attr("int")}, "the last operand is the output")
_kernel("low.copy", "X Y")
_kernel("low.map", "inputs*", {"expr": Attr("str")},
        "elementwise loop nest with numpy broadcasting; `expr` reads v0, v1, ...; last operand is the output")
