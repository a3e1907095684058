"""The conv workspace is sized by the lowering rule that picks the kernel (for the memory plan)
and used in C++: both agree."""

from __future__ import annotations

import os
import subprocess

import pytest

from sofie.ir.parser import parse
from sofie.lowering.conv import im2col_scratch_bytes, winograd_plan, winograd_scratch_bytes

RUNTIME = os.path.join(os.path.dirname(__file__), "..", "..", "sofie", "runtime")

# (C, M, H, k) of k x k stride-1 convs on HxH images, batch N
SHAPES = [(16, 16, 56, 3), (64, 64, 56, 3), (128, 256, 14, 3), (512, 512, 7, 3), (3, 64, 224, 3), (32, 8, 9, 3),
          (128, 128, 100, 5), (512, 512, 14, 5)]


def conv_op(c: int, m: int, h: int, k: int = 3):
    p = k // 2
    text = f"""module @m {{
  weight "w" : tensor<{m}x{c}x{k}x{k}xf32> = elided
  func @main(%x: tensor<Nx{c}x{h}x{h}xf32>) -> (tensor<Nx{m}x{h}x{h}xf32>) {{
    %w = graph.weight {{ref = "w"}} : tensor<{m}x{c}x{k}x{k}xf32>
    %y = graph.conv %x, %w {{pads = [{p}, {p}, {p}, {p}]}} : tensor<Nx{m}x{h}x{h}xf32>
    return %y
  }}
}}
"""
    return parse(text).main.ops[-1]


def test_winograd_scratch_matches_the_runtime(tmp_path) -> None:
    ops = [conv_op(*s) for s in SHAPES]
    plans = [(op, winograd_plan(op)) for op in ops]
    assert {p.m if p else 0 for _, p in plans} == {0, 2, 4}  # im2col and both tile sizes seen
    assert {p.r for _, p in plans if p} == {3, 5}
    calls = "\n".join(f'  std::printf("%zu\\n", sofie::rt::conv2d_winograd_scratch_floats<{p.m}, {p.r}>('
                      f'{op.W.type.shape[1]}, {op.W.type.shape[0]}, {p.tiles}));' for op, p in plans if p)
    src = tmp_path / "main.cpp"
    src.write_text(f'#include "sofie_rt/sofie_rt.hxx"\n#include <cstdio>\nint main() {{\n{calls}\n}}\n')
    r = subprocess.run(["g++", "-std=c++17", "-I", RUNTIME, str(src), "-o", str(tmp_path / "main")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    cpp = [int(v) * 4 for v in subprocess.run([str(tmp_path / "main")], capture_output=True,
                                              text=True).stdout.split()]
    assert cpp == [winograd_scratch_bytes(op, p) for op, p in plans if p]


@pytest.mark.parametrize("shape", SHAPES)
def test_scratch_is_bounded_and_batch_independent(shape) -> None:
    op = conv_op(*shape)
    plan = winograd_plan(op)
    scratch = winograd_scratch_bytes(op, plan) if plan else im2col_scratch_bytes(op)
    # the Winograd budget, but for the 32-tile floor: 6x6 tiles of 512 + 512 channels take 4.5 MB
    assert 0 < scratch <= 5 * 2**20
