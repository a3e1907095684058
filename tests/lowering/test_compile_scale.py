"""Compile cost on a big graph, counted in operations (no timings): a chain of 2000 small ops
(MatMul, Relu, Tanh, residual Adds six steps back, every 32nd value kept to the end through a
Concat, dynamic batch N) goes through import, the default pipeline and the memory plan, and the
planner's overlap checks and the slot interference stay linear in the number of ops. Before,
best-fit checked every candidate offset against every placed neighbor (cubic in the tensors
live together), fuse-loops restarted from the top after each fusion and the importer rescanned
the graph per node."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

import sofie.lowering  # noqa: F401  (registers `lower`)
from sofie.frontends.onnx import load_onnx
from sofie.ir.liveness import interference, live_ranges
from sofie.ir.plan_check import check_plan
from sofie.passes.low import plan_memory
from sofie.pipeline import DEFAULT_PIPELINE, run_pipeline

N_OPS = 2000


def chain(n: int, keep_every: int = 32) -> onnx.ModelProto:
    w = (np.random.default_rng(0).standard_normal((16, 16)) * 0.1).astype(np.float32)
    nodes, hist, kept = [], ["x"], []
    for i in range(n):
        cur, out = hist[-1], f"t{i}"
        kind = ("MatMul", "Relu", "Add", "Tanh")[i % 4]
        ins = {"MatMul": [cur, "W"], "Add": [cur, hist[max(0, len(hist) - 6)]]}.get(kind, [cur])
        nodes.append(helper.make_node(kind, ins, [out]))
        hist.append(out)
        if i % keep_every == 3:
            kept.append(out)
    nodes.append(helper.make_node("Concat", kept, ["cat"], axis=1))
    g = helper.make_graph(nodes, "chain", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 16])],
                          [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in (hist[-1], "cat")],
                          [numpy_helper.from_array(w, "W")])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def test_a_2000_op_chain_plans_in_linear_work(monkeypatch) -> None:
    low, _ = run_pipeline(load_onnx(chain(N_OPS)), [p for p in DEFAULT_PIPELINE if p != "plan-memory"])
    f = low.main
    checks = 0
    below = plan_memory.below

    def counted(end, start) -> bool:
        nonlocal checks
        checks += 1
        return below(end, start)

    monkeypatch.setattr(plan_memory, "below", counted)
    ranges = live_ranges(f)
    edges = interference(ranges).number_of_edges()  # pairs of buffers live together
    plan_memory.plan_function(f)
    check_plan(f)
    slots = len(ranges)
    assert slots > N_OPS / 4, slots  # every MatMul and every fused loop writes a buffer
    # ~62 values live to the end: each slot meets them, the rest of the chain is short-lived
    assert edges < 100 * slots, (edges, slots)
    # a handful of overlap checks per slot and neighbor; the old search made 773,265 here
    # (15x), and 5.7 million (29x) on a 4000-op chain: cubic
    assert checks < 4 * (edges + slots), (checks, edges, slots)
    # the plan is as tight as before: the arena at batch 1 is the most bytes live at once
    assert plan_memory.arena_bytes(f) == f.attrs["peak_live_bytes"]
