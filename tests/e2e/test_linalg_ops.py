"""Batched MatMul, Einsum, Resize and Upsample against onnxruntime, in the pattern of
`test_ops.py`: every case an independent subgraph of one model per opset group, compiled once
per configuration, run at two sizes of the symbolic batch "N", one test per case.

Einsum runs twice: -O0 keeps every Einsum a loop nest, the default pipeline turns the
contractions into Transpose/Reshape + MatMul. Tolerances as in test_ops (float32 GEMMs and
interpolation sum in another order than onnxruntime).
"""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

import sofie
from sofie.frontends.onnx import load_onnx
from tests.e2e.test_ops import ATOL, BATCHES, RTOL, Suite, f32, i64


def suite_linalg() -> Suite:
    s = Suite("linalg19", 19)
    rng = np.random.default_rng(11)

    def w(*shape):
        return rng.standard_normal(shape).astype(np.float32)

    # MatMul: batch dims on both sides, broadcast, 1-D operands, symbolic batch
    s.op("matmul_attention_qk", "MatMul", [("N", 7, 8), ("N", 8, 7)])
    s.op("matmul_attention_4d", "MatMul", [("N", 2, 5, 4), ("N", 2, 4, 6)])
    s.op("matmul_bcast_both", "MatMul", [(2, 1, 4, 3, 5), (3, 1, 5, 2)])
    s.op("matmul_bcast_a_2d", "MatMul", [(4, 5), ("N", 5, 3)])
    s.op("matmul_1d_batched", "MatMul", [(5,), ("N", 5, 3)])
    s.op("matmul_batched_1d", "MatMul", [("N", 2, 3, 4), (4,)])
    s.op("matmul_b_unit_batch", "MatMul", [("N", 3, 4), w(1, 4, 6)])
    s.op("matmul_const_batched_b", "MatMul", [(3, 2, 4), w(3, 4, 5)])
    s.case("matmul_relu_epilogue", lambda s: s.node("Relu", [s.node("MatMul", [s.inp(("N", 3, 4)),
                                                                             s.inp(("N", 4, 5))])]))

    # Einsum: what exporters emit and the node tests' equations
    for tag, eq, shapes in [
            ("batch_matmul", "bij,bjk->bik", [("N", 2, 3), ("N", 3, 4)]),
            ("attention_qk", "bhqd,bhkd->bhqk", [("N", 2, 3, 4), ("N", 2, 5, 4)]),
            ("attention_av", "bhqk,bhkd->bqhd", [("N", 2, 3, 5), ("N", 2, 5, 4)]),
            ("linear", "ij,kj->ik", [(3, 4), (5, 4)]),
            ("inner", "i,i", [(6,), (6,)]),
            ("outer", "i,j->ij", [(3,), (4,)]),
            ("implicit", "ij,jk", [(3, 4), (4, 2)]),
            ("ellipsis_matmul", "...ij,...jk->...ik", [("N", 3, 4), ("N", 4, 2)]),
            ("ellipsis_bcast", "...ij,...jk->...ik", [(2, 3, 4), (1, 4, 5)]),
            ("transpose", "ij->ji", [(3, 4)]),
            ("sum_rows", "ij->i", [("N", 4)]),
            ("sum_all", "ij->", [(3, 4)]),
            ("batch_diagonal", "...ii->...i", [("N", 4, 4)]),
            ("trace", "ii", [(5, 5)]),
            ("three_operands", "bn,anm,bm->ba", [(2, 3), (4, 3, 5), (2, 5)]),
            ("sum_in_one_operand", "ijk,jl->il", [(2, 3, 4), (3, 5)])]:
        s.case(f"einsum_{tag}", lambda s, eq=eq, shapes=shapes: s.node(
            "Einsum", [s.inp(sh) for sh in shapes], equation=eq))

    # Resize: modes, coordinate transformations, scales or sizes, axes, aspect-ratio policies
    x = ("N", 2, 5, 6)
    up, down = f32(1, 1, 2, 3), f32(1, 1, 0.6, 0.5)
    for m in ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil"):
        for ctm in ("half_pixel", "asymmetric", "align_corners"):
            # whole output lengths: align_corners differs between onnxruntime and ONNX otherwise
            s.op(f"resize_nearest_{m}_{ctm}", "Resize", [x, "", f32(1, 1, 1.6, 2.5)], mode="nearest",
                 nearest_mode=m, coordinate_transformation_mode=ctm)
    for mode in ("linear", "cubic"):
        for ctm in ("half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric", "half_pixel_symmetric"):
            s.op(f"resize_{mode}_up_{ctm}", "Resize", [x, "", up], mode=mode, coordinate_transformation_mode=ctm)
            s.op(f"resize_{mode}_down_{ctm}", "Resize", [x, "", down], mode=mode,
                 coordinate_transformation_mode=ctm)
    s.op("resize_cubic_a_exclude", "Resize", [x, "", f32(1, 1, 1.5, 0.7)], mode="cubic", cubic_coeff_a=-0.5,
         exclude_outside=1)
    s.op("resize_linear_antialias", "Resize", [x, "", down], mode="linear", antialias=1)
    s.op("resize_cubic_antialias", "Resize", [x, "", down], mode="cubic", antialias=1)
    s.op("resize_sizes_linear", "Resize", [(2, 2, 5, 6), "", "", i64(2, 2, 9, 4)], mode="linear")
    s.op("resize_sizes_axes", "Resize", [x, "", "", i64(4, 11)], mode="nearest", axes=[3, 2])
    s.op("resize_scales_axes", "Resize", [x, "", f32(2.0, 0.5)], mode="linear", axes=[2, 3])
    s.op("resize_not_larger", "Resize", [x, "", "", i64(8, 8)], axes=[2, 3], keep_aspect_ratio_policy="not_larger")
    s.op("resize_not_smaller", "Resize", [x, "", "", i64(8, 8)], mode="linear", axes=[2, 3],
         keep_aspect_ratio_policy="not_smaller")
    s.op("resize_tf_crop", "Resize", [x, f32(0.2, 0.3, 0.9, 0.8), "", i64(4, 4)], mode="linear", axes=[2, 3],
         coordinate_transformation_mode="tf_crop_and_resize")
    s.op("resize_tf_crop_extrapolate", "Resize", [x, f32(-0.3, 0.4, 1.2, 1.5), "", i64(4, 5)], axes=[2, 3],
         mode="linear", coordinate_transformation_mode="tf_crop_and_resize", extrapolation_value=-3.5)
    s.op("resize_tf_crop_static", "Resize", [(2, 2, 5, 6), f32(0, 0, 0.2, 0.3, 1, 1, 0.9, 0.8), "", i64(2, 2, 4, 4)],
         mode="cubic", coordinate_transformation_mode="tf_crop_and_resize")
    s.op("resize_3d_trilinear", "Resize", [(2, 3, 4, 5, 3), "", f32(1, 1, 2, 1.5, 2)], mode="linear")
    s.op("resize_1d_channel_axis", "Resize", [(2, 4, 6), "", f32(1, 0.5, 2)], mode="linear")
    s.op("resize_identity", "Resize", [x, "", f32(1, 1, 1, 1)], mode="linear")
    def sizes_from_shape(s: Suite) -> str:  # how PyTorch exports interpolate(size=...)
        x = s.inp(("N", 2, 5, 6))
        sizes = s.node("Concat", [s.node("Shape", [x], end=2), s.init(i64(10, 4))], axis=0)
        return s.node("Resize", [x, "", "", sizes], mode="linear")
    s.case("resize_sizes_from_shape", sizes_from_shape)
    # U-Net decoders: 2x nearest and bilinear upsampling of a batch of feature maps
    s.op("resize_unet_nearest_2x", "Resize", [("N", 4, 8, 8), "", f32(1, 1, 2, 2)], mode="nearest")
    s.op("resize_unet_bilinear_2x", "Resize", [("N", 4, 8, 8), "", f32(1, 1, 2, 2)], mode="linear")
    s.op("resize_unet_bilinear_align", "Resize", [("N", 4, 8, 8), "", "", i64(16, 16)], axes=[2, 3],
         mode="linear", coordinate_transformation_mode="align_corners")
    return s


