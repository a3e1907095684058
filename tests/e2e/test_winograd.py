"""Winograd F(2x2, 3x3) convolution end to end: which convs the lowering gives it, and outputs
against onnxruntime for a small 3x3-conv model and for ResNet-18."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import sofie
from bench.models import export
from sofie.lowering.conv import WINOGRAD_MIN_CHANNELS
from tests.conftest import ort_run


def small_model(path: str) -> str:
    """conv(3->32, pad 1) relu; conv(32->40, pad 1) + bias; conv(40->32, pad 0) relu;
    conv(32->32, pad 1) + residual relu; conv(32->32, pads 1,0,2,1); conv(32->16, stride 2)."""
    rng = np.random.default_rng(0)
    inits, nodes = [], []

    def conv(x, y, c, m, pads, stride=1, bias=True, name=""):
        w = (rng.standard_normal((m, c, 3, 3)) / np.sqrt(9 * c)).astype(np.float32)
        inits.append(numpy_helper.from_array(w, name + "_w"))
        ins = [x, name + "_w"]
        if bias:
            inits.append(numpy_helper.from_array(rng.standard_normal(m).astype(np.float32), name + "_b"))
            ins.append(name + "_b")
        nodes.append(helper.make_node("Conv", ins, [y], kernel_shape=[3, 3], pads=pads, strides=[stride, stride]))

    conv("x", "c0", 3, 32, [1, 1, 1, 1], name="conv0")
    nodes.append(helper.make_node("Relu", ["c0"], ["r0"]))
    conv("r0", "c1", 32, 40, [1, 1, 1, 1], name="conv1")
    conv("c1", "c2", 40, 32, [0, 0, 0, 0], bias=False, name="conv2")
    nodes.append(helper.make_node("Relu", ["c2"], ["r2"]))
    conv("r2", "c3", 32, 32, [1, 1, 1, 1], name="conv3")
    nodes.append(helper.make_node("Add", ["c3", "r2"], ["a3"]))
    nodes.append(helper.make_node("Relu", ["a3"], ["r3"]))
    conv("r3", "c4", 32, 32, [1, 0, 2, 1], name="conv4")
    conv("c4", "y", 32, 16, [1, 1, 1, 1], stride=2, name="conv5")
    g = helper.make_graph(nodes, "wino", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 17, 15])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, path)
    return path


def test_small_model(tmp_path) -> None:
    path = small_model(str(tmp_path / "wino.onnx"))
    m = sofie.compile(path)
    text = open(m.header).read()
    # conv1, conv2, conv3 (with its fused residual) and conv4: C and M >= 32, stride 1
    assert 3 < WINOGRAD_MIN_CHANNELS <= 32
    assert text.count("sofie::rt::conv2d_winograd<2, 3>(") == 4
    assert text.count("sofie::rt::conv2d(") == 1  # conv0 has 3 input channels
    assert text.count("sofie::rt::conv2d_small_n(") == 1  # conv5 has stride 2: 72 GEMM columns
    for n in (1, 3):
        x = np.random.default_rng(n).standard_normal((n, 3, 17, 15)).astype(np.float32)
        np.testing.assert_allclose(m(x)[0], ort_run(path, x)[0], rtol=1e-4, atol=1e-5)


@pytest.fixture(scope="module")
def resnet18(tmp_path_factory) -> str:
    return export("resnet18", str(tmp_path_factory.mktemp("resnet18")))


def test_resnet18_matches_onnxruntime(resnet18: str) -> None:
    m = sofie.compile(resnet18)
    assert open(m.header).read().count("sofie::rt::conv2d_winograd<4, 3>(") > 0
    for n in (1, 2):
        x = np.random.default_rng(n).standard_normal((n, 3, 224, 224)).astype(np.float32)
        y = m(x)[0]
        ref = ort_run(resnet18, x)[0]
        np.testing.assert_allclose(y, ref, rtol=1e-3, atol=1e-4)
        assert np.array_equal(np.argmax(y, 1), np.argmax(ref, 1))


# (r, h, w, m): odd sizes, so the last tile row and column are partial; F(4x4, .) from 48 tiles
# of 4x4 at batch 1 (29 x 27: 8 x 7 tiles), F(2x2, .) below it (9 x 11: 5 x 6 tiles of 2x2)
VARIANTS = [(3, 29, 27, 4), (3, 9, 11, 2), (5, 29, 27, 4), (5, 9, 11, 2)]


def variants_model(path: str) -> str:
    """Per entry of VARIANTS, on its own input x_r_h_w, three r x r convs of that F(m x m, r x r)
    with channel counts that are multiples of nothing: conv(17->19) + bias, relu; conv(19->19, no
    bias) + the relu's output as a residual, relu; conv(19->21, pads top/left only: the output one
    row and column short) + bias, leaky relu. One output per entry."""
    rng = np.random.default_rng(0)
    inits, nodes, inputs, outputs = [], [], [], []

    def conv(x, y, c, m, r, pads, bias=True):
        wt = (rng.standard_normal((m, c, r, r)) / np.sqrt(r * r * c)).astype(np.float32)
        inits.append(numpy_helper.from_array(wt, y + "_w"))
        ins = [x, y + "_w"]
        if bias:
            inits.append(numpy_helper.from_array(rng.standard_normal(m).astype(np.float32), y + "_b"))
            ins.append(y + "_b")
        nodes.append(helper.make_node("Conv", ins, [y], kernel_shape=[r, r], pads=pads, name=y))

    for r, h, w, _ in VARIANTS:
        v, p = f"{r}_{h}_{w}", r // 2
        inputs.append(helper.make_tensor_value_info(f"x_{v}", TensorProto.FLOAT, ["N", 17, h, w]))
        conv(f"x_{v}", f"c0_{v}", 17, 19, r, [p] * 4)
        nodes.append(helper.make_node("Relu", [f"c0_{v}"], [f"r0_{v}"]))
        conv(f"r0_{v}", f"c1_{v}", 19, 19, r, [p] * 4, bias=False)
        nodes.append(helper.make_node("Add", [f"c1_{v}", f"r0_{v}"], [f"a1_{v}"]))
        nodes.append(helper.make_node("Relu", [f"a1_{v}"], [f"r1_{v}"]))
        conv(f"r1_{v}", f"c2_{v}", 19, 21, r, [p, p, p - 1, p - 1])
        nodes.append(helper.make_node("LeakyRelu", [f"c2_{v}"], [f"y_{v}"], alpha=0.1))
        outputs.append(helper.make_tensor_value_info(f"y_{v}", TensorProto.FLOAT, None))
    g = helper.make_graph(nodes, "wino_variants", inputs, outputs, inits)
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def test_each_variant_matches_onnxruntime(tmp_path) -> None:
    path = variants_model(str(tmp_path / "variants.onnx"))
    compiled = sofie.compile(path)
    text = open(compiled.header).read()
    for r, h, w, m in VARIANTS:
        v = f"{r}_{h}_{w}"
        calls = [line for line in text.splitlines() if f"sofie::rt::conv2d_winograd<{m}, {r}>(" in line]
        assert len(calls) == 3 * sum(1 for e in VARIANTS if e[::3] == (r, m)), f"F({m}x{m}, {r}x{r}) calls: {calls}"
        assert f"c0_{v}" in text
    for n in (1, 3):
        rng = np.random.default_rng(n)
        xs = [rng.standard_normal((n, 17, h, w)).astype(np.float32) for _, h, w, _ in VARIANTS]
        got, ref = compiled(*xs), ort_run(path, *xs)
        for (r, _, _, m), y, want in zip(VARIANTS, got, ref):
            assert y.shape == want.shape
            # 6x6 and 8x8 tiles (coefficients up to 8 in F(4x4, 5x5)'s transforms) cost float32
            # a few ulps over im2col; the errors measured are 10x below this
            np.testing.assert_allclose(y, want, rtol=1e-4, atol=2e-5, err_msg=f"F({m}x{m}, {r}x{r}) batch {n}")


def test_small_n_blocks_match_onnxruntime(tmp_path) -> None:
    """Winograd on images of few tiles with many input channels runs its GEMMs through
    gemm_small_n (U packed per point in 48-row panels): 3x3 on 7x7 (16 tiles of 2x2 at batch
    1, 48 at batch 3) and 5x5 on 9x11 (30 tiles; 90 at batch 3: blocks of 64 and 26), 50 output
    channels (a partial panel), bias and a residual + ReLU. 40 input channels stay on the main
    GEMM."""
    rng = np.random.default_rng(7)
    inits, nodes, inputs, outputs = [], [], [], []
    for name, c, r, h, w in [("a", 320, 3, 7, 7), ("b", 256, 5, 9, 11), ("c", 40, 3, 7, 7)]:
        inputs.append(helper.make_tensor_value_info(f"x_{name}", TensorProto.FLOAT, ["N", c, h, w]))
        inputs.append(helper.make_tensor_value_info(f"z_{name}", TensorProto.FLOAT, ["N", 50, h, w]))
        wt = (rng.standard_normal((50, c, r, r)) / np.sqrt(r * r * c)).astype(np.float32)
        inits += [numpy_helper.from_array(wt, f"w_{name}"),
                  numpy_helper.from_array(rng.standard_normal(50).astype(np.float32), f"b_{name}")]
        nodes += [helper.make_node("Conv", [f"x_{name}", f"w_{name}", f"b_{name}"], [f"c_{name}"],
                                   kernel_shape=[r, r], pads=[r // 2] * 4),
                  helper.make_node("Add", [f"c_{name}", f"z_{name}"], [f"s_{name}"]),
                  helper.make_node("Relu", [f"s_{name}"], [f"y_{name}"])]
        outputs.append(helper.make_tensor_value_info(f"y_{name}", TensorProto.FLOAT, None))
    path = str(tmp_path / "small_n.onnx")
    g = helper.make_graph(nodes, "wino_small_n", inputs, outputs, inits)
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), path)
    compiled = sofie.compile(path)
    text = open(compiled.header).read()
    assert text.count("/*U packed for gemm_small_n*/ true") == 2
    assert text.count("/*U packed for gemm_small_n*/ false") == 1
    for n in (1, 3):
        feeds = []
        for c, h, w in [(320, 7, 7), (256, 9, 11), (40, 7, 7)]:
            feeds += [rng.standard_normal((n, c, h, w)).astype(np.float32),
                      rng.standard_normal((n, 50, h, w)).astype(np.float32)]
        for y, want in zip(compiled(*feeds), ort_run(path, *feeds)):
            np.testing.assert_allclose(y, want, rtol=1e-4, atol=2e-5, err_msg=f"batch {n}")
