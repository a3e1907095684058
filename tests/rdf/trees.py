"""A small TTree for the RDataFrame tests: columns of mixed types, several clusters."""

from __future__ import annotations

import numpy as np

# column name -> (numpy type, TTree leaf code): TTree floats are Float_t, and inputs mix types
COLUMNS = {"a": (np.float32, "F"), "b": (np.float64, "D"), "c": (np.float32, "F"), "d": (np.int32, "I")}


def events(n: int, seed: int = 1) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = {name: (rng.standard_normal(n) * 3).astype(t) for name, (t, _) in COLUMNS.items()}
    out["event"] = np.arange(n, dtype=np.int64)
    out["v"] = rng.standard_normal((n, 3)).astype(np.float32)  # an array branch: an RVecF column
    return out


def write_tree(path: str, data: dict[str, np.ndarray], cluster: int = 250) -> None:
    """A TTree 't' with a cluster every `cluster` events, so implicit MT has tasks to share."""
    import ROOT
    f = ROOT.TFile(path, "RECREATE")
    t = ROOT.TTree("t", "sofie rdf test")
    t.SetAutoFlush(cluster)
    codes = {**{k: c for k, (_, c) in COLUMNS.items()}, "event": "L"}
    buffers = {k: np.zeros(1, dtype=data[k].dtype) for k in codes}
    for k, code in codes.items():
        t.Branch(k, buffers[k], f"{k}/{code}")
    v = np.zeros(3, np.float32)
    t.Branch("v", v, "v[3]/F")
    for i in range(len(data["event"])):
        for k in codes:
            buffers[k][0] = data[k][i]
        v[:] = data["v"][i]
        t.Fill()
    t.Write()
    f.Close()


def model_inputs(data: dict[str, np.ndarray]) -> np.ndarray:
    """The events as the model sees them: each column converted to float32, in order."""
    return np.stack([data[k].astype(np.float32) for k in COLUMNS], axis=1)
