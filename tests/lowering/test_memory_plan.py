"""The memory plan, checked from the lowered code: buffers that are live at the same time never
share bytes, except an elementwise op writing over the input that dies at it."""

from __future__ import annotations

import os

import pytest

from sofie.frontends.onnx import load_onnx
from sofie.ir.core import Function
from sofie.lowering.lower import lower
from sofie.passes.pass_manager import run_pipeline
from tests.models import MODELS


def live_buffers(f: Function) -> list[tuple[str, int, int, int, int, str]]:
    """(name, region, offset, size, first, last) per low.buffer, from uses in the low function."""
    pos = {id(op): i for i, op in enumerate(f.ops)}
    out = []
    for op in f.ops:
        if op.name != "low.buffer":
            continue
        v = op.result
        users, stack = [], [v]
        while stack:  # follow views: they read and write the same bytes
            u = stack.pop()
            for user in u.users:
                if user.name == "low.view":
                    stack.append(user.result)
                else:
                    users.append(pos[id(user)])
        size = v.type.static_size() * v.type.itemsize
        region = "events" if v.type.symbols else "static"
        out.append((v.name, region, op.attrs["offset"], size, min(users), max(users), ))
    return out


def check_plan(f: Function) -> int:
    """Asserts no conflicting overlap; returns how many buffer pairs share bytes legally."""
    bufs = live_buffers(f)
    shared = 0
    for i, a in enumerate(bufs):
        for b in bufs[i + 1:]:
            if a[1] != b[1] or a[2] + a[3] <= b[2] or b[2] + b[3] <= a[2]:
                continue  # other region or disjoint bytes
            first, second = (a, b) if a[4] <= b[4] else (b, a)
            in_place = first[5] == second[4] and first[2:4] == second[2:4]
            assert first[5] < second[4] or in_place, f"{a} and {b} are live together and overlap"
            shared += 1
    static, per_event = f.attrs["arena"]
    for _, region, offset, size, _, _ in bufs:
        assert offset + size <= (per_event if region == "events" else static)
    return shared


@pytest.mark.parametrize("name", list(MODELS))
def test_optimized_plan_is_sound_and_reuses(model_dir: str, name: str) -> None:
    m = load_onnx(os.path.join(model_dir, name + ".onnx"))
    run_pipeline(m, ["plan-memory"])
    low = lower(m)
    shared = check_plan(low.main)
    if name != "conv1":  # conv1 has one intermediate only
        assert shared > 0, "the plan reused no memory"


@pytest.mark.parametrize("name", list(MODELS))
def test_unoptimized_plan_gives_every_buffer_its_own_bytes(model_dir: str, name: str) -> None:
    low = lower(load_onnx(os.path.join(model_dir, name + ".onnx")))
    assert check_plan(low.main) == 0


def test_reuse_shrinks_the_arena(model_dir: str) -> None:
    path = os.path.join(model_dir, "resnet_small.onnx")
    plain = lower(load_onnx(path)).main.attrs["arena"]
    m = load_onnx(path)
    run_pipeline(m, ["plan-memory"])
    planned = lower(m).main.attrs["arena"]
    assert planned[1] < plain[1] / 2, (planned, plain)


def test_conv_scratch_is_static_and_batch_independent(model_dir: str) -> None:
    m = load_onnx(os.path.join(model_dir, "conv1.onnx"))
    run_pipeline(m, ["plan-memory"])
    static, per_event = lower(m).main.attrs["arena"]
    # im2col works on bands of output rows: 25 x (rows * 96) floats, under 256 KB, whatever
    # the batch; the whole image would need 25 * 96 * 96 floats
    assert 25 * 96 * 4 <= static <= 256 * 1024 < 25 * 96 * 96 * 4
    assert per_event == 2 * 96 * 96 * 4  # the conv's output; the Relu writes the caller's buffer
