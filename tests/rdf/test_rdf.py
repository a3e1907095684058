"""sofie.rdf.define on a local RDataFrame over a TTree written here: the column against the
CompiledModel on the same events, at 1 and 2 threads (bit-identical), a single-value column,
the C++ functor under cling, and the errors. Needs ROOT (the test extra installs it): a
missing ROOT fails these tests, never skips them."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

import sofie
import sofie.rdf
from tests.rdf.models import mlp_onnx
from tests.rdf.trees import COLUMNS, events, model_inputs, write_tree

N = 2000


@pytest.fixture(scope="module")
def ROOT():
    import ROOT
    if ROOT.IsImplicitMTEnabled():  # disabling it when off only makes ROOT warn
        ROOT.DisableImplicitMT()
    return ROOT


@pytest.fixture(scope="module")
def data(tmp_path_factory, ROOT) -> tuple[str, dict[str, np.ndarray]]:
    path = str(tmp_path_factory.mktemp("tree") / "events.root")
    d = events(N)
    write_tree(path, d)
    return path, d


@pytest.fixture(scope="module")
def net(tmp_path_factory) -> sofie.CompiledModel:
    return sofie.compile(mlp_onnx(str(tmp_path_factory.mktemp("m") / "net.onnx"), n_out=3), name="net")


def per_event(model: sofie.CompiledModel, x: np.ndarray) -> np.ndarray:
    """The model on one event at a time, as RDataFrame runs it (a batch may sum in another order)."""
    return np.concatenate([model(x[i:i + 1])[0] for i in range(len(x))])


def scores(ROOT, path: str, model, column: str = "y", **kw) -> np.ndarray:
    df = ROOT.RDataFrame("t", path)
    out = sofie.rdf.define(df, column, model, list(COLUMNS), **kw).AsNumpy([column, "event"])
    order = np.argsort(out["event"])  # implicit MT returns the clusters in any order
    y = out[column][order]
    return np.stack([np.asarray(v) for v in y]) if y.dtype == object else y


def test_vector_column_at_1_and_2_threads(ROOT, data, net) -> None:
    path, d = data
    want = per_event(net, model_inputs(d))
    one = scores(ROOT, path, net)
    assert one.shape == (N, 3) and one.dtype == np.float32
    np.testing.assert_array_equal(one, want)
    # and close to the batched run and to the ONNX model itself
    np.testing.assert_allclose(one, net(model_inputs(d))[0], rtol=1e-5, atol=1e-5)
    ROOT.EnableImplicitMT(2)
    try:
        assert ROOT.RDataFrame("t", path).GetNSlots() == 2
        two = scores(ROOT, path, net)
    finally:
        ROOT.DisableImplicitMT()
    np.testing.assert_array_equal(two, one)  # bit-identical to one thread


def test_single_value_column(ROOT, data, tmp_path) -> None:
    path, d = data
    model = sofie.compile(mlp_onnx(str(tmp_path / "score.onnx"), n_out=1, seed=3), name="score")
    df = sofie.rdf.define(ROOT.RDataFrame("t", path), "s", model, list(COLUMNS))
    assert str(df.GetColumnType("s")) == "float"
    got = scores(ROOT, path, model, "s")
    np.testing.assert_array_equal(got, per_event(model, model_inputs(d))[:, 0])
    # a cache folder works as well as the CompiledModel
    np.testing.assert_array_equal(scores(ROOT, path, model.folder, "s"), got)


def test_array_column(ROOT, data, net) -> None:
    """An RVec column (a TTree array) feeds several values; with a scalar column before it."""
    path, d = data
    out = sofie.rdf.define(ROOT.RDataFrame("t", path), "y", net, ["a", "v"]).AsNumpy(["y", "event"])
    y = np.stack([np.asarray(v) for v in out["y"][np.argsort(out["event"])]])
    x = np.concatenate([d["a"][:, None], d["v"]], axis=1).astype(np.float32)
    np.testing.assert_array_equal(y, per_event(net, x))
    # too few values in an event: an error from the event loop, not garbage
    short = sofie.rdf.define(ROOT.RDataFrame("t", path), "y", net, ["v"])
    with pytest.raises(Exception, match="hold 3 value"):
        short.AsNumpy(["y"])


def test_cpp_functor_under_cling(ROOT, data, tmp_path) -> None:
    """The C++ path: sofie::Functor in a typed DefineSlot, compiled by cling (BLAS none: an
    OpenBLAS model would also need its include path and library loaded into ROOT)."""
    path, d = data
    net = sofie.compile(mlp_onnx(str(tmp_path / "net.onnx"), n_out=3), name="net", blas="none")
    ROOT.gInterpreter.Declare(f'#include "{net.header}"')
    ROOT.gInterpreter.Declare(f'''
    ROOT::RDF::RNode sofie_test_functor(ROOT::RDF::RNode df) {{
      sofie::Functor<4, TMVA_SOFIE_net::Session> f(df.GetNSlots(), "{net.weights}");
      return df.Define("af", "float(a)").Define("bf", "float(b)").Define("df", "float(d)")
               .DefineSlot("y", f, {{"af", "bf", "c", "df"}});
    }}''')
    out = ROOT.sofie_test_functor(ROOT.RDF.AsRNode(ROOT.RDataFrame("t", path))).AsNumpy(["y", "event"])
    y = np.stack([np.asarray(v) for v in out["y"][np.argsort(out["event"])]])
    np.testing.assert_allclose(y, per_event(net, model_inputs(d)), rtol=1e-5, atol=1e-5)


def test_errors(ROOT, data, net, tmp_path) -> None:
    path, _ = data
    df = ROOT.RDataFrame("t", path)
    with pytest.raises(sofie.SofieError, match="takes 4 value"):
        sofie.rdf.define(df, "y", net, ["a", "b"])
    with pytest.raises(sofie.SofieError, match="has 1 output"):
        sofie.rdf.define(df, "y", net, list(COLUMNS), output=1)
    folder = tmp_path / "copy"
    shutil.copytree(net.folder, folder)
    os.remove(folder / "net.dat")
    with pytest.raises(sofie.SofieError, match="net.dat"):
        sofie.rdf.define(df, "y", str(folder), list(COLUMNS))
