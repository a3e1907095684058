"""NAME.memory.svg: one rectangle per planned buffer, at its offset and over its live range,
in-place reuse hatched; written by `sofie-compile --stats`."""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from sofie.driver import build
from sofie.ir.liveness import is_kernel, live_ranges, size_bytes
from sofie.tools.memory_svg import HEIGHT, MARGIN, WIDTH, memory_svg

SVG = "{http://www.w3.org/2000/svg}"
BIN = os.path.dirname(sys.executable)


def chain_model(path: str) -> str:
    """MatMul -> Add(z) -> MatMul -> Add(z) -> MatMul: unfused, each Add runs in place over the
    MatMul result it consumes."""
    rng = np.random.default_rng(0)
    w1 = numpy_helper.from_array(rng.standard_normal((8, 16)).astype(np.float32), "w1")
    w2 = numpy_helper.from_array(rng.standard_normal((16, 16)).astype(np.float32), "w2")
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["t1"], name="mm1"),
             helper.make_node("Add", ["t1", "z"], ["t2"], name="add1"),
             helper.make_node("MatMul", ["t2", "w2"], ["t3"], name="mm2"),
             helper.make_node("Add", ["t3", "z"], ["t4"], name="add2"),
             helper.make_node("MatMul", ["t4", "w2"], ["y"], name="mm3")]
    info = lambda n, s: helper.make_tensor_value_info(n, TensorProto.FLOAT, s)  # noqa: E731
    g = helper.make_graph(nodes, "chain", [info("x", ["N", 8]), info("z", ["N", 16])], [info("y", ["N", 16])],
                          [w1, w2])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def buffer_rects(svg: str) -> list[ET.Element]:
    return [r for r in ET.fromstring(svg).iter(f"{SVG}rect") if "buffer" in r.get("class", "").split()]


def check_against_plan(f, svg: str) -> list[ET.Element]:
    """Every buffer has one rectangle whose numbers and pixels match the plan."""
    kernel_no = {i: k for k, i in enumerate(i for i, op in enumerate(f.ops) if is_kernel(op))}
    ranges = {r.root.name: r for r in live_ranges(f).values()}
    rects = buffer_rects(svg)
    assert sorted(r.get("data-name") for r in rects) == sorted(ranges)
    columns = max(int(r.get("data-last")) for r in rects) + 1
    arena = max(int(r.get("data-offset")) + int(r.get("data-size")) for r in rects)
    for rect in rects:
        live = ranges[rect.get("data-name")]
        offset, size = sum(live.root.owner.attrs["offset"]), size_bytes(live.root)[1]
        first, last = kernel_no[live.start], kernel_no.get(live.end, len(kernel_no) - 1)
        assert (int(rect.get("data-offset")), int(rect.get("data-size"))) == (offset, size)
        assert (int(rect.get("data-first")), int(rect.get("data-last"))) == (first, last)
        x, y, w, h = (float(rect.get(k)) for k in ("x", "y", "width", "height"))
        assert x == pytest.approx(MARGIN + first * WIDTH / columns, abs=0.01)
        assert w == pytest.approx((last + 1 - first) * WIDTH / columns, abs=0.01)
        assert y == pytest.approx(MARGIN + offset * HEIGHT / arena, abs=0.01)
        assert h == pytest.approx(max(size * HEIGHT / arena, 0.5), abs=0.01)
    return rects


def test_rects_follow_the_plan_and_mark_in_place_reuse(tmp_path) -> None:
    r = build(chain_model(str(tmp_path / "chain.onnx")), str(tmp_path / "out"), passes=["infer-shapes"])
    svg = memory_svg(r.low.main, title="chain")
    rects = check_against_plan(r.low.main, svg)
    assert len(rects) == 4
    in_place = {rect.get("data-name"): rect.get("data-in-place-of") for rect in rects
                if "inplace" in rect.get("class").split()}
    assert in_place == {"t2": "t1", "t4": "t3"}
    by_name = {rect.get("data-name"): rect for rect in rects}
    assert by_name["t2"].get("data-offset") == by_name["t1"].get("data-offset")  # the same bytes
    hatches = [h for h in ET.fromstring(svg).iter(f"{SVG}rect") if h.get("class") == "hatch"]
    assert len(hatches) == 2 and all(h.get("fill") == "url(#inplace)" for h in hatches)


def test_without_reuse_nothing_is_in_place(tmp_path) -> None:
    r = build(chain_model(str(tmp_path / "chain.onnx")), str(tmp_path / "out"),
              passes=["infer-shapes", "plan-memory-no-reuse"])
    rects = check_against_plan(r.low.main, memory_svg(r.low.main))
    assert len({rect.get("data-offset") for rect in rects}) == 4
    assert not any("inplace" in rect.get("class").split() for rect in rects)


def test_a_resnet_plan_is_drawn_whole(model_dir: str, tmp_path) -> None:
    r = build(os.path.join(model_dir, "resnet_small.onnx"), str(tmp_path))
    f = r.low.main
    rects = check_against_plan(f, memory_svg(f))
    assert len(rects) == sum(op.name == "low.buffer" and bool(op.result.uses) for op in f.ops)
    assert max(int(x.get("data-offset")) + int(x.get("data-size")) for x in rects) == r.stats["arena_bytes"]


def test_compile_stats_writes_the_picture(tmp_path) -> None:
    model = chain_model(str(tmp_path / "chain.onnx"))
    p = subprocess.run([f"{BIN}/sofie-compile", model, "-o", str(tmp_path / "out"), "--stats",
                        "--pass-pipeline=infer-shapes"], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    svg = (tmp_path / "out" / "chain.memory.svg").read_text()
    assert len(buffer_rects(svg)) == 4 and "chain: arena 128 B at batch 1" in svg
