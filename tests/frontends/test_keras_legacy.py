"""Keras 2 (tf.keras) HDF5 files, written here by hand with h5py in Keras 2's layout (no
TensorFlow needed): `batch_input_shape`, inbound nodes as [[name, node, tensor, kwargs]],
weights under model_weights/<layer>/<layer>/<var>:0 named by `weight_names`. Checked with
sofie's numpy interpreter against numpy (exact formulas, rtol 1e-6)."""

from __future__ import annotations

import json

import numpy as np
import pytest

h5py = pytest.importorskip("h5py")

from sofie.errors import SofieError  # noqa: E402
from sofie.frontends import load_model  # noqa: E402
from sofie.ir.interpret import run_function  # noqa: E402

RNG = np.random.default_rng(0)


def _write(path: str, config: dict, weights: dict[str, dict[str, np.ndarray]], layer_names: list[str]) -> None:
    with h5py.File(path, "w") as f:
        f.attrs["model_config"] = json.dumps(config)
        f.attrs["keras_version"] = "2.15.0"
        f.attrs["backend"] = "tensorflow"
        g = f.create_group("model_weights")
        g.attrs["layer_names"] = [n.encode() for n in layer_names]
        for name in layer_names:
            lg = g.create_group(name)
            ws = weights.get(name, {})
            lg.attrs["weight_names"] = [f"{name}/{w}".encode() for w in ws]
            for w, arr in ws.items():
                lg.create_dataset(f"{name}/{w}", data=arr)


def _dense(units_in: int, units: int) -> dict[str, np.ndarray]:
    return {"kernel:0": RNG.normal(size=(units_in, units)).astype(np.float32),
            "bias:0": RNG.normal(size=(units,)).astype(np.float32)}


def test_keras2_sequential_without_input_layer(tmp_path) -> None:
    config = {"class_name": "Sequential", "config": {"name": "seq", "layers": [
        {"class_name": "Dense", "config": {"name": "d1", "units": 5, "activation": "tanh", "use_bias": True,
                                           "batch_input_shape": [None, 4], "dtype": "float32"}},
        {"class_name": "LeakyReLU", "config": {"name": "lr", "alpha": 0.25}},
        {"class_name": "Dense", "config": {"name": "d2", "units": 2, "activation": "softmax", "use_bias": True}},
    ]}}
    w = {"d1": _dense(4, 5), "d2": _dense(5, 2)}
    path = str(tmp_path / "seq.h5")
    _write(path, config, w, ["d1", "lr", "d2"])
    x = RNG.normal(size=(3, 4)).astype(np.float32)
    (got,) = run_function(load_model(path), [x])
    h = np.tanh(x @ w["d1"]["kernel:0"] + w["d1"]["bias:0"])
    h = np.where(h > 0, h, 0.25 * h)
    z = h @ w["d2"]["kernel:0"] + w["d2"]["bias:0"]
    want = np.exp(z - z.max(1, keepdims=True))
    np.testing.assert_allclose(got, want / want.sum(1, keepdims=True), rtol=1e-6, atol=1e-7)


def _functional(inbound_b: list) -> dict:
    return {"class_name": "Functional", "config": {"name": "fn", "layers": [
        {"class_name": "InputLayer", "name": "x",
         "config": {"batch_input_shape": [None, 4], "dtype": "float32", "name": "x"}, "inbound_nodes": []},
        {"class_name": "Dense", "name": "a", "config": {"name": "a", "units": 3, "activation": "linear"},
         "inbound_nodes": [[["x", 0, 0, {}]]]},
        {"class_name": "Dense", "name": "b", "config": {"name": "b", "units": 3, "activation": "relu"},
         "inbound_nodes": inbound_b},
        {"class_name": "Add", "name": "sum", "config": {"name": "sum"},
         "inbound_nodes": [[["a", 0, 0, {}], ["b", 0, 0, {}]]]},
    ], "input_layers": [["x", 0, 0]], "output_layers": [["sum", 0, 0], ["a", 0, 0]]}}


def test_keras2_functional_merge_and_two_outputs(tmp_path) -> None:
    w = {"a": _dense(4, 3), "b": _dense(4, 3)}
    path = str(tmp_path / "fn.h5")
    _write(path, _functional([[["x", 0, 0, {}]]]), w, ["x", "a", "b", "sum"])
    x = RNG.normal(size=(2, 4)).astype(np.float32)
    got_sum, got_a = run_function(load_model(path), [x])
    a = x @ w["a"]["kernel:0"] + w["a"]["bias:0"]
    b = np.maximum(x @ w["b"]["kernel:0"] + w["b"]["bias:0"], 0)
    np.testing.assert_allclose(got_a, a, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(got_sum, a + b, rtol=1e-6, atol=1e-6)


def test_a_layer_input_that_is_never_computed_is_named(tmp_path) -> None:
    path = str(tmp_path / "broken.h5")
    _write(path, _functional([[["ghost", 0, 0, {}]]]), {"a": _dense(4, 3), "b": _dense(4, 3)}, ["x", "a", "b", "sum"])
    with pytest.raises(SofieError, match="ghost"):
        load_model(path)


def test_missing_weights_are_named(tmp_path) -> None:
    path = str(tmp_path / "noweights.h5")
    _write(path, _functional([[["x", 0, 0, {}]]]), {"a": _dense(4, 3)}, ["x", "a", "b", "sum"])
    with pytest.raises(SofieError, match=r"layer 'b' \(Dense\): expected 2 weight arrays, the file holds 0"):
        load_model(path)


@pytest.mark.parametrize("layer, message", [
    ({"class_name": "Reshape", "config": {"name": "r"}}, r"layer 'r' \(Reshape\): malformed config .*TypeError"),
    ({"class_name": "Dense", "config": {"name": "d", "units": 3, "activation": "nope"}},
     r"layer 'd' \(Dense\): activation 'nope' is not supported"),
    ({"class_name": "Conv2D", "config": {"name": "c", "filters": 3, "kernel_size": 1}},
     r"layer 'c' \(Conv2D\): expected 2 weight arrays, the file holds 0"),
    ({"class_name": "Lambda", "config": {"name": "f"}}, r"layer 'f' is of class Lambda"),
])
def test_bad_layer_configs_are_sofie_errors(tmp_path, layer: dict, message: str) -> None:
    first = {"class_name": "InputLayer", "config": {"batch_input_shape": [None, 4], "name": "x"}}
    config = {"class_name": "Sequential", "config": {"name": "seq", "layers": [first, layer]}}
    path = str(tmp_path / "bad.h5")
    _write(path, config, {"d": _dense(4, 3)}, ["d"])
    with pytest.raises(SofieError, match=message):
        load_model(path)
