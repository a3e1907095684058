"""Signal ops: DFT. A signal is real ([..., 1]) or complex ([..., 2]: real, imaginary) in its
last axis; the transformed axis is any other. The transform length (dft_length, else the axis
size) and the axis must be known at compile time: they set the output shape."""

from __future__ import annotations

import numpy as np

from sofie.errors import SofieError
from sofie.ir.core import Operation
from sofie.ir.dialects.graph.shape import _known_numbers
from sofie.ir.registry import PURE, Attr, OpDef, register
from sofie.ir.types import fmt_shape


@register
class DFT(OpDef):
    name = "graph.dft"
    onnx = "DFT"
    operands = "input dft_length?:const axis_input?:const"  # DFT-17's axis attribute arrives as axis_input
    attrs = {"inverse": Attr("int", 0), "onesided": Attr("int", 0)}
    traits = frozenset({PURE})
    doc = ("discrete Fourier transform along one axis (inverse: e^+ and 1/n; onesided: the first "
           "n/2 + 1 outputs), zero-padded or cut to dft_length; complex output [..., 2]. inverse and "
           "onesided: the real inverse of a one-sided spectrum, [..., n, 1] (numpy's irfft)")

    def axis(self, op: Operation, rank: int) -> int:
        a = -2
        if op.axis_input is not None:
            a = int(_known_numbers(op, "axis_input", "axis operand").reshape(-1)[0])
        if not -rank <= a <= rank - 2 or a == -1:
            raise SofieError(f"{op.describe()}: axis {a} is not a signal axis of a rank-{rank} input "
                             f"(the last axis holds real / imaginary parts)")
        return a % rank

    @staticmethod
    def irfft(op: Operation) -> bool:
        """inverse and onesided: the input is the first n/2 + 1 outputs of a real signal's DFT
        (a Hermitian spectrum) and the result that real signal, [..., n, ..., 1]."""
        return bool(op.attr("inverse") and op.attr("onesided"))

    def length(self, op: Operation, size) -> int:
        """The transform length n (an irfft's default: 2 (size - 1))."""
        if op.dft_length is None:
            if not isinstance(size, int):
                raise SofieError(f"{op.describe()}: the transformed axis must be static, got {size}")
            if self.irfft(op):
                if size < 2:
                    raise SofieError(f"{op.describe()}: an inverse one-sided DFT needs 2 or more inputs along "
                                     f"the axis (or dft_length), got {size}")
                return 2 * (size - 1)
            return size
        n = int(_known_numbers(op, "dft_length", "dft_length operand (it sets the output length)").reshape(-1)[0])
        if n < 1:
            raise SofieError(f"{op.describe()}: dft_length {n} must be >= 1")
        return n

    def shape(self, op, x, dft_length, axis_input):
        if x.rank < 2 or x.shape[-1] not in (1, 2):
            raise SofieError(f"{op.describe()}: input {fmt_shape(x.shape)} must end in 1 (real) or 2 (complex)")
        a = self.axis(op, x.rank)
        n = self.length(op, x.shape[a])
        if self.irfft(op):
            return x.with_shape(x.shape[:a] + (n,) + x.shape[a + 1:-1] + (1,))
        n_out = n // 2 + 1 if op.attr("onesided") else n
        return x.with_shape(x.shape[:a] + (n_out,) + x.shape[a + 1:-1] + (2,))

    def reference(self, op, x, dft_length, axis_input):
        a = self.axis(op, x.ndim)
        n = self.length(op, x.shape[a])
        sig = x[..., 0] if x.shape[-1] == 1 else x[..., 0] + 1j * x[..., 1]
        if self.irfft(op):
            return np.fft.irfft(sig.astype(np.complex128), n, axis=a)[..., None].astype(x.dtype)
        res = (np.fft.ifft if op.attr("inverse") else np.fft.fft)(sig.astype(np.complex128), n, axis=a)
        if op.attr("onesided"):
            res = np.take(res, np.arange(n // 2 + 1), axis=a)
        return np.stack([res.real, res.imag], -1).astype(x.dtype)
