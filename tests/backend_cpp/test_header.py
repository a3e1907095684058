"""The generated header: readable, SOFIE-compatible, and free of weight literals."""

from __future__ import annotations

import os
import re

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
    assert 'explicit Session(const std::string& weights = "net.dat"' in text
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
