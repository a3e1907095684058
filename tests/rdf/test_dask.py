"""sofie.rdf.define on a distributed RDataFrame over a Dask LocalCluster of two worker
processes (one thread each): the library, bridge header and weights are shipped by define
itself, results equal the local run, and weights missing on the workers fail the job with
an error, within a timeout, never a hang."""

from __future__ import annotations

import json
import os
import shutil
import threading

import numpy as np
import pytest

import sofie
import sofie.rdf
from tests.rdf.models import mlp_onnx
from tests.rdf.trees import COLUMNS, events, model_inputs, write_tree

N = 1000


@pytest.fixture(scope="module")
def client():
    from dask.distributed import Client, LocalCluster
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    c = Client(cluster)
    yield c
    c.close()
    cluster.close()


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> tuple[str, dict[str, np.ndarray]]:
    import ROOT  # noqa: F401  (writes the tree)
    path = str(tmp_path_factory.mktemp("tree") / "events.root")
    d = events(N, seed=5)
    write_tree(path, d, cluster=100)
    return path, d


def distributed_scores(client, path: str, model, n_out: int, **kw) -> np.ndarray:
    import ROOT
    df = ROOT.RDataFrame("t", path, executor=client, npartitions=2)
    df = sofie.rdf.define(df, "y", model, list(COLUMNS), **kw)
    # distributed AsNumpy of an RVec column fails inside ROOT 6.40: read the elements
    cols = [f"y{k}" for k in range(n_out)]
    for k, c in enumerate(cols):
        df = df.Define(c, f"y[{k}]")
    out = df.AsNumpy([*cols, "event"])
    order = np.argsort(out["event"])
    return np.stack([out[c][order] for c in cols], axis=1)


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> sofie.CompiledModel:
    return sofie.compile(mlp_onnx(str(tmp_path_factory.mktemp("m") / "dnet.onnx"), n_out=2, seed=7), name="dnet")


def test_distributed_equals_local(client, tree, model) -> None:
    path, d = tree
    got = distributed_scores(client, path, model, 2)
    x = model_inputs(d)
    local = np.concatenate([model(x[i:i + 1])[0] for i in range(N)])  # what a local RDataFrame gives
    np.testing.assert_array_equal(got, local)


def test_missing_weights_on_workers_is_an_error(client, tree, model, tmp_path) -> None:
    path, _ = tree
    folder = tmp_path / "gone"
    shutil.copytree(model.folder, folder)
    # weights under a name no worker has (the first test shipped dnet.dat to every worker's
    # folder, where the bridge would rightly find it), and not shipped
    info = json.loads((folder / "manifest.json").read_text())
    info["weights"] = "gone.dat"
    (folder / "manifest.json").write_text(json.dumps(info))
    os.remove(folder / "dnet.dat")
    result: dict[str, object] = {}

    def run() -> None:
        try:
            distributed_scores(client, path, str(folder), 2, ship_weights=False)
        except BaseException as e:  # noqa: B036  (whatever the worker's error becomes)
            result["error"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(timeout=300)
    assert not t.is_alive(), "the distributed job hung on a worker failure"
    assert "gone/gone.dat" in str(result.get("error")), result
