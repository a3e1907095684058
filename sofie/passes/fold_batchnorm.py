"""BatchNormalization folding. At inference BN is y = s * x + t per channel, with
s = scale / sqrt(var + eps) and t = B - mean * s, so it merges into the weights of a linear
producer (Conv, Gemm, 2-D MatMul) or, without padding, of a Conv consumer. New weights are
computed with numpy in float64 and stored in the model's element type."""

from __future__ import annotations

import numpy as np

from sofie.ir.core import Module, Operation, Value
from sofie.ir.dialects.graph.nn import BatchNormalization, Conv, Gemm, MatMul
from sofie.passes.pass_manager import Pass, register_pass
from sofie.passes.rewrite import Pattern, Rewriter, apply_patterns, constants, producer, sole_use

BN = BatchNormalization


def bn_affine(bn: Operation, module: Module) -> tuple[np.ndarray, np.ndarray] | None:
    """(s, t) of the BN, or None when a parameter is not a known constant."""
    params = constants(module, [bn.scale, bn.B, bn.mean, bn.var])
    if params is None:
        return None
    scale, bias, mean, var = (p.astype(np.float64) for p in params)
    s = scale / np.sqrt(var + bn.epsilon)
    return s, bias - mean * s


def _w_and_b(conv: Operation) -> list[Value | None]:
    """Conv's weight and (possibly absent) bias operands."""
    return [conv.W, conv.B]


def _name(v: Value | None, fallback: str, suffix: str) -> str:
    return (v.name if v is not None and v.name else fallback) + suffix


def _bias_name(w: Value, b: Value | None, loc: str) -> str:
    """The folded bias is named after the old bias, or the weight's layer ('c1.weight' -> 'c1.bias')."""
    if b is not None and b.name:
        return b.name + ".bn"
    if w.name and w.name.endswith("weight"):
        return w.name[: -len("weight")] + "bias.bn"
    return f"{loc or 'layer'}.bias.bn"


class BatchNormAfterConv(Pattern):
    """BN(Conv(x, W, b)) = Conv(x, W * s[m], (b - mean) * s + B)."""

    root = BN

    def match(self, bn: Operation, module: Module):
        conv = producer(bn.X, Conv)
        if conv is None or not sole_use(bn.X) or conv.activation:
            return None
        if conv.Z is not None:
            return None  # a residual is added after the bias: BN would have to scale it too
        wb = constants(module, _w_and_b(conv))
        affine = bn_affine(bn, module)
        return None if wb is None or affine is None else (conv, wb, affine)

    def rewrite(self, bn: Operation, match, rw: Rewriter) -> None:
        conv, (w, b), (s, t) = match
        dt = w.dtype
        w2 = (w.astype(np.float64) * s.reshape((-1,) + (1,) * (w.ndim - 1))).astype(dt)
        b2 = ((b.astype(np.float64) if b is not None else 0.0) * s + t).astype(dt)
        w_in, b_in = _w_and_b(conv)
        operands = [conv.X,
                    rw.weight(w2, _name(w_in, conv.loc, ".bn"), loc=conv.loc),
                    rw.weight(b2, _bias_name(w_in, b_in, conv.loc), loc=conv.loc)]
        new = rw.create(Conv, operands, dict(conv.attrs), loc=conv.loc)
        rw.replace(bn, new.results)


class BatchNormAfterDense(Pattern):
    """BN over the columns of a 2-D Gemm or MatMul: scale B's columns, shift the bias; the
    result is a Gemm (C' = s * (beta * C - mean) + B)."""

    root = BN

    def match(self, bn: Operation, module: Module):
        op = producer(bn.X, (Gemm, MatMul))
        if op is None or not sole_use(bn.X) or op.activation:
            return None
        if op.A.type.rank != 2 or op.B.type.rank != 2:
            return None
        c = op.C if op.isa(Gemm) else None
        data = constants(module, [op.B, c])
        affine = bn_affine(bn, module)
        return None if data is None or affine is None else (op, data, affine)

    def rewrite(self, bn: Operation, match, rw: Rewriter) -> None:
        op, (b, c), (s, t) = match
        gemm = op.isa(Gemm)
        c_in = op.C if gemm else None
        trans_b = gemm and op.transB
        dt = b.dtype
        b2 = b.astype(np.float64) * (s.reshape(-1, 1) if trans_b else s.reshape(1, -1))
        beta = op.beta if gemm else 1.0
        c2 = t if c is None else np.asarray(beta * c.astype(np.float64)) * s + t
        if c2.ndim == 2 and c2.shape[0] == 1:
            c2 = c2.reshape(-1)
        attrs = {k: v for k, v in op.attrs.items() if k != "beta"} if gemm else {}
        operands = [op.A,
                    rw.weight(b2.astype(dt), _name(op.B, op.loc, ".bn"), loc=op.loc),
                    rw.weight(c2.astype(dt), _bias_name(op.B, c_in, op.loc), loc=op.loc)]
        rw.replace(bn, rw.create(Gemm, operands, attrs, loc=op.loc).results)


def _unpadded(conv: Operation) -> bool:
    pads, _, _, _ = conv.opdef.geometry(conv)
    return not any(pads)


class BatchNormBeforeConv(Pattern):
    """Conv(BN(x)) without padding = Conv(x, W * s[c], b + sum W * t[c]): every window sees
    only BN outputs. With padding the padded zeros would not be shifted by t: not exact."""

    root = Conv

    def match(self, conv: Operation, module: Module):
        bn = producer(conv.X, BN)
        if bn is None or not sole_use(conv.X) or not _unpadded(conv):
            return None
        wb = constants(module, _w_and_b(conv))
        affine = bn_affine(bn, module)
        return None if wb is None or affine is None else (bn, wb, affine)

    def rewrite(self, conv: Operation, match, rw: Rewriter) -> None:
        bn, (w, b), (s, t) = match
        g = conv.group
        m, cg = w.shape[:2]
        # input channel of W[m, ci] is (m // (M / g)) * cg + ci
        group_of = np.arange(m) // (m // g)
        s_mc = s.reshape(g, cg)[group_of]
        t_mc = t.reshape(g, cg)[group_of]
        w64 = w.astype(np.float64)
        taps = (1,) * (w.ndim - 2)  # 1-3 spatial dims
        w2 = w64 * s_mc.reshape(s_mc.shape + taps)
        b2 = (b.astype(np.float64) if b is not None else 0.0) + (w64 * t_mc.reshape(t_mc.shape + taps)).sum(
            axis=tuple(range(1, w.ndim)))
        w_in, b_in = _w_and_b(conv)
        weight = rw.weight(w2.astype(w.dtype), _name(w_in, conv.loc, ".bn"), loc=conv.loc)
        bias = rw.weight(np.asarray(b2, np.float64).astype(w.dtype), _bias_name(w_in, b_in, conv.loc),
                         loc=conv.loc)
        operands = [bn.X, weight, bias, conv.Z]
        rw.replace(conv, rw.create(Conv, operands, dict(conv.attrs), loc=conv.loc).results)


@register_pass
class FoldBatchNorm(Pass):
    name = "fold-batchnorm"
    summary = "fold inference BatchNormalization into adjacent Conv / Gemm / MatMul weights"

    def run(self, module: Module) -> None:
        apply_patterns(module, [BatchNormAfterConv(), BatchNormAfterDense(), BatchNormBeforeConv()])
