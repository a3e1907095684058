"""Ops whose shape operand comes from `Shape` of a dynamic-batch input (what torch's
zeros_like / new_zeros / expand_as export to): ConstantOfShape and Expand to [N, ...] run as a
loop over the symbolic shape, a Range whose length is a static dim folds; Tile by N and a Range
of length N are refused with a clear error (their index tables and lengths are fixed at compile
time). All cases are outputs of ONE model, compiled once, run at batches 1 and 5 next to
onnxruntime; every result is exact (fills, copies and one float add)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn

import sofie
from sofie.errors import SofieError
from tests.conftest import ort_run

BATCHES = (1, 5)


def _init(name: str, value) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(value), name)


# (output name, element type, nodes); every case reads x [N, 3, 4] through s = Shape(x)
CASES = {
    "fill_add": (TensorProto.FLOAT, [  # zeros_like-style: a fill of 2.5 added to x
        helper.make_node("ConstantOfShape", ["s"], ["fill"], value=numpy_helper.from_array(np.float32([2.5]))),
        helper.make_node("Add", ["fill", "x"], ["fill_add"])]),
    "fill_default": (TensorProto.FLOAT, [  # no value attribute: float zeros, the output itself
        helper.make_node("ConstantOfShape", ["s"], ["fill_default"])]),
    "fill_int64": (TensorProto.INT64, [
        helper.make_node("ConstantOfShape", ["s"], ["fill_int64"], value=numpy_helper.from_array(np.int64([-7])))]),
    "fill_bool": (TensorProto.BOOL, [
        helper.make_node("ConstantOfShape", ["s"], ["fill_bool"], value=numpy_helper.from_array(np.array([True])))]),
    "fill_n_by_2": (TensorProto.FLOAT, [  # a shape built from the batch and a constant: [N, 2]
        helper.make_node("Slice", ["s", "zero", "one"], ["n"]),
        helper.make_node("Concat", ["n", "two"], ["n2"], axis=0),
        helper.make_node("ConstantOfShape", ["n2"], ["fill_n_by_2"],
                         value=numpy_helper.from_array(np.float32([-1.5])))]),
    "expand_as": (TensorProto.FLOAT, [  # b [1, 1, 4] broadcast to x's shape
        helper.make_node("Expand", ["b", "s"], ["expand_as"])]),
    "expand_n": (TensorProto.FLOAT, [  # a scalar to [N, 1]
        helper.make_node("Slice", ["s", "zero", "one"], ["n_"]),
        helper.make_node("Concat", ["n_", "one"], ["n1"], axis=0),
        helper.make_node("Expand", ["scalar", "n1"], ["expand_n"])]),
    "range_of_a_static_dim": (TensorProto.INT64, [  # arange(x.size(2)): 4 whatever the batch
        helper.make_node("Gather", ["s", "two_scalar"], ["w"], axis=0),
        helper.make_node("Range", ["zero_scalar", "w", "one_scalar"], ["range_of_a_static_dim"])]),
}


def _model(names: list[str]) -> onnx.ModelProto:
    nodes = [helper.make_node("Shape", ["x"], ["s"])]
    outs = []
    for name in names:
        elem, case = CASES[name]
        nodes += case
        outs.append(helper.make_tensor_value_info(name, elem, None))
    inits = [_init("zero", np.int64([0])), _init("one", np.int64([1])), _init("two", np.int64([2])),
             _init("b", np.arange(4, dtype=np.float32).reshape(1, 1, 4)), _init("scalar", np.float32(3.25)),
             _init("zero_scalar", np.int64(0)), _init("one_scalar", np.int64(1)), _init("two_scalar", np.int64(2))]
    g = helper.make_graph(nodes, "shape_from_shape",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 4])], outs, inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, list[tuple[np.ndarray, np.ndarray]]]:
    """name -> [(sofie, onnxruntime)] at each batch."""
    path = str(tmp_path_factory.mktemp("shape_from_shape") / "shape_from_shape.onnx")
    onnx.save(_model(list(CASES)), path)
    model = sofie.compile(path)
    out: dict[str, list] = {name: [] for name in CASES}
    for batch in BATCHES:
        x = np.random.default_rng(batch).standard_normal((batch, 3, 4)).astype(np.float32)
        for name, got, ref in zip(CASES, model(x), ort_run(path, x), strict=True):
            out[name].append((got, ref))
    return out


@pytest.mark.parametrize("name", list(CASES))
def test_matches_onnxruntime_at_every_batch(runs, name: str) -> None:
    for got, ref in runs[name]:
        assert got.dtype == ref.dtype and got.shape == ref.shape, (got.dtype, got.shape, ref.dtype, ref.shape)
        np.testing.assert_array_equal(got, ref)


class ZerosLike(nn.Module):
    def forward(self, x):
        return torch.zeros_like(x) + x, x.new_zeros(x.shape[0], 2) + 1.0, torch.ones_like(x) * 2.0


def test_torch_zeros_like_at_a_dynamic_batch() -> None:
    module = ZerosLike().eval()
    model = sofie.compile(module, example_inputs=(torch.zeros(2, 3, 4),))
    for batch in BATCHES:
        x = torch.randn(batch, 3, 4)
        got = model(x.numpy())
        for g, r in zip(got, module(x), strict=True):
            np.testing.assert_array_equal(g, r.numpy())


def _refused(tmp_path, nodes: list, inits: list) -> str:
    head = [helper.make_node("Shape", ["x"], ["s"]), helper.make_node("Slice", ["s", "zero", "one"], ["n"])]
    g = helper.make_graph([*head, *nodes], "refused",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                          [_init("zero", np.int64([0])), _init("one", np.int64([1])), *inits])
    path = str(tmp_path / "refused.onnx")
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), path)
    with pytest.raises(SofieError) as e:
        sofie.compile(path)
    return str(e.value)


def test_tile_by_the_batch_is_refused_clearly(tmp_path) -> None:
    msg = _refused(tmp_path, [helper.make_node("Concat", ["n", "one"], ["rep"], axis=0),
                              helper.make_node("Tile", ["b", "rep"], ["y"])], [_init("b", np.float32([[1, 2, 3]]))])
    assert "Tile" in msg and "repeats operand depends on the symbolic dim N" in msg, msg


def test_a_range_of_the_batch_length_is_refused_clearly(tmp_path) -> None:
    msg = _refused(tmp_path, [helper.make_node("Squeeze", ["n"], ["n0"]),
                              helper.make_node("Cast", ["n0"], ["nf"], to=TensorProto.FLOAT),
                              helper.make_node("Range", ["start", "nf", "delta"], ["y"])],
                   [_init("start", np.float32(0)), _init("delta", np.float32(1))])
    assert "Range" in msg and "symbolic dim N" in msg, msg
