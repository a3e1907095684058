"""Keras models (.keras archives and legacy .h5) compiled by sofie, compared with Keras's own
`predict` at batch 1 and 5. Every layer case is a subgraph of one Functional suite model
(keras_cases.py: ~120 inputs and outputs, a shared layer) compiled once. Tolerances: rtol 1e-4,
atol 1e-5 unless a case states others."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")  # before keras is imported: no TensorFlow needed
pytest.importorskip("h5py")
keras = pytest.importorskip("keras")

import sofie  # noqa: E402
from sofie.frontends import load_model  # noqa: E402
from sofie.pipeline import GRAPH_PIPELINE, run_pipeline  # noqa: E402
from tests.e2e.keras_cases import layer_suite  # noqa: E402

BATCHES = (1, 5)
_SUITE = layer_suite()
_RESULTS: dict[str, object] = {}


def _saved(tmp_path_factory) -> dict[str, str]:
    """The suite model saved as .keras and legacy .h5; {format: path}."""
    if "paths" not in _RESULTS:
        d = tmp_path_factory.mktemp("keras_suite")
        model = _SUITE.model()
        paths = {fmt: str(d / f"suite.{fmt}") for fmt in ("keras", "h5")}
        for p in paths.values():
            model.save(p)
        _RESULTS["model"], _RESULTS["paths"] = model, paths
    return _RESULTS["paths"]


def _results(tmp_path_factory) -> dict:
    """{case: {batch: (sofie, keras)}}, compiling the .keras suite once (the .h5 file imports
    to the same module: test_h5_imports_like_keras)."""
    if "res" not in _RESULTS:
        path = _saved(tmp_path_factory)["keras"]
        model = _RESULTS["model"]
        m = sofie.compile(path, name="keras_suite", blas="none")
        # the compiled model takes the inputs in the Functional model's order, by their names
        assert [n for n, *_ in m.inputs] == [x.name for x in model.inputs]
        res: dict = {c.name: {} for c in _SUITE.cases}
        for batch in BATCHES:
            xs = _SUITE.feeds(batch, seed=batch)
            want, got = list(model.predict(xs, verbose=0, batch_size=batch)), list(m(*xs))
            assert len(got) == len(want) == sum(c.n_out for c in _SUITE.cases)
            for c in _SUITE.cases:
                res[c.name][batch] = [(got.pop(0), np.asarray(want.pop(0))) for _ in range(c.n_out)]
        _RESULTS["res"] = res
    return _RESULTS["res"]


@pytest.mark.parametrize("case", [c.name for c in _SUITE.cases])
def test_layer_matches_keras(case: str, tmp_path_factory) -> None:
    spec = next(c for c in _SUITE.cases if c.name == case)
    for batch, outputs in _results(tmp_path_factory)[case].items():
        for got, want in outputs:
            assert got.shape == want.shape, f"{case} batch {batch}: {got.shape} vs keras {want.shape}"
            np.testing.assert_allclose(got, want, rtol=spec.rtol, atol=spec.atol, err_msg=f"{case} batch {batch}")


def test_h5_imports_like_keras(tmp_path_factory) -> None:
    """The legacy .h5 file of the suite gives the same IR and the same weights as the .keras."""
    from sofie.ir.printer import print_module
    paths = _saved(tmp_path_factory)
    a, b = (load_model(paths[f], name="suite") for f in ("keras", "h5"))
    assert print_module(a, elide=True) == print_module(b, elide=True)
    assert a.weights.keys() == b.weights.keys()
    for k, w in a.weights.items():
        np.testing.assert_array_equal(w.data, b.weights[k].data, err_msg=k)


# ---- whole models ----------------------------------------------------------------------------

def _convnet(k):
    """A Sequential channels-last conv net: every Conv, BN and pool is wrapped in layout
    transposes at import; the sink-transposes pass leaves only the input's."""
    from tests.e2e.keras_cases import randomize
    m = k.Sequential([
        k.Input((10, 10, 3)),
        k.layers.Conv2D(8, 3, padding="same"),
        k.layers.BatchNormalization(),
        k.layers.ReLU(),
        k.layers.Conv2D(8, 3, padding="same"),
        k.layers.MaxPooling2D(2),
        k.layers.ZeroPadding2D(1),
        k.layers.DepthwiseConv2D(3),
        k.layers.UpSampling2D(2, interpolation="bilinear"),
        k.layers.Cropping2D(1),
        k.layers.Conv2D(4, 3, activation="relu"),
        k.layers.GlobalAveragePooling2D(),
        k.layers.Dense(4, activation="softmax"),
    ])
    randomize(m)
    return m


