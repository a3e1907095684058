"""The conv workspace is sized by the lowering rule that picks the kernel (for the memory plan)
and used in C++: both agree."""

from __future__ import annotations

import os
import subprocess

import pytest

from sofie.ir.parser import parse
from sofie.lowering.conv import im2col_scratch_bytes, winograd_scratch_bytes, winograd_tiles

RUNTIME = os.path.join(os.path.dirname(__file__), "..", "..", "sofie", "runtime")

# (C, M, H) of 3x3 stride-1 convs on HxH images, batch N
SHAPES = [(16, 16, 56), (64, 64, 56), (128, 256, 14), (512, 512, 7), (3, 64, 224), (32, 8, 9)]


def conv_op(c: int, m: int, h: int):
    text = f"""module @m {{
  weight "w" : tensor<{m}x{c}x3x3xf32> = elided
  func @main(%x: tensor<Nx{c}x{h}x{h}xf32>) -> (tensor<Nx{m}x{h}x{h}xf32>) {{
    %w = graph.weight {{ref = "w"}} : tensor<{m}x{c}x3x3xf32>
    %y = graph.conv %x, %w {{pads = [1, 1, 1, 1]}} : tensor<Nx{m}x{h}x{h}xf32>
    return %y
  }}
}}
"""
    return parse(text).main.ops[-1]


def test_winograd_scratch_matches_the_runtime(tmp_path) -> None:
    ops = [conv_op(*s) for s in SHAPES]
    cases = [(op.W.type.shape[1], op.W.type.shape[0], winograd_tiles(op)) for op in ops]
    assert any(t for _, _, t in cases) and not all(t for _, _, t in cases)  # both algorithms seen
    calls = "\n".join(f'  std::printf("%zu\\n", sofie::rt::conv2d_winograd_scratch_floats({c}, {m}, {t}));'
                      for c, m, t in cases if t)
    src = tmp_path / "main.cpp"
    src.write_text(f'#include "sofie_rt/sofie_rt.hxx"\n#include <cstdio>\nint main() {{\n{calls}\n}}\n')
    r = subprocess.run(["g++", "-std=c++17", "-I", RUNTIME, str(src), "-o", str(tmp_path / "main")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    cpp = [int(v) * 4 for v in subprocess.run([str(tmp_path / "main")], capture_output=True,
                                              text=True).stdout.split()]
    assert cpp == [winograd_scratch_bytes(op, winograd_tiles(op)) for op in ops if winograd_tiles(op)]


@pytest.mark.parametrize("shape", SHAPES)
def test_scratch_is_bounded_and_batch_independent(shape) -> None:
    op = conv_op(*shape)
    tiles = winograd_tiles(op)
    scratch = winograd_scratch_bytes(op, tiles) if tiles else im2col_scratch_bytes(op)
    assert 0 < scratch <= 4.5 * 2**20
