"""Spatial ops against onnxruntime: GridSample (opset 16 and 20; every mode x padding_mode x
align_corners, 1-3 spatial dims, grid points well outside [-1, 1]), Col2Im, MaxUnpool, RoiAlign,
DeformConv and MaxPool's Indices output (storage_order, pads, strides, dilations, ceil_mode,
ties), as independent cases of one model per suite, compiled once (the pattern of test_ops.py).

Where onnxruntime has no kernel (1-D GridSample), answers arbitrarily (grid points near
float overflow) or follows another rule than
the ONNX specification's reference (MaxUnpool with output_shape: the reference pads the unpooled
image, onnxruntime indexes the larger one), the ONNX reference evaluator is the reference.
Cases whose inputs are all initializers fold at compile time through the numpy references.

Tolerances: float32 RTOL 1e-4 / ATOL 1e-5 as in test_ops (interpolation weights and sums in
another order); float64 1e-10 (1e-5 for GridSample: the reference evaluator computes its points in float32);
indices exactly.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

import sofie
from tests.e2e.test_ops import Suite, f32, i64

RTOL, ATOL = 1e-4, 1e-5
BATCHES = (1, 3)
GRID_MODES = ("linear", "nearest", "cubic")
PADDINGS = ("zeros", "border", "reflection")


def _two(s: Suite, name: str, build) -> None:
    """A case with two outputs (values and i64 indices): cases `name` and `name.indices`."""
    s._case = name
    values, indices = build(s)
    s.output(name, values)
    s.output(name + ".indices", indices, TensorProto.INT64)
    s.cases += [name, name + ".indices"]


def _grid(s: Suite, shape: tuple, scale: float = 1.3) -> str:
    """A runtime grid of normalized points, many outside [-1, 1] (standard normal times scale)."""
    return s.node("Mul", [s.inp(shape), s.init(f32(scale))])


def _grid_cases(s: Suite, modes: dict[str, str]) -> None:
    for mode, onnx_mode in modes.items():
        for pad in PADDINGS:
            for ac in (0, 1):
                s.case(f"grid_{mode}_{pad}_ac{ac}", lambda s, m=onnx_mode, p=pad, a=ac: s.node(
                    "GridSample", [s.inp(("N", 3, 5, 6)), _grid(s, ("N", 4, 7, 2))], mode=m, padding_mode=p,
                    align_corners=a))


def suite20() -> Suite:
    s = Suite("spatial20", 20)
    rng = np.random.default_rng(11)
    _grid_cases(s, {m: m for m in GRID_MODES})
    # volumetric; one image row or column (a size-1 axis: align_corners maps every point to 0)
    for mode in ("linear", "nearest"):
        for ac in (0, 1):
            s.case(f"grid3d_{mode}_ac{ac}", lambda s, m=mode, a=ac: s.node(
                "GridSample", [s.inp(("N", 2, 3, 4, 5)), _grid(s, ("N", 2, 3, 4, 3))], mode=m, align_corners=a))
        s.case(f"grid3d_{mode}_reflection", lambda s, m=mode: s.node(
            "GridSample", [s.inp(("N", 2, 3, 4, 5)), _grid(s, ("N", 2, 3, 4, 3), 2.5)], mode=m,
            padding_mode="reflection"))
    for ac in (0, 1):
        s.case(f"grid_single_row_ac{ac}", lambda s, a=ac: s.node(
            "GridSample", [s.inp(("N", 2, 1, 6)), _grid(s, ("N", 3, 4, 2))], align_corners=a, padding_mode="border"))
    s.case("grid_far_reflection", lambda s: s.node(
        "GridSample", [s.inp(("N", 2, 4, 5)), _grid(s, ("N", 5, 6, 2), 4.0)], padding_mode="reflection"))
    s.case("grid_cubic_far_border", lambda s: s.node(
        "GridSample", [s.inp(("N", 2, 4, 5)), _grid(s, ("N", 5, 6, 2), 3.0)], mode="cubic", padding_mode="border"))
    # exact edge and corner coordinates, and points just outside
    edges = np.array([-1.0, 1.0, -1.02, 1.02, 0.0, -0.999, 0.5], np.float32)
    gx, gy = np.meshgrid(edges, edges)
    edge_grid = np.stack([gx, gy], -1)[None].astype(np.float32)
    for mode in GRID_MODES:
        for pad in PADDINGS:
            s.case(f"grid_edges_{mode}_{pad}", lambda s, m=mode, p=pad: s.node(
                "GridSample", [s.inp((1, 2, 4, 5)), s.init(edge_grid)], mode=m, padding_mode=p))
    # an infinite pixel: padded taps of the points near it must add 0, not 0 * inf
    x_inf = np.random.default_rng(3).standard_normal((1, 2, 4, 5)).astype(np.float32)
    x_inf[0, :, 0, 0] = np.inf
    g_inf = f32(-1.2, -1.3, -1.1, 0.2, 0.3, -1.25, 1.3, 1.2).reshape(1, 1, 4, 2)
    for mode in GRID_MODES:
        s.case(f"grid_inf_pixel_{mode}", lambda s, m=mode: s.node(
            "GridSample", [s.init(x_inf), s.inp((1, 1, 4, 2))], mode=m))
        s.case(f"grid_inf_pixel_folded_{mode}", lambda s, m=mode: s.node(
            "GridSample", [s.init(x_inf), s.init(g_inf)], mode=m))
    # folded at compile time (numpy reference)
    x_const = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)
    g_const = (rng.standard_normal((2, 3, 6, 2)) * 1.4).astype(np.float32)
    for mode in GRID_MODES:
        for pad in PADDINGS:
            s.case(f"grid_folded_{mode}_{pad}", lambda s, m=mode, p=pad: s.node(
                "GridSample", [s.init(x_const), s.init(g_const)], mode=m, padding_mode=p, align_corners=1))

    # Col2Im: plain, pads, strides, dilations, everything, folded
    def col2im(name, image, block, c=2, **attrs):
        nd = len(image)
        pads = attrs.get("pads", [0] * 2 * nd)
        strides = attrs.get("strides", [1] * nd)
        dil = attrs.get("dilations", [1] * nd)
        blocks = [(image[i] + pads[i] + pads[i + nd] - dil[i] * (block[i] - 1) - 1) // strides[i] + 1
                  for i in range(nd)]
        shape = ("N", c * int(np.prod(block)), int(np.prod(blocks)))
        s.case(name, lambda s: s.node("Col2Im", [s.inp(shape), s.init(i64(*image)), s.init(i64(*block))], **attrs))
    col2im("col2im", [5, 5], [2, 3])
    col2im("col2im_pads", [4, 6], [3, 3], pads=[1, 0, 2, 1])
    col2im("col2im_strides", [7, 6], [3, 2], strides=[2, 3])
    col2im("col2im_dilations", [6, 7], [2, 3], dilations=[2, 2])
    col2im("col2im_all", [8, 7], [3, 2], c=3, pads=[1, 2, 0, 1], strides=[2, 1], dilations=[2, 3])
    s.case("col2im_folded", lambda s: s.node("Col2Im", [s.init(rng.standard_normal((1, 12, 12)).astype(np.float32)),
                                                        s.init(i64(4, 5)), s.init(i64(2, 2))], strides=[1, 1]))

    # MaxPool with Indices: storage orders, pads, strides, dilations, ceil_mode, 1-D, 3-D, ties
    def maxpool(name, shape, kind="normal", **attrs):
        def build(s):
            x = s.inp(shape)
            if kind == "ties":
                x = s.node("Floor", [x])
            return s.node("MaxPool", [x], n_out=2, **attrs)
        _two(s, name, build)
    for so in (0, 1):
        maxpool(f"maxpool_idx_so{so}", ("N", 3, 6, 7), kernel_shape=[2, 2], storage_order=so)
        maxpool(f"maxpool_idx_pads_so{so}", ("N", 2, 5, 6), kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[2, 2],
                storage_order=so)
        maxpool(f"maxpool_idx_ceil_so{so}", ("N", 2, 7, 6), kernel_shape=[2, 3], strides=[2, 2], ceil_mode=1,
                storage_order=so)
        maxpool(f"maxpool_idx_3d_so{so}", ("N", 2, 4, 5, 6), kernel_shape=[2, 2, 3], pads=[0, 1, 1, 1, 0, 1],
                storage_order=so)
    maxpool("maxpool_idx_dilations", ("N", 2, 7, 8), kernel_shape=[2, 3], dilations=[2, 2], pads=[1, 1, 1, 1])
    maxpool("maxpool_idx_1d", ("N", 3, 9), kernel_shape=[3], strides=[2], pads=[1, 1])
    maxpool("maxpool_idx_same_upper", ("N", 2, 5, 7), kernel_shape=[3, 2], auto_pad="SAME_UPPER", strides=[2, 2])
    maxpool("maxpool_idx_ties", ("N", 2, 6, 6), kind="ties", kernel_shape=[3, 3], strides=[1, 1])
    _two(s, "maxpool_idx_folded", lambda s: s.node(
        "MaxPool", [s.init(rng.standard_normal((2, 2, 5, 6)).astype(np.float32))], n_out=2, kernel_shape=[2, 3],
        pads=[1, 1, 0, 1], storage_order=1))

    # MaxUnpool of a MaxPool's output (no output_shape; with it see suite_reference)
    def unpool(name, shape, **attrs):
        def build(s):
            y, idx = s.node("MaxPool", [s.inp(shape)], n_out=2, **attrs)
            return s.node("MaxUnpool", [y, idx], **attrs)
        s.case(name, build)
    unpool("maxunpool_2d", ("N", 3, 6, 8), kernel_shape=[2, 2], strides=[2, 2])
    unpool("maxunpool_overlapping", ("N", 2, 7, 7), kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    unpool("maxunpool_1d", ("N", 2, 9), kernel_shape=[3], strides=[3])
    unpool("maxunpool_3d", ("N", 2, 4, 4, 6), kernel_shape=[2, 2, 2], strides=[2, 2, 2])

    # RoiAlign: boxes inside, across and outside the image, degenerate, every mode and transform
    rois = f32(0.0, 0.0, 8.0, 7.0, 1.5, 2.2, 5.3, 6.1, -2.0, -1.0, 3.0, 4.0, 6.0, 5.0, 12.0, 11.0,
               3.0, 3.0, 3.0, 3.0, 2.5, 1.0, 1.7, 4.0, 7.0, 6.5, 1.0, 0.5).reshape(7, 4)
    batch = i64(0, 1, 1, 0, 1, 0, 1)  # the last two boxes are inverted
    for mode in ("avg", "max"):
        for ctm in ("half_pixel", "output_half_pixel"):
            for ratio in (0, 2):
                s.case(f"roialign_{mode}_{ctm}_ratio{ratio}", lambda s, m=mode, c=ctm, r=ratio: s.node(
                    "RoiAlign", [s.inp((2, 3, 8, 9)), s.init(rois), s.init(batch)], mode=m,
                    coordinate_transformation_mode=c, sampling_ratio=r, output_height=3, output_width=4))
    s.case("roialign_scaled", lambda s: s.node(
        "RoiAlign", [s.inp((2, 2, 10, 12)), s.init(rois * 2), s.init(batch)], spatial_scale=0.5,
        output_height=2, output_width=5))

    # DeformConv: groups, offset groups, mask, bias, pads, strides, dilations
    def deform(name, x, w_shape, out, og=1, mask=True, bias=True, **attrs):
        taps = w_shape[2] * w_shape[3]

        def build(s):
            ins = [s.inp(x), s.weight(*w_shape), s.inp(("N", og * taps * 2, *out))]
            ins.append(s.weight(w_shape[0]) if bias else "")
            if mask:
                ins.append(s.node("Sigmoid", [s.inp(("N", og * taps, *out))]))
            while ins[-1] == "":
                ins.pop()
            return s.node("DeformConv", ins, offset_group=og, **attrs)
        s.case(name, build)
    deform("deform_plain", ("N", 2, 5, 6), (3, 2, 3, 3), (3, 4), mask=False, bias=False)
    deform("deform_mask_bias", ("N", 2, 5, 6), (3, 2, 3, 3), (3, 4))
    deform("deform_pads_strides", ("N", 3, 7, 8), (4, 3, 3, 2), (4, 3), pads=[1, 1, 1, 0], strides=[2, 3])
    deform("deform_dilations", ("N", 2, 8, 8), (2, 2, 2, 3), (6, 4), dilations=[2, 2], mask=False)
    deform("deform_groups", ("N", 4, 6, 6), (6, 2, 3, 3), (6, 6), og=2, group=2, pads=[1, 1, 1, 1])
    return s


def suite16() -> Suite:
    """GridSample-16: the bilinear / bicubic spellings (and its default mode)."""
    s = Suite("spatial16", 16)
    _grid_cases(s, {"linear": "bilinear", "nearest": "nearest", "cubic": "bicubic"})
    s.case("grid_default_mode", lambda s: s.node("GridSample", [s.inp(("N", 2, 4, 4)), _grid(s, ("N", 3, 3, 2))]))
    return s


def suite_reference() -> Suite:
    """Cases compared with the ONNX reference evaluator (see the module doc)."""
    s = Suite("spatial_ref", 20)
    for mode in ("linear", "nearest", "cubic"):
        for pad in PADDINGS:
            if mode == "cubic" and pad == "border":
                continue  # the ONNX reference clamps the point there; sofie follows PyTorch and onnxruntime
            s.case(f"grid1d_{mode}_{pad}", lambda s, m=mode, p=pad: s.node(
                "GridSample", [s.inp(("N", 2, 6)), _grid(s, ("N", 5, 1))], mode=m, padding_mode=p))

    # points so far out that an index would overflow (onnxruntime's answers are arbitrary there):
    # zeros reads 0, border the edge
    huge = f32(1e10, 0.0, -1e10, 0.3, 0.2, 1e10, -1e30, -1e30).reshape(1, 1, 4, 2)
    for mode in GRID_MODES:
        for pad in ("zeros", "border"):
            s.case(f"grid_huge_{mode}_{pad}", lambda s, m=mode, p=pad: s.node(
                "GridSample", [s.inp((1, 2, 4, 5)), s.init(huge)], mode=m, padding_mode=p))

    def unpool(name, shape, out, **attrs):
        def build(s):
            y, idx = s.node("MaxPool", [s.inp(shape)], n_out=2, **attrs)
            return s.node("MaxUnpool", [y, idx, s.init(i64(*out))], **attrs)
        s.case(name, build)
    unpool("maxunpool_output_shape", (1, 2, 4, 6), (1, 2, 5, 7), kernel_shape=[2, 2], strides=[2, 2])
    unpool("maxunpool_output_shape_same", (2, 2, 4, 6), (2, 2, 4, 6), kernel_shape=[2, 2], strides=[2, 2])
    return s


SUITES = {"spatial20": suite20, "spatial16": suite16, "spatial_ref": suite_reference}
_BUILT: dict[str, Suite] = {}
_RESULTS: dict[str, dict] = {}


def get_suite(name: str) -> Suite:
    if name not in _BUILT:
        _BUILT[name] = SUITES[name]()
    return _BUILT[name]


def _reference_run(proto: onnx.ModelProto, name: str, feeds: dict) -> list[np.ndarray]:
    if name == "spatial_ref":
        return ReferenceEvaluator(proto).run(None, feeds)
    import onnxruntime as ort
    return ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)


def _results(name: str) -> dict:
    if name not in _RESULTS:
        s = get_suite(name)
        proto = s.model()
        m = sofie.compile(proto, name=name, blas="none")
        order = [i[0] for i in m.inputs]
        out_names = [o.name for o in proto.graph.output]
        res: dict[str, dict] = {c: {} for c in s.cases}
        for batch in BATCHES:
            feeds = s.feeds(batch, seed=batch)
            got = m(*[feeds[n] for n in order])
            ref = _reference_run(proto, name, feeds)
            for out, g, r in zip(out_names, got, ref, strict=True):
                res[out][batch] = (g, r)
        _RESULTS[name] = res
    return _RESULTS[name]


@pytest.mark.parametrize("suite_name,case", [(n, c) for n in SUITES for c in get_suite(n).cases])
def test_spatial_op(suite_name: str, case: str) -> None:
    for batch, (got, ref) in _results(suite_name)[case].items():
        assert got.shape == ref.shape, f"{case}: shape {got.shape} != {ref.shape}"
        if ref.dtype.kind == "i":
            np.testing.assert_array_equal(got, ref, err_msg=f"{case} batch {batch}")
        else:
            np.testing.assert_allclose(got, ref, rtol=RTOL, atol=ATOL, err_msg=f"{case} batch {batch}")


# ---- float64, against the ONNX reference evaluator ------------------------------------------------

def _f64_model() -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    rng = np.random.default_rng(5)
    feeds = {"x": rng.standard_normal((2, 3, 5, 6)), "g": rng.standard_normal((2, 4, 5, 2)) * 1.3,
             "p": rng.standard_normal((2, 2, 6, 7)), "r": rng.standard_normal((2, 3, 8, 9))}
    nodes, outs = [], []
    for mode in GRID_MODES:
        for pad in PADDINGS:
            if mode == "cubic" and pad == "border":
                continue  # the ONNX reference clamps the point there; sofie follows PyTorch (tested above)
            name = f"grid_{mode}_{pad}"
            nodes.append(helper.make_node("GridSample", ["x", "g"], [name], mode=mode, padding_mode=pad))
            outs.append(helper.make_tensor_value_info(name, TensorProto.DOUBLE, None))
    nodes.append(helper.make_node("MaxPool", ["p"], ["pool", "pool_idx"], kernel_shape=[3, 2], strides=[2, 2],
                                  pads=[1, 0, 1, 1], storage_order=1))
    outs += [helper.make_tensor_value_info("pool", TensorProto.DOUBLE, None),
             helper.make_tensor_value_info("pool_idx", TensorProto.INT64, None)]
    rois = onnx.numpy_helper.from_array(np.array([[0.5, 1.0, 6.0, 7.5], [2.0, 0.0, 8.0, 3.0]]), "rois")
    bidx = onnx.numpy_helper.from_array(np.array([1, 0], np.int64), "bidx")
    nodes.append(helper.make_node("RoiAlign", ["r", "rois", "bidx"], ["roi"], output_height=2, output_width=3))
    outs.append(helper.make_tensor_value_info("roi", TensorProto.DOUBLE, None))
    ins = [helper.make_tensor_value_info(k, TensorProto.DOUBLE, v.shape) for k, v in feeds.items()]
    g = helper.make_graph(nodes, "spatial_f64", ins, outs, [rois, bidx])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 20)]), feeds


def test_float64_matches_reference() -> None:
    model, feeds = _f64_model()
    m = sofie.compile(model, name="spatial_f64", blas="none")
    got = m(*[feeds[i[0]] for i in m.inputs])
    ref = ReferenceEvaluator(model).run(None, feeds)
    for out, g, r in zip(model.graph.output, got, ref, strict=True):
        assert g.dtype == r.dtype, out.name
        # the reference evaluator denormalizes GridSample's points in float32
        tol = 1e-5 if out.name.startswith("grid") else 1e-10
        np.testing.assert_allclose(g, r, rtol=tol, atol=tol, err_msg=out.name)


def test_max_pool_indices_of_small_integers() -> None:
    """MaxPool's other types (int8, uint8) with Indices; values 0..99 give many ties (the first
    largest of a window wins). The reference evaluator: onnxruntime lacks these kernels."""
    nodes, ins, outs, feeds = [], [], [], {}
    rng = np.random.default_rng(9)
    for et, dt in ((TensorProto.INT8, np.int8), (TensorProto.UINT8, np.uint8)):
        k = np.dtype(dt).name
        nodes.append(helper.make_node("MaxPool", [k], [f"{k}_y", f"{k}_i"], kernel_shape=[3, 2], strides=[2, 1],
                                      pads=[1, 0, 1, 1], storage_order=1))
        ins.append(helper.make_tensor_value_info(k, et, (2, 3, 7, 6)))
        outs += [helper.make_tensor_value_info(f"{k}_y", et, None),
                 helper.make_tensor_value_info(f"{k}_i", TensorProto.INT64, None)]
        feeds[k] = rng.integers(0, 100, (2, 3, 7, 6)).astype(dt)
    model = helper.make_model(helper.make_graph(nodes, "mp_ints", ins, outs),
                              opset_imports=[helper.make_opsetid("", 12)])
    m = sofie.compile(model, name="mp_ints", blas="none")
    got = m(*[feeds[i[0]] for i in m.inputs])
    for out, g, r in zip(outs, got, ReferenceEvaluator(model).run(None, feeds), strict=True):
        np.testing.assert_array_equal(g, r, err_msg=out.name)


def test_run_time_image_and_box_counts() -> None:
    """RoiAlign and GridSample on images whose height and width (and the box and point counts)
    are dim symbols, run at two sizes against the ONNX reference evaluator."""
    nodes = [helper.make_node("RoiAlign", ["x", "r", "b"], ["roi"], output_height=2, output_width=3),
             helper.make_node("GridSample", ["x", "g"], ["grid"], align_corners=1)]
    ins = [helper.make_tensor_value_info("x", F, ("N", 3, "H", "W")), helper.make_tensor_value_info("r", F, ("R", 4)),
           helper.make_tensor_value_info("b", TensorProto.INT64, ("R",)),
           helper.make_tensor_value_info("g", F, ("N", "P", "Q", 2))]
    outs = [helper.make_tensor_value_info(k, F, None) for k in ("roi", "grid")]
    model = helper.make_model(helper.make_graph(nodes, "sym", ins, outs), opset_imports=[helper.make_opsetid("", 20)])
    m = sofie.compile(model, name="spatial_sym", blas="none", dims={"H": 16, "W": 16, "R": 8, "P": 6, "Q": 6})
    rng = np.random.default_rng(0)
    for h, w, r, p in ((10, 12, 3, 4), (16, 7, 8, 6)):
        feeds = {"x": rng.standard_normal((2, 3, h, w)).astype(np.float32),
                 "r": np.concatenate([rng.uniform(0, 4, (r, 2)), rng.uniform(4, 7, (r, 2))], 1).astype(np.float32),
                 "b": rng.integers(0, 2, r).astype(np.int64),
                 "g": (rng.standard_normal((2, p, 5, 2)) * 1.2).astype(np.float32)}
        got = m(*[feeds[i[0]] for i in m.inputs])
        for out, g, ref in zip(outs, got, ReferenceEvaluator(model).run(None, feeds), strict=True):
            np.testing.assert_allclose(g, ref, rtol=RTOL, atol=ATOL, err_msg=f"{out.name} {h}x{w}")


def test_indices_are_not_chunked() -> None:
    """MaxPool's Indices and MaxUnpool's I count from the first image of the whole batch: a
    batch above max_batch is refused, not run in chunks with chunk-relative indices."""
    nodes = [helper.make_node("MaxPool", ["x"], ["y", "i"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("MaxUnpool", ["y", "i"], ["u"], kernel_shape=[2, 2], strides=[2, 2])]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", F, ("N", 2, 4, 6))],
                          [helper.make_tensor_value_info("i", TensorProto.INT64, None),
                           helper.make_tensor_value_info("u", F, None)])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 12)])
    m = sofie.compile(model, name="unpool_chunks", blas="none", max_batch=2)
    x = np.random.default_rng(0).standard_normal((5, 2, 4, 6)).astype(np.float32)
    for got, ref in zip(m(x[:2]), ReferenceEvaluator(model).run(None, {"x": x[:2]}), strict=True):
        np.testing.assert_array_equal(got, ref)
    with pytest.raises(sofie.SofieError, match="batch exceeds max_batch"):
        m(x)


# ---- refused with a clear error ------------------------------------------------------------------

def _one(op: str, inputs: list[tuple[str, int, tuple]], inits: list[np.ndarray], opset: int = 20, **attrs):
    names = [n for n, _, _ in inputs] + [f"c{k}" for k in range(len(inits))]
    node = helper.make_node(op, names, ["y"], name="the_node", **attrs)
    g = helper.make_graph([node], "err", [helper.make_tensor_value_info(n, t, s) for n, t, s in inputs],
                          [helper.make_empty_tensor_value_info("y")],
                          [onnx.numpy_helper.from_array(a, f"c{k}") for k, a in enumerate(inits)])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


F, D = TensorProto.FLOAT, TensorProto.DOUBLE
ERRORS = {
    "grid_mixed_types": (_one("GridSample", [("x", F, (1, 2, 4, 4)), ("g", D, (1, 3, 3, 2))], []),
                         r"grid is f64 and X f32"),
    "grid_4_spatial_dims": (_one("GridSample", [("x", F, (1, 1, 2, 2, 2, 2)), ("g", F, (1, 2, 2, 2, 2, 4))], []),
                            r"1 to 3 spatial dims"),
    "grid_bad_grid_shape": (_one("GridSample", [("x", F, (1, 2, 4, 4)), ("g", F, (1, 3, 3, 3))], []),
                            r"grid \[1, 3, 3, 3\] does not fit X"),
    "grid_other_batch": (_one("GridSample", [("x", F, (2, 2, 4, 4)), ("g", F, (1, 3, 3, 2))], []),
                         r"X has batch 2, grid 1; they must be equal"),
    "deform_conv_other_batch": (_one("DeformConv", [("x", F, (2, 1, 3, 3)), ("w", F, (1, 1, 2, 2)),
                                                    ("o", F, (1, 8, 2, 2))], []),
                                r"X, offset and mask must have one batch size"),
    "grid_bad_mode": (_one("GridSample", [("x", F, (1, 2, 4, 4)), ("g", F, (1, 3, 3, 2))], [], mode="area"),
                      r"mode 'area' is not one of"),
    "col2im_bad_input": (_one("Col2Im", [("x", F, (1, 7, 9))], [i64(4, 4), i64(2, 2)]),
                         r"does not fit block_shape \[2, 2\]"),
    "maxunpool_small_output": (_one("MaxUnpool", [("x", F, (1, 1, 2, 2)), ("i", TensorProto.INT64, (1, 1, 2, 2))],
                                    [i64(1, 1, 3, 3)], kernel_shape=[2, 2], strides=[2, 2]),
                               r"spatial dims >= the unpooled \[4, 4\]"),
    "deform_conv_3d": (_one("DeformConv", [("x", F, (1, 1, 3, 3, 3)), ("w", F, (1, 1, 2, 2, 2)),
                                           ("o", F, (1, 24, 2, 2, 2))], []),
                       r"2-D DeformConv only"),
    "roialign_bad_mode": (_one("RoiAlign", [("x", F, (1, 1, 4, 4)), ("r", F, (1, 4)),
                                            ("b", TensorProto.INT64, (1,))], [], mode="sum"),
                          r"mode 'sum' is not one of avg, max"),
}


@pytest.mark.parametrize("case", sorted(ERRORS))
def test_rejected_with_clear_error(case: str) -> None:
    model, pattern = ERRORS[case]
    with pytest.raises(sofie.SofieError, match=pattern) as e:
        sofie.compile(model, name="err", blas="none")
    assert "the_node" in str(e.value), str(e.value)


def test_max_unpool_index_out_of_range_is_a_runtime_error() -> None:
    model = _one("MaxUnpool", [("x", F, (1, 1, 2, 2)), ("i", TensorProto.INT64, (1, 1, 2, 2))], [],
                 kernel_shape=[2, 2], strides=[2, 2])
    m = sofie.compile(model, name="unpool_oob", blas="none")
    with pytest.raises(Exception, match="outside the unpooled tensor"):
        m(np.ones((1, 1, 2, 2), np.float32), np.array([0, 1, 2, 16], np.int64).reshape(1, 1, 2, 2))
