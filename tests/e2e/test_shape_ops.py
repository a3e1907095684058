"""Shape and indexing ops against onnxruntime: Slice, Split, Pad, Tile, Expand, DepthToSpace,
SpaceToDepth, Gather, GatherElements, GatherND, ScatterElements, ScatterND, Trilu, OneHot,
EyeLike, Size, Shape, Range; plus the errors they give.

As in test_ops.py: every case is an independent subgraph of ONE opset-18 model, compiled once
and run at batches 1 and 3 (the symbolic batch "N") next to onnxruntime, one pytest test per
case. Index inputs are run-time int64/int32 tensors with fixed values (negative ones included),
so onnxruntime and sofie read the same indices. Data movement is exact: the comparison is
exact for every case (no arithmetic but the scatter reductions, which run in index order in
both).
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import sofie
from tests.e2e.test_ops import Suite, f32, i64

BATCHES = (1, 3)
_ELEM = {np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.int64): TensorProto.INT64,
         np.dtype(np.int32): TensorProto.INT32, np.dtype(np.bool_): TensorProto.BOOL,
         np.dtype(np.uint8): TensorProto.UINT8}


class Cases(Suite):
    """A Suite with fixed-valued typed inputs and outputs of any element type."""

    def __init__(self, name: str, opset: int) -> None:
        super().__init__(name, opset)
        self.fixed: dict[str, np.ndarray] = {}

    def given(self, value: np.ndarray) -> str:
        """A run-time input whose value is `value` in every run (indices, k, ints)."""
        name = self._fresh("g")
        value = np.asarray(value)
        self.inputs.append(helper.make_tensor_value_info(name, _ELEM[value.dtype], list(value.shape)))
        self.fixed[name] = value
        return name

    def case(self, name: str, build, elem: int = TensorProto.FLOAT) -> None:
        assert name not in self.cases, name
        self._case = name
        self.output(name, build(self), elem)
        self.cases.append(name)

    def feeds(self, batch: int, seed: int = 0) -> dict[str, np.ndarray]:
        return {**super().feeds(batch, seed), **self.fixed}


def _cases() -> Cases:
    s = Cases("shape18", 18)
    rng = np.random.default_rng(3)

    def one(name, op, inputs, n_out=1, part=0, **attrs):
        def build(s):
            names = [s.inp(i) if isinstance(i, tuple) else s.init(i) if isinstance(i, np.ndarray) else i
                     for i in inputs]
            outs = s.node(op, names, n_out=n_out, **attrs)
            return outs if n_out == 1 else outs[part]
        s.case(name, build)

    # Slice: negative bounds and steps, clamping, defaults, the batch untouched, an empty result
    one("slice_basic", "Slice", [(4, 6), i64(1, 2), i64(3, 5)])
    one("slice_axes_steps", "Slice", [("N", 5, 8), i64(1, 7), i64(4, 1), i64(1, -1), i64(1, -2)])
    one("slice_negative_bounds", "Slice", [(5, 8), i64(-4), i64(-1), i64(-1)])
    one("slice_clamped", "Slice", [(5, 8), i64(-100, 2), i64(100, 1000)])
    one("slice_negative_step_to_start", "Slice", [(6,), i64(-1), i64(-1000), i64(0), i64(-1)])
    one("slice_step3", "Slice", [("N", 10), i64(1), i64(10), i64(1), i64(3)])
    one("slice_empty", "Slice", [(4, 6), i64(3), i64(1), i64(1)])
    one("slice_whole", "Slice", [("N", 6), i64(0), i64(2**63 - 1), i64(1)])

    # Split: equal parts by num_outputs (uneven last part), sizes as input, negative axis
    for part in range(3):
        one(f"split_num_outputs_p{part}", "Split", [(2, 7)], n_out=3, part=part, axis=1, num_outputs=3)
        one(f"split_sizes_p{part}", "Split", [("N", 6, 3), i64(1, 2, 3)], n_out=3, part=part, axis=-2)

    # Pad: every mode, constant value, negative pads (cropping), axes
    for mode in ("constant", "reflect", "edge", "wrap"):
        one(f"pad_{mode}", "Pad", [(3, 4, 5), i64(0, 2, 1, 1, 1, 3)], mode=mode)
    one("pad_constant_value", "Pad", [(3, 4), i64(1, 2, 0, 1), f32(1.5).reshape(())])
    one("pad_crop", "Pad", [(3, 6), i64(-1, 2, 0, -3)])
    one("pad_axes_batch", "Pad", [("N", 3, 4), i64(1, 2, 2, 0), f32(-2.0).reshape(()), i64(-1, 1)],
        mode="constant")

    # long rows: the kernel copies runs of consecutive indices (and fills) a row at a time
    one("pad_long_rows", "Pad", [("N", 3, 40), i64(0, 1, 2, 0, 0, 3), f32(7.0).reshape(())])
    one("pad_long_rows_edge", "Pad", [(3, 40), i64(0, 5, 0, 6)], mode="edge")
    one("slice_long_rows", "Slice", [("N", 32), i64(2), i64(30), i64(1)])
    one("tile_long_rows", "Tile", [(2, 16), i64(2, 3)])

    # Tile, Expand
    one("tile", "Tile", [(2, 3), i64(2, 3)])
    one("tile_batch", "Tile", [("N", 2, 3), i64(1, 1, 2)])
    one("expand_rank_up", "Expand", [(3, 1), i64(2, 3, 4)])
    one("expand_keep_larger", "Expand", [("N", 1, 4), i64(3, 1)])

    # DepthToSpace in both modes, SpaceToDepth (its `mode` is younger than opset 18)
    for mode in ("DCR", "CRD"):
        one(f"depth_to_space_{mode}", "DepthToSpace", [("N", 8, 2, 3)], blocksize=2, mode=mode)
    one("space_to_depth", "SpaceToDepth", [("N", 2, 4, 6)], blocksize=2)

    # Gather: run-time indices incl. negative, i32 and i64, 2-D indices, axis 1 under the batch
    idx = np.array([[0, -1], [2, -3]], np.int64)
    s.case("gather_axis0", lambda s: s.node("Gather", [s.inp((4, 3)), s.given(idx)]))
    s.case("gather_axis1_i32", lambda s: s.node("Gather", [s.inp(("N", 5, 2)), s.given(idx.astype(np.int32))],
                                                axis=1))
    s.case("gather_scalar_index", lambda s: s.node("Gather", [s.inp(("N", 5)), s.given(np.array(-2, np.int64))],
                                                   axis=1))
    s.case("gather_const_indices", lambda s: s.node("Gather", [s.inp((6, 2)), s.init(i64(5, 0, -6))]))
    s.case("gather_int64_data", lambda s: s.node("Gather", [s.given(np.arange(12, dtype=np.int64).reshape(3, 4)),
                                                            s.given(i64(-1, 0))], axis=1), TensorProto.INT64)

    # GatherElements, GatherND
    ge = np.array([[0, -1, 2], [1, 1, -3]], np.int64)
    s.case("gather_elements_axis1", lambda s: s.node("GatherElements", [s.inp((2, 3)), s.given(ge)], axis=1))
    s.case("gather_elements_axis0", lambda s: s.node("GatherElements", [s.inp((3, 3)), s.given(ge)], axis=0))
    s.case("gather_nd", lambda s: s.node("GatherND", [s.inp((3, 4, 2)), s.given(i64(0, -1, 2, 1).reshape(2, 2))]))
    s.case("gather_nd_batch_dims", lambda s: s.node(
        "GatherND", [s.inp((2, 3, 4)), s.given(i64(1, -1, 0, 2).reshape(2, 2, 1))], batch_dims=1))

    # ScatterElements (every reduction), ScatterND
    si = np.array([[1, -1], [0, 2]], np.int64)
    for red in ("none", "add", "mul", "max", "min"):
        s.case(f"scatter_elements_{red}", lambda s, red=red: s.node(
            "ScatterElements", [s.inp((2, 4)), s.given(si), s.inp((2, 2))], axis=1, reduction=red))
        s.case(f"scatter_nd_{red}", lambda s, red=red: s.node(
            "ScatterND", [s.inp((4, 3)), s.given(i64(-1, 0, 2).reshape(3, 1)), s.inp((3, 3))], reduction=red))
    s.case("scatter_elements_dup_add", lambda s: s.node(
        "ScatterElements", [s.inp((3,)), s.given(i64(1, 1, -2)), s.inp((3,))], reduction="add"))
    s.case("scatter_nd_element", lambda s: s.node(
        "ScatterND", [s.inp((3, 4)), s.given(i64(0, 1, -1, -1).reshape(2, 2)), s.inp((2,))]))

    # Trilu: upper and lower, run-time k of either sign, batched matrices
    for upper in (0, 1):
        for k in (-1, 0, 2):
            s.case(f"trilu_u{upper}_k{k}", lambda s, upper=upper, k=k: s.node(
                "Trilu", [s.inp(("N", 3, 5)), s.given(np.array(k, np.int64))], upper=upper))
        s.case(f"trilu_u{upper}_default_k", lambda s, upper=upper: s.node("Trilu", [s.inp((4, 3))], upper=upper))

    # OneHot: negative and out-of-range indices (all off), float indices, depth axis anywhere
    hot = np.array([[0, -1, 3], [7, -5, 2]], np.int64)
    for axis in (0, 1, -1):
        s.case(f"one_hot_axis{axis}", lambda s, axis=axis: s.node(
            "OneHot", [s.given(hot), s.init(np.array(4, np.int64)), s.init(f32(0.5, 2.0))], axis=axis))
    s.case("one_hot_run_time_values", lambda s: s.node(  # [off, on] gathered by the hit at run time
        "OneHot", [s.given(hot), s.init(np.array(4, np.int64)), s.inp((2,))], axis=1))
    s.case("one_hot_float_indices", lambda s: s.node(
        "OneHot", [s.given(f32(1.0, -2.0, 5.0)), s.init(np.array(3, np.int64)), s.init(i64(-1, 1))]),
        TensorProto.INT64)

    # EyeLike, Size, Shape, Range (the last three fold: their values come from shapes or constants)
    s.case("eye_like", lambda s: s.node("EyeLike", [s.inp((3, 4))], k=1))
    s.case("size", lambda s: s.node("Size", [s.inp((2, 3, 4))]), TensorProto.INT64)
    s.case("shape_clamped", lambda s: s.node("Shape", [s.inp((2, 3, 4))], start=-10, end=-1), TensorProto.INT64)
    s.case("range_folded", lambda s: s.node("Range", [s.init(np.array(1.0, np.float32)),
                                                      s.init(np.array(2.0, np.float32)),
                                                      s.init(np.array(0.25, np.float32))]))
    del rng
    return s


_SUITE: list[Cases] = []
_RESULTS: dict[str, object] = {}


def _suite() -> Cases:
    if not _SUITE:
        _SUITE.append(_cases())
    return _SUITE[0]


def _results() -> dict[str, dict[int, tuple[np.ndarray, np.ndarray]]]:
    """Compiles once; {case: {batch: (sofie, onnxruntime)}}."""
    if "res" not in _RESULTS:
        import onnxruntime as ort
        s = _suite()
        proto = s.model()
        m = sofie.compile(proto, name=s.name, blas="none")
        sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
        order = [i[0] for i in m.inputs]
        names = [o.name for o in proto.graph.output]
        res: dict[str, dict[int, tuple]] = {c: {} for c in s.cases}
        for batch in BATCHES:
            feeds = s.feeds(batch, seed=batch)
            got = m(*[feeds[n] for n in order])
            for name, g, r in zip(names, got, sess.run(None, feeds), strict=True):
                res[name][batch] = (g, r)
        _RESULTS["res"] = res
    return _RESULTS["res"]


@pytest.mark.parametrize("case", _suite().cases)
def test_matches_onnxruntime(case: str) -> None:
    per_batch = _results()[case]
    assert sorted(per_batch) == list(BATCHES)
    for batch, (got, ref) in per_batch.items():
        assert got.dtype == ref.dtype and got.shape == ref.shape, (
            f"{case} batch {batch}: {got.dtype}{list(got.shape)} vs onnxruntime {ref.dtype}{list(ref.shape)}")
        np.testing.assert_array_equal(got, ref, err_msg=f"{case} batch {batch}")


# ---- errors -----------------------------------------------------------------------------------

def _model(op: str, inputs: list, n_out: int = 1, **attrs) -> onnx.ModelProto:
    """One node named 'the_node'; inputs: shapes (float graph inputs), arrays (initializers) or
    ("run", array) for a typed graph input."""
    ins, inits, names = [], [], []
    for k, i in enumerate(inputs):
        name = f"in{k}"
        if isinstance(i, tuple) and i and isinstance(i[0], str) and i[0] == "run":
            ins.append(helper.make_tensor_value_info(name, _ELEM[i[1].dtype], list(i[1].shape)))
        elif isinstance(i, tuple):
            ins.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, list(i)))
        else:
            inits.append(onnx.numpy_helper.from_array(np.asarray(i), name))
        names.append(name)
    outs = [f"out{k}" for k in range(n_out)]
    g = helper.make_graph([helper.make_node(op, names, outs, name="the_node", **attrs)], "err", ins,
                          [helper.make_tensor_value_info(o, TensorProto.UNDEFINED, None) for o in outs], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])


ERRORS = {
    "gather_constant_index_out_of_range": (_model("Gather", [(4, 3), i64(0, 4)]),
                                           r"index 4 out of range for an axis of size 4"),
    "gather_nd_constant_index_out_of_range": (_model("GatherND", [(3, 2), i64(-4).reshape(1, 1)]),
                                              r"index -4 out of range for an axis of size 3"),
    "scatter_constant_index_out_of_range": (_model("ScatterElements", [(3,), i64(3), (1,)]),
                                            r"index 3 out of range"),
    "gather_float_indices": (_model("Gather", [(4, 3), f32(1.0)]), r"indices are f32"),
    "slice_step_zero": (_model("Slice", [(4,), i64(0), i64(4), i64(0), i64(0)]), r"step 0 on axis 0"),
    "slice_runtime_starts": (_model("Slice", [(4,), ("run", i64(0)), i64(4)]), r"starts operand is computed at run"),
    "split_sizes_wrong_sum": (_model("Split", [(6,), i64(2, 2)], n_out=2), r"do not add up to axis 0 of size 6"),
    "pad_reflect_too_far": (_model("Pad", [(3,), i64(3, 0)], mode="reflect"), r"each must be below 3"),
    "pad_unknown_mode": (_model("Pad", [(3,), i64(1, 0)], mode="mirror"), r"mode 'mirror'"),
    "expand_incompatible": (_model("Expand", [(3, 2), i64(3, 4)]), r"cannot expand \[3, 2\]"),
    "depth_to_space_channels": (_model("DepthToSpace", [(1, 6, 2, 2)], blocksize=2), r"6 channels"),
    "nonzero_runtime": (_model("NonZero", [(3, 4)]), r"NonZero's output length .* only at run time"),
    "range_runtime": (_model("Range", [("run", f32(0.0).reshape(())), f32(4.0).reshape(()),
                                       f32(1.0).reshape(())]), r"start of a Range .* computed at run time"),
}


@pytest.mark.parametrize("case", list(ERRORS))
def test_rejected_with_clear_error(case: str) -> None:
    model, pattern = ERRORS[case]
    with pytest.raises(sofie.SofieError, match=pattern) as e:
        sofie.compile(model, name="err", blas="none")
    assert "the_node" in str(e.value), str(e.value)


def test_runtime_index_out_of_range_raises_naming_the_node() -> None:
    """Indices known only at run time are checked by the kernel: never a read out of bounds."""
    m = sofie.compile(_model("Gather", [(4, 3), ("run", i64(0, 1))]), name="oob", blas="none")
    x = np.zeros((4, 3), np.float32)
    np.testing.assert_array_equal(m(x, i64(-4, 3))[0], np.zeros((2, 3), np.float32))
    with pytest.raises(IndexError, match=r"node 'the_node'.*index 4 out of range for an axis of size 4"):
        m(x, i64(0, 4))