def suite_legacy() -> Suite:
    """Upsample (opset 9: scales an input) and Resize-10: asymmetric, nearest floors."""
    s = Suite("linalg9", 9)
    s.op("upsample9_nearest", "Upsample", [("N", 2, 3, 4), f32(1, 1, 2, 3)], mode="nearest")
    s.op("upsample9_linear", "Upsample", [("N", 2, 3, 4), f32(1, 1, 2, 2.5)], mode="linear")
    return s


def suite_resize10() -> Suite:
    s = Suite("linalg10", 10)
    s.op("resize10_nearest_up", "Resize", [("N", 2, 3, 4), f32(1, 1, 2, 3)], mode="nearest")
    s.op("resize10_linear", "Resize", [("N", 2, 3, 4), f32(1, 1, 1.5, 2.5)], mode="linear")
    return s


def suite_upsample7() -> Suite:
    s = Suite("linalg7", 7)
    s.op("upsample7_nearest_attr", "Upsample", [("N", 2, 3, 4)], mode="nearest", scales=[1.0, 1.0, 2.0, 2.0])
    return s


SUITES = {"linalg19": suite_linalg, "linalg9": suite_legacy, "linalg10": suite_resize10, "linalg7": suite_upsample7}
CONFIGS = {"linalg19": ["O0", "default"], "linalg9": ["default"], "linalg10": ["default"], "linalg7": ["default"]}
_CACHE: dict[str, Suite] = {}
_RESULTS: dict[tuple[str, str], dict] = {}


