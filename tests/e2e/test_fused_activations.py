"""Fused epilogues end to end: Conv / Gemm followed by every activation the runtime fuses
(with non-default parameters, so a swapped or dropped parameter shows), and Conv + residual
Add + activation on the three conv paths (im2col + GEMM, gemm_small_n for few columns, and
Winograd), against onnxruntime.

All cases are independent subgraphs of ONE model (one C++ build, see test_ops.py). After the
build, the compiled model's op counts must show every activation fused: a case that silently
stayed unfused would still match onnxruntime and test nothing of the epilogue.

Inputs are scaled so pre-activations spread over about [-6, 6]: every piece of every
activation is hit (LeakyRelu/Elu/Selu negative side, Clip at both bounds, HardSigmoid and
HardSwish saturated at both ends). The *_nan cases put a NaN into one input row: onnxruntime
propagates it through every activation, and so must sofie's epilogue (Relu gave 0 and
HardSigmoid 1 before). gemm_alpha_nan_relu: a NaN attribute in the generated C++.

Tolerances: float32, RTOL 1e-4 / ATOL 1e-5 as in test_ops.py (the conv and GEMM sums differ
from onnxruntime's by a few ulps; the activations themselves by ~1 ulp).
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import sofie
from sofie.lowering.conv import WINOGRAD_MIN_CHANNELS
from tests.e2e.test_ops import Suite

RTOL, ATOL = 1e-4, 1e-5
BATCHES = (1, 3)
OPSET = 14  # HardSwish needs 14; Clip takes min/max as inputs since 11 (the opset-13 form)
C = WINOGRAD_MIN_CHANNELS  # channels of the residual convs: enough for Winograd

# name -> (ONNX op, attributes, extra inputs (constants), standalone graph op it must not leave)
ACTIVATIONS = {
    "relu": ("Relu", {}, [], "graph.relu"),
    "leaky_relu": ("LeakyRelu", {"alpha": 0.1}, [], "graph.leaky_relu"),
    "clip": ("Clip", {}, [np.array(-0.5, np.float32), np.array(0.7, np.float32)], "graph.clip"),
    "elu": ("Elu", {"alpha": 0.7}, [], "graph.elu"),
    "hard_sigmoid": ("HardSigmoid", {"alpha": 0.3, "beta": 0.4}, [], "graph.hard_sigmoid"),
    "selu": ("Selu", {}, [], "graph.selu"),
    "selu_params": ("Selu", {"alpha": 1.5, "gamma": 2.5}, [], "graph.selu"),
    "sigmoid": ("Sigmoid", {}, [], "graph.sigmoid"),
    "tanh": ("Tanh", {}, [], "graph.tanh"),
    "hard_swish": ("HardSwish", {}, [], "graph.hard_swish"),
}
STANDALONE = {a[3] for a in ACTIVATIONS.values()} | {"graph.add"}


def _act(s: Suite, name: str, x: str) -> str:
    op, attrs, extra, _ = ACTIVATIONS[name]
    return s.node(op, [x, *(s.init(e) for e in extra)], **attrs)


def _scaled(s: Suite, *shape: int, fan_in: int) -> str:
    """Weights giving pre-activations of standard deviation ~3 for standard normal inputs."""
    rng = np.random.default_rng(len(s.inits) + 7)
    return s.init((rng.standard_normal(shape) * 3 / np.sqrt(fan_in)).astype(np.float32))


def conv(s: Suite, x: str, c: int, m: int, k: int, stride: int = 1, bias: bool = True) -> str:
    ins = [x, _scaled(s, m, c, k, k, fan_in=c * k * k)] + ([_scaled(s, m, fan_in=1)] if bias else [])
    return s.node("Conv", ins, kernel_shape=[k, k], pads=[k // 2] * 4, strides=[stride, stride])


def gemm(s: Suite, x: str, k: int, n: int) -> str:
    return s.node("Gemm", [x, _scaled(s, n, k, fan_in=k), _scaled(s, n, fan_in=1)], transB=1)


def build_suite() -> tuple[Suite, dict[str, str], set[str]]:
    """The suite, the conv path each conv case must take, and the cases with a NaN input."""
    s = Suite("fused_acts", OPSET)
    paths: dict[str, str] = {}
    nan_cases: set[str] = set()
    for a in ACTIVATIONS:
        s.case(f"conv_{a}", lambda s, a=a: _act(s, a, conv(s, s.inp(("N", 3, 12, 11)), 3, 4, 3)))
        paths[f"conv_{a}"] = "im2col"  # 3 input channels, 132 columns
        s.case(f"small_n_{a}", lambda s, a=a: _act(s, a, conv(s, s.inp(("N", 3, 7, 6)), 3, 4, 3)))
        paths[f"small_n_{a}"] = "small_n"  # 42 columns
        s.case(f"gemm_{a}", lambda s, a=a: _act(s, a, gemm(s, s.inp(("N", 8)), 8, 5)))
        s.case(f"gemm_{a}_nan", lambda s, a=a: _act(s, a, gemm(s, s.inp(("N", 8)), 8, 5)))
        nan_cases.add(f"gemm_{a}_nan")
    # a NaN attribute reaches the C++ as a NaN (it was printed `nanf`, the C function: no build)
    s.case("gemm_alpha_nan_relu", lambda s: _act(s, "relu", s.node(
        "Gemm", [s.inp(("N", 8)), _scaled(s, 5, 8, fan_in=8)], transB=1, alpha=float("nan"))))
    # parameters through the Winograd epilogue too
    for a in ("hard_sigmoid", "leaky_relu", "clip"):
        s.case(f"winograd_{a}", lambda s, a=a: _act(s, a, conv(s, s.inp(("N", C, 8, 9)), C, C, 3)))
        paths[f"winograd_{a}"] = "winograd"

    # Conv + residual Add + activation: Add(conv, z) or Add(z, conv), z of the conv's type
    def residual(s: Suite, k: int, stride: int, act: str, z_first: bool, bias: bool = True,
                 h: int = 9, w: int = 8) -> str:
        y = conv(s, s.inp(("N", C, h, w)), C, C, k, stride, bias)
        z = s.inp(("N", C, (h - 1) // stride + 1, (w - 1) // stride + 1))
        return _act(s, act, s.node("Add", [z, y] if z_first else [y, z]))

    for name, k, stride, path, hw in (("winograd_5x5", 5, 1, "winograd", (9, 8)),
                                      ("small_n_stride2", 3, 2, "small_n", (9, 8)),
                                      ("im2col_stride2", 3, 2, "im2col", (25, 24)),
                                      ("winograd", 3, 1, "winograd", (9, 8))):
        s.case(f"residual_{name}_relu", lambda s, k=k, st=stride, hw=hw: residual(s, k, st, "relu", False, True, *hw))
        s.case(f"residual_{name}_relu_z_first",
               lambda s, k=k, st=stride, hw=hw: residual(s, k, st, "relu", True, False, *hw))
        s.case(f"residual_{name}_hard_sigmoid",
               lambda s, k=k, st=stride, hw=hw: residual(s, k, st, "hard_sigmoid", False, True, *hw))
        for suffix in ("relu", "relu_z_first", "hard_sigmoid"):
            paths[f"residual_{name}_{suffix}"] = path
    return s, paths, nan_cases


SUITE, PATHS, NAN_CASES = build_suite()


@pytest.fixture(scope="module")
def compiled() -> sofie.CompiledModel:
    return sofie.compile(SUITE.model(), name="fused_acts")


@pytest.fixture(scope="module")
def results(compiled) -> dict[str, dict[int, tuple[np.ndarray, np.ndarray]]]:
    """{case: {batch: (sofie, onnxruntime)}} for every case at every batch."""
    import onnxruntime as ort
    proto = SUITE.model()
    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    out_names = [o.name for o in proto.graph.output]
    nan_inputs = {n for n in SUITE.feed_specs if n.split(".")[0] in NAN_CASES}
    res: dict[str, dict[int, tuple]] = {c: {} for c in SUITE.cases}
    for batch in BATCHES:
        feeds = SUITE.feeds(batch, seed=batch)
        for n in nan_inputs:
            feeds[n][0, batch % feeds[n].shape[1]] = np.nan  # one NaN: row 0 of the output is NaN
        got = compiled(*[feeds[i[0]] for i in compiled.inputs])
        ref = sess.run(None, feeds)
        assert len(got) == len(ref) == len(out_names), f"{len(got)} outputs, onnxruntime {len(ref)}"
        for name, g, r in zip(out_names, got, ref, strict=True):
            res[name][batch] = (g, r)
    return res


def test_every_activation_and_residual_is_fused(compiled) -> None:
    ops = compiled.stats["ops"]
    left = {k: v for k, v in ops.items() if k in STANDALONE}
    assert not left, f"not fused into their Conv / Gemm: {left}"
    n_conv = sum(1 for c in SUITE.cases if c in PATHS)
    assert ops.get("graph.conv") == n_conv and ops.get("graph.gemm") == 2 * len(ACTIVATIONS) + 1, ops


def test_each_conv_takes_the_path_it_claims(compiled) -> None:
    text = open(compiled.header).read()
    paths = list(PATHS.values())
    assert text.count("sofie::rt::conv2d_winograd<") == paths.count("winograd")
    assert text.count("sofie::rt::conv2d(") == paths.count("im2col")
    assert text.count("sofie::rt::conv2d_small_n(") == paths.count("small_n")
    # every epilogue reaches the generated code as a lambda spelled from its scalar body, but
    # ReLU and Clip, which are the runtime's functors (the GEMM kernels apply them in registers)
    assert "sofie::rt::relu([] {})" in text
    assert re.search(r"sofie::rt::clip\(-0\.5f, 0\.69999\d*f, \[\] \{\}\)", text)  # 0.7 in float32
    assert text.count("[](float x0) SOFIE_EPILOGUE_INLINE {") >= len(ACTIVATIONS) - 2, text.count("[](float x0)")


@pytest.mark.parametrize("case", SUITE.cases)
def test_fused_case_matches_onnxruntime(results, case: str) -> None:
    per_batch = results[case]
    assert sorted(per_batch) == sorted(BATCHES), f"{case}: compared at batches {sorted(per_batch)}"
    for batch, (got, ref) in per_batch.items():
        assert got.shape == ref.shape, f"{case}: shape {got.shape} != onnxruntime {ref.shape}"
        if case in NAN_CASES:
            assert np.isnan(ref[0]).all() and not np.isnan(ref[1:]).any(), "the NaN did not reach row 0"
        if case == "gemm_alpha_nan_relu":
            assert np.isnan(ref).all()
        np.testing.assert_allclose(got, ref, rtol=RTOL, atol=ATOL, err_msg=f"{case} batch {batch}")


def test_suite_is_what_it_claims() -> None:
    """Every activation appears after a Conv, a Gemm (with a NaN) and each residual path."""
    assert set(SUITE.cases) == set(PATHS) | {f"gemm_{a}{n}" for a in ACTIVATIONS for n in ("", "_nan")} | {
        "gemm_alpha_nan_relu"}
    assert {"im2col", "small_n", "winograd"} == set(PATHS.values())
