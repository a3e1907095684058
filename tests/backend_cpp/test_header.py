"""The generated header: readable, SOFIE-compatible, and free of weight literals."""

from __future__ import annotations

import os
import re
import subprocess

import onnx
import pytest
from onnx import TensorProto, helper

from sofie.backend_cpp.emit import emit
from sofie.frontends.onnx import load_onnx
from sofie.pipeline import DEFAULT_PIPELINE, run_pipeline


def generate(model_dir: str, name: str, out: str) -> str:
    m = load_onnx(os.path.join(model_dir, name + ".onnx"), name="net")
    low, _ = run_pipeline(m, DEFAULT_PIPELINE)
    e = emit(low, out, blas="none", source=name + ".onnx")
    return open(e.header).read()


def test_interface_and_readability(model_dir: str, tmp_path) -> None:
    text = generate(model_dir, "resnet_small", str(tmp_path))
    assert "namespace TMVA_SOFIE_net {" in text
    # the Session skeleton is sofie::rt::SessionBase; the header gives the model's constants
    assert "class Session : public sofie::rt::SessionBase<Model> {" in text
    assert 'static constexpr const char* kDefaultWeightsPath = "net.dat";' in text
    # classic include guards named for the model and its text: copies of one header (each
    # distributed-RDataFrame worker's folder) are read once, and #pragma once would not do that
    guard = re.search(r"^#ifndef (SOFIE_MODEL_NET_HXX_[0-9A-F]{16})\n#define \1$", text, re.M)
    assert guard and text.rstrip().endswith(f"#endif  // {guard.group(1)}")
    assert "#pragma once" not in text
    assert "std::vector<float> infer(const float* x)" in text
    assert "void infer(std::size_t batch, const float* x, float* out0)" in text
    # one block per op, each naming its ONNX node
    assert re.search(r"\{  // /stem/stem\.0/Conv \(low\.conv2d", text) or "// /stem" in text
    blocks = re.findall(r"^  \{  // (\S+) \(low\.", text, re.M)
    assert len(blocks) >= 8 and all(b.startswith("/") for b in blocks)
    # weights live in the .dat: no numeric literal lists in the header
    assert not re.search(r"(-?\d+\.\d+f?,\s*){8,}", text)
    assert len(text) < 40_000


def test_weights_file_is_written_beside_header(model_dir: str, tmp_path) -> None:
    generate(model_dir, "mlp_5x200", str(tmp_path))
    dat = tmp_path / "net.dat"
    assert dat.read_bytes()[:8] == b"SOFIEDAT"
    assert dat.stat().st_size >= 5 * 200 * 201 * 4
    assert (tmp_path / "sofie_rt" / "sofie_rt.hxx").is_file()


def relu_model(shape: list) -> onnx.ModelProto:
    x, y = (helper.make_tensor_value_info(n, TensorProto.FLOAT, shape) for n in "xy")
    g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"], name="relu")], "g", [x], [y])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize("shape, batching, slices", [
    (["N", 3], "Chunked", "[&](std::size_t done, std::size_t b) {\n      run(b, x + done * 3, out0 + done * 3);"),
    # a symbol off axis 0 is a dim of each call (at most its maximum), not the batch
    ([3, "N"], "Fixed", "[&](std::size_t, std::size_t b) {\n      run(b, d_N, x, out0);"),
    ([2, 3], "Fixed", "[&](std::size_t, std::size_t b) {\n      run(b, x, out0);"),
])
def test_batching_follows_where_the_batch_sits(tmp_path, shape: list, batching: str, slices: str) -> None:
    """Slices start past event 0 only when the batch is axis 0 of every input and output."""
    m = load_onnx(relu_model(shape), name="net")
    low, _ = run_pipeline(m, DEFAULT_PIPELINE)
    text = open(emit(low, str(tmp_path), blas="none").header).read()
    assert f"static constexpr sofie::rt::Batching kBatching = sofie::rt::Batching::{batching};" in text
    assert f"    for_each_chunk(batch, {slices}\n    }});" in text


def test_build_system_can_pin_the_default_weights_path(tmp_path) -> None:
    """SOFIE_<NAME>_WEIGHTS (what sofie_add_model defines) replaces "NAME.dat" as Session()'s file;
    without it, a plain g++ build keeps "NAME.dat", read from the working directory."""
    m = load_onnx(relu_model(["N", 3]), name="net")
    low, _ = run_pipeline(m, DEFAULT_PIPELINE)
    emit(low, str(tmp_path), blas="none")
    main = tmp_path / "main.cpp"
    main.write_text('#include "net.hxx"\n#include <cstdio>\n'
                    "int main() { std::puts(TMVA_SOFIE_net::Model::kDefaultWeightsPath); }\n")
    printed = []
    for defines in ([], ['-DSOFIE_net_WEIGHTS="/abs/where/net.dat"']):
        exe = tmp_path / f"main{len(defines)}"
        r = subprocess.run(["g++", "-std=c++17", "-I", str(tmp_path), *defines, str(main), "-o", str(exe)],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        printed.append(subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.strip())
    assert printed == ["net.dat", "/abs/where/net.dat"]