def _suite(name: str) -> Suite:
    if name not in _CACHE:
        _CACHE[name] = SUITES[name]()
    return _CACHE[name]


def _results(name: str, passes: str) -> dict[str, dict[int, tuple[np.ndarray, np.ndarray]]]:
    key = (name, passes)
    if key not in _RESULTS:
        s = _suite(name)
        proto = s.model()
        m = sofie.compile(proto, name=name, passes=[] if passes == "O0" else None)
        sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
        order = [i[0] for i in m.inputs]
        out_names = [o.name for o in proto.graph.output]
        res: dict[str, dict[int, tuple]] = {c: {} for c in s.cases}
        for batch in BATCHES:
            feeds = s.feeds(batch, seed=batch)
            for name_, g, r in zip(out_names, m(*[feeds[n] for n in order]), sess.run(None, feeds), strict=True):
                res[name_][batch] = (g, r)
        _RESULTS[key] = res
    return _RESULTS[key]


def _params():
    for name, passes_list in CONFIGS.items():
        for passes in passes_list:
            for c in _suite(name).cases:
                yield pytest.param(name, passes, c, id=f"{name}-{passes}-{c}")


@pytest.mark.parametrize("suite_name,passes,case", list(_params()))
def test_linalg_op_matches_onnxruntime(suite_name: str, passes: str, case: str) -> None:
    per_batch = _results(suite_name, passes)[case]
    assert sorted(per_batch) == sorted(BATCHES), f"{case}: compared at batches {sorted(per_batch)}"
    for batch, (got, ref) in per_batch.items():
        assert got.shape == ref.shape, f"{case}: shape {got.shape} != onnxruntime {ref.shape}"
        np.testing.assert_allclose(got, ref, rtol=RTOL, atol=ATOL, err_msg=f"{case} batch {batch}")


