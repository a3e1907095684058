"""bench/compare_profile.py: every timed block, sofie's (named for the ONNX node of its Conv) and
ORT's (named `<output tensor>_nchwc` after the last node it fused), is charged to the same
source Conv, and the Convs are told apart by kind. Hand-made profiles on a small graph; the
real profilers are too slow for a unit test."""

from __future__ import annotations

import numpy as np
from onnx import helper

from bench.compare_profile import Graph, rows, table
from tests.bench.test_cost import save


def block_graph(tmp_path) -> str:
    """dw 3x3 s2 -> BN -> Clip(0, 6); 1x1 conv -> SiLU; a residual Add; an SE-style gate (a 1x1
    conv's Sigmoid, its activation) and Mul."""
    nodes = [
        helper.make_node("Conv", ["x", "Wd"], ["d"], name="dw", group=4, strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["d", "g", "b", "m", "v"], ["dn"], name="bn"),
        helper.make_node("Constant", [], ["lo"], name="c0", value=helper.make_tensor("lo", 1, [], [0.0])),
        helper.make_node("Constant", [], ["hi"], name="c6", value=helper.make_tensor("hi", 1, [], [6.0])),
        helper.make_node("Clip", ["dn", "lo", "hi"], ["dc"], name="clip"),
        helper.make_node("Conv", ["dc", "Wp"], ["p"], name="pw"),
        helper.make_node("Sigmoid", ["p"], ["ps"], name="sig"),
        helper.make_node("Mul", ["p", "ps"], ["silu"], name="silu"),
        helper.make_node("Add", ["silu", "dc"], ["r"], name="add"),
        helper.make_node("Conv", ["r", "Wp"], ["e"], name="excite"),
        helper.make_node("Sigmoid", ["e"], ["gate"], name="gate"),
        helper.make_node("Mul", ["silu", "gate"], ["y"], name="se_mul"),
    ]
    inits = {"Wd": np.ones((4, 1, 3, 3)), "Wp": np.ones((4, 4, 1, 1)), "g": np.ones(4), "b": np.zeros(4),
             "m": np.zeros(4), "v": np.ones(4)}
    return save(tmp_path, nodes, [("x", [1, 4, 8, 8])], ["y"], inits)


def test_anchors_and_kinds(tmp_path) -> None:
    g = Graph(block_graph(tmp_path))
    assert [g.anchor(n) for n in ("bn", "clip", "sig", "silu", "add")] == ["dw", "dw", "pw", "pw", "pw"]
    assert g.anchor("gate") == "excite"  # the Conv's activation
    assert g.anchor("se_mul") == "se_mul"  # not a SiLU: its own block
    assert g.kinds["dw"] == "Conv dw 3x3 s2" and g.kinds["pw"] == "Conv 1x1"
    assert g.node_of("dc_nchwc") == "clip" and g.node_of("r_nchwc") == "add" and g.node_of("nothing") is None
    assert g.node_of("silu/QuickGeluFusion/") == "silu"


def test_rows_charge_both_sides_to_the_conv(tmp_path) -> None:
    res = {"model": block_graph(tmp_path), "batch": 1, "sofie_total": 6e-6, "ort_total": 4e-6,
           "sofie": [["dw", "low.conv2d", 2e-6], ["pw", "low.conv2d", 3e-6], ["se_mul", "low.binary", 1e-6]],
           "ort": {"dc_nchwc": 1e-6, "r_nchwc": 1.5e-6, "y": 1.5e-6, "ReorderInput_token_7": 0.5e-6}}
    got = {r[0]: r[1:4] for r in rows(res)}
    assert got == {"dw": ("Conv dw 3x3 s2", 2e-6, 1e-6), "pw": ("Conv 1x1", 3e-6, 1.5e-6),
                   "se_mul": ("Mul", 1e-6, 1.5e-6), "ReorderInput_token_7": ("ReorderInput", 0.0, 0.5e-6)}
    text = table(res, 3)
    assert "Conv 1x1" in text and "ratio 1.50" in text and "ReorderInput" in text