def _check(model, compiled, shapes, rtol=1e-4, atol=1e-5) -> None:
    for batch in BATCHES:
        rng = np.random.default_rng(batch)
        xs = [rng.normal(0, 1, (batch, *s)).astype(np.float32) for s in shapes]
        want = model.predict(xs if len(xs) > 1 else xs[0], verbose=0, batch_size=batch)
        want = want if isinstance(want, list) else [want]
        got = compiled(*xs)
        assert len(got) == len(want)
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, np.asarray(w), rtol=rtol, atol=atol, err_msg=f"batch {batch}")


def test_sequential_convnet_h5_and_layout(tmp_path) -> None:
    model = _convnet(keras)
    path = str(tmp_path / "convnet.h5")
    model.save(path)
    graph, _ = run_pipeline(load_model(path), GRAPH_PIPELINE)
    ops = [op.name for op in graph.functions["main"].ops]
    assert ops.count("graph.transpose") == 1, ops  # the input's: NHWC -> NCHW
    assert "graph.batch_normalization" not in ops  # folded into the Conv: the transposes are gone
    _check(model, sofie.compile(path, name="keras_convnet", blas="none"), [(10, 10, 3)])


# ---- errors ----------------------------------------------------------------------------------

def test_unknown_layer_is_named(tmp_path) -> None:
    @keras.saving.register_keras_serializable(package="sofie_test")
    class Doubler(keras.layers.Layer):
        def call(self, x):
            return x * 2

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2), Doubler(name="twice")])
    path = str(tmp_path / "custom.keras")
    model.save(path)
    with pytest.raises(sofie.SofieError, match=r"layer 'twice' is of class Doubler"):
        load_model(path)


@pytest.mark.parametrize("fmt", ["keras", "h5"])
def test_damaged_file_is_refused(tmp_path, fmt: str) -> None:
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    good = str(tmp_path / f"m.{fmt}")
    model.save(good)
    data = open(good, "rb").read()
    bad = str(tmp_path / f"bad.{fmt}")
    with open(bad, "wb") as f:
        f.write(data[: len(data) // 2])
    with pytest.raises(sofie.SofieError, match="not a readable Keras model"):
        load_model(bad)
    r = subprocess.run([os.path.join(os.path.dirname(sys.executable), "sofie-compile"), bad, "-o",
                        str(tmp_path / "out")], capture_output=True, text=True)
    assert r.returncode == 2 and "not a readable Keras model" in r.stderr and "Traceback" not in r.stderr


def test_keras_archive_without_weights_is_refused(tmp_path) -> None:
    path = str(tmp_path / "m.keras")
    keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)]).save(path)
    stripped = str(tmp_path / "stripped.model")  # no telling extension: found by its contents
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(stripped, "w") as dst:
        for n in src.namelist():
            if n != "model.weights.h5":
                dst.writestr(n, src.read(n))
    with pytest.raises(sofie.SofieError, match="no model.weights.h5"):
        load_model(stripped)


def test_unknown_format_names_the_known_ones(tmp_path) -> None:
    path = str(tmp_path / "model.bin")
    with open(path, "wb") as f:
        f.write(b"\x00garbage" * 10)
    with pytest.raises(sofie.SofieError, match=r"unsupported model format '\.bin'; sofie reads .*Keras 3 archives "
                                               r"\(\.keras\) and legacy Keras HDF5 \(\.h5\).*ONNX \(\.onnx\)"):
        load_model(path)


def test_cli_compiles_h5_and_opt_reads_keras(tmp_path) -> None:
    path = str(tmp_path / "mlp.h5")
    keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="relu")]).save(path)
    bin_dir = os.path.dirname(sys.executable)
    out = tmp_path / "out"
    r = subprocess.run([os.path.join(bin_dir, "sofie-compile"), path, "-o", str(out), "--name", "mlp"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert (out / "mlp.hxx").exists() and (out / "mlp.dat").exists()
    keras_path = str(tmp_path / "mlp.keras")
    keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="relu")]).save(keras_path)
    r = subprocess.run([os.path.join(bin_dir, "sofie-opt"), keras_path, "--canonicalize"],
                       capture_output=True, text=True)
    assert r.returncode == 0 and "graph.gemm" in r.stdout, r.stderr
