"""sofie-compile --profile: run() times every op block, the profile tool prints them; without
the flag the header carries no trace of it."""

from __future__ import annotations

import re

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from sofie.driver import build
from sofie.tools import compile as compile_cli
from sofie.tools import profile as profile_cli
from sofie.tools.profile import OpTime, Profile, profile


def small_model(path: str) -> str:
    """Conv -> Relu -> MaxPool -> Flatten -> Gemm -> Softmax -> Gemm, every node named."""
    rng = np.random.default_rng(0)
    inits = {"W": rng.standard_normal((4, 2, 3, 3)), "G": rng.standard_normal((16, 4 * 3 * 3)),
             "B": rng.standard_normal(16), "H": rng.standard_normal((10, 16))}
    nodes = [helper.make_node("Conv", ["x", "W"], ["c"], name="conv"),
             helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2], name="pool"),
             helper.make_node("Flatten", ["p"], ["f"], name="flatten"),
             helper.make_node("Gemm", ["f", "G", "B"], ["g"], transB=1, name="dense"),
             helper.make_node("Softmax", ["g"], ["s"], name="softmax"),
             helper.make_node("Gemm", ["s", "H"], ["y"], transB=1, name="head")]
    g = helper.make_graph(nodes, "small", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2, 8, 8])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 10])],
                          [numpy_helper.from_array(v.astype(np.float32), k) for k, v in inits.items()])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def op_blocks(header: str) -> list[str]:
    """The node named by each op block of run(), in order."""
    return re.findall(r"^  \{  // (\S+) \(low\.", header, re.M)


def without_guard(text: str) -> str:
    return re.sub(r"SOFIE_MODEL_\w+_HXX_[0-9A-F]{16}", "GUARD", text)


def test_profile_header_only_adds_timers(tmp_path) -> None:
    model = small_model(str(tmp_path / "small.onnx"))
    plain = open(build(model, str(tmp_path / "plain"), blas="none").header).read()
    timed = open(build(model, str(tmp_path / "timed"), blas="none", profile=True).header).read()
    # the default header has no trace of profiling
    assert "profile" not in plain and "chrono" not in plain
    # the profiling header is the default one plus the timer lines (and a blank line)
    added = [ln for ln in timed.splitlines() if "profile" in ln.lower() or "<chrono>" in ln]
    kept = [ln for ln in timed.splitlines() if ln not in added and ln]
    assert without_guard("\n".join(kept)) == without_guard("\n".join(ln for ln in plain.splitlines() if ln))
    blocks = op_blocks(plain)
    assert len(blocks) >= 4
    assert timed.count("profile_seconds_[") == len(blocks)  # one timer per block
    assert f"kProfileNames{{{{{', '.join(f'{chr(34)}{b}{chr(34)}' for b in blocks)}}}}}" in timed


def test_profile_lists_every_block_and_sums_to_the_total(tmp_path) -> None:
    model = small_model(str(tmp_path / "small.onnx"))
    p = profile(model, batch=4, iters=50, blas="none", out_dir=str(tmp_path / "out"))
    header = open(tmp_path / "out" / "small.hxx").read()
    assert [o.name for o in p.ops] == op_blocks(header)
    assert all(o.kind.startswith("low.") for o in p.ops)
    ops_sum = sum(o.seconds for o in p.ops)
    # the timers sit inside the timed calls: their sum cannot exceed the total (clock reads aside)
    assert 0 < ops_sum <= p.total * 1.01
    table = p.table().splitlines()
    assert table[0].startswith("small, batch 4, 50 calls:")
    assert len(table) == 2 + len(p.ops)
    # each block's own timer: the timers of different blocks do not all read the same
    assert len({o.seconds for o in p.ops}) == len(p.ops)


def test_table_slowest_first() -> None:
    p = Profile("m", 2, 10, 1e-3, [OpTime("/a", "low.gemm", 1e-4), OpTime("/b", "low.conv2d", 5e-4),
                                   OpTime("/c", "low.generic", 2e-4)])
    lines = p.table().splitlines()
    assert lines[0] == "m, batch 2, 10 calls: 1.0000 ms per call; the 3 op blocks sum to 0.8000 ms (80.0% of it)"
    assert [ln.split()[0] for ln in lines[2:]] == ["/b", "/c", "/a"]
    assert lines[2].split()[1:] == ["low.conv2d", "0.5000", "ms", "50.00"]


def test_cli(tmp_path, capsys) -> None:
    model = small_model(str(tmp_path / "small.onnx"))
    with pytest.raises(SystemExit) as e:
        compile_cli.main([model, "-o", str(tmp_path / "c"), "--profile", "--blas", "none"])
    assert e.value.code == 0
    assert "kProfileNames" in (tmp_path / "c" / "small.hxx").read_text()
    with pytest.raises(SystemExit) as e:
        profile_cli.main([model, "--iters", "0", "--blas", "none"])
    assert e.value.code == 2
    assert "--iters must be at least 1" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        profile_cli.main([str(tmp_path / "missing.onnx")])
    assert e.value.code == 2


def test_run_time_dims_are_declared_outside_the_timed_blocks(tmp_path) -> None:
    """A model with run-time dims: their declarations stay at run()'s top level, so the timed
    blocks are the ops alone (names aligned with the timers); the profile tool, which makes up
    its inputs, refuses such a model instead of feeding it invalid axes."""
    g = helper.make_graph([helper.make_node("ReduceSum", ["x", "axes"], ["y"], name="rs"),
                           helper.make_node("Relu", ["y"], ["z"], name="relu")], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 4]),
                           helper.make_tensor_value_info("axes", TensorProto.INT64, [1])],
                          [helper.make_tensor_value_info("z", TensorProto.FLOAT, None)])
    path = tmp_path / "rt.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)]), path)
    r = build(str(path), str(tmp_path / "out"), name="rt", blas="none", profile=True)
    text = open(r.header).read()
    ops = int(re.search(r"kProfileOps = (\d+);", text).group(1))
    assert ops == len(re.findall(r"profile_seconds_\[\d+\] \+=", text)) == 2
    assert re.search(r'kProfileNames\{\{"rs", "relu"\}\}', text), text
    with pytest.raises(Exception, match="run-time dims"):
        profile(str(path), iters=1)