def test_einsum_contractions_become_matmuls() -> None:
    """The default pipeline leaves no Einsum that is a matrix product (they would run as loops)."""
    s = _suite("linalg19")
    from sofie.pipeline import GRAPH_PIPELINE, run_pipeline
    graph, _ = run_pipeline(load_onnx(s.model()), GRAPH_PIPELINE)
    left = {op.loc for op in graph.main.ops if op.name == "graph.einsum"}
    assert {loc.split(".")[0] for loc in left} == {
        "einsum_transpose", "einsum_sum_rows", "einsum_sum_all", "einsum_batch_diagonal", "einsum_trace",
        "einsum_three_operands", "einsum_sum_in_one_operand", "einsum_ellipsis_bcast"}


# ---- errors --------------------------------------------------------------------------------

def _model(node: onnx.NodeProto, inputs: list[tuple[str, tuple]], inits: list[tuple[str, np.ndarray]],
           opset: int = 19) -> onnx.ModelProto:
    ins = [helper.make_tensor_value_info(n, TensorProto.FLOAT, list(s)) for n, s in inputs]
    g = helper.make_graph([node], "err", ins, [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                          [onnx.numpy_helper.from_array(a, n) for n, a in inits])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


def test_resize_scales_at_run_time_is_refused() -> None:
    node = helper.make_node("Resize", ["x", "", "scales"], ["y"], name="up")
    m = _model(node, [("x", (1, 2, 3, 4)), ("scales", (4,))], [])
    with pytest.raises(sofie.SofieError, match=r"graph.resize \(node 'up'\).*scales.*compile time"):
        load_onnx(m)


def test_resize_of_a_symbolic_axis_is_refused() -> None:
    node = helper.make_node("Resize", ["x", "", "scales"], ["y"], name="up")
    m = _model(node, [("x", ("N", 2, 3))], [("scales", f32(2, 1, 1))])
    with pytest.raises(sofie.SofieError, match=r"node 'up'.*axis 0 \(N\).*must be static"):
        load_onnx(m)


def test_resize_bad_mode_is_refused() -> None:
    node = helper.make_node("Resize", ["x", "", "scales"], ["y"], name="up", mode="bicubic")
    m = _model(node, [("x", (1, 2, 3, 4))], [("scales", f32(1, 1, 2, 2))])
    with pytest.raises(sofie.SofieError, match=r"node 'up'.*mode 'bicubic' is not one of nearest"):
        load_onnx(m)


def test_resize_scales_length_is_checked() -> None:
    node = helper.make_node("Resize", ["x", "", "scales"], ["y"], name="up")
    m = _model(node, [("x", (1, 2, 3, 4))], [("scales", f32(2, 2))])
    with pytest.raises(sofie.SofieError, match=r"node 'up'.*scales has shape \[2\], expected \[4\]"):
        load_onnx(m)


def test_einsum_bad_equation_is_refused() -> None:
    node = helper.make_node("Einsum", ["x", "z"], ["y"], name="e", equation="ij,jk->il")
    m = _model(node, [("x", (2, 3)), ("z", (3, 4))], [])
    with pytest.raises(sofie.SofieError, match=r"node 'e'.*output labels"):
        load_onnx(m)


def test_einsum_label_sizes_must_agree() -> None:
    node = helper.make_node("Einsum", ["x", "z"], ["y"], name="e", equation="ij,jk->ik")
    m = _model(node, [("x", (2, 3)), ("z", (4, 5))], [])
    with pytest.raises(sofie.SofieError, match=r"node 'e'.*label 'j' is 3 in one place and 4"):
        load_onnx(m)


def test_matmul_inner_dims_must_agree() -> None:
    node = helper.make_node("MatMul", ["x", "z"], ["y"], name="mm")
    m = _model(node, [("x", ("N", 2, 3)), ("z", ("N", 4, 5))], [])
    with pytest.raises(sofie.SofieError, match=r"node 'mm'.*inner dimensions differ"):
        load_onnx(m)
