"""Recurrent layers (RNN, GRU, LSTM): one runtime kernel per layer (sofie_rt/rnn.hxx), called
once per direction, with its three scratch allocations sized here and planned like any tensor:
the input projection of every step [T, N, G*H], the step's state [N, G*H + 2*H] (the gates,
then h, then c or r * h) and R transposed [H, G*H]."""

from __future__ import annotations

from sofie.ir.core import Operation
from sofie.ir.dialects.graph.recurrent import GRU, LSTM, RNN
from sofie.ir.types import TensorType
from sofie.lowering.context import LoweringContext, rule


@rule(RNN, GRU, LSTM)
def _recurrent(ctx: LoweringContext, op: Operation) -> None:
    x = op.X.type
    hidden, gates = op.hidden_size, op.opdef.gates
    batch = x.shape[0] if op.layout else x.shape[1]
    name = op.results[0].name or op.name.split(".")[1]
    xw = ctx.alloc(TensorType(x.dtype, (x.shape[0], x.shape[1], gates * hidden)), f"{name}_projection")
    state = ctx.alloc(TensorType(x.dtype, (batch, gates * hidden + 2 * hidden)), f"{name}_state")
    r_t = ctx.alloc(TensorType(x.dtype, (hidden, gates * hidden)), f"{name}_R_transposed")
    inputs = [ctx.value(v) for v in op.padded_operands()]
    outs = [ctx.dest(op, i) for i in range(len(op.results))]  # unused results too: the kernel writes all
    attrs = {"direction": op.direction, "layout": op.layout, "clip": op.clip,
             "activations": [str(b) for per_dir in op.opdef.activation_bodies(op) for b in per_dir]}
    if op.isa(GRU):
        attrs["linear_before_reset"] = op.linear_before_reset
    if op.isa(LSTM):
        attrs["input_forget"] = op.input_forget
    ctx.create(f"low.{op.name.split('.')[1]}", [*inputs, xw, state, r_t, *outs], attrs, op)
