"""Writes the ROOT files the ROOT frontend's tests read, and ROOT's own outputs for them.

Needs ROOT (PyROOT), which sofie itself does not: in a separate virtualenv,
    python3 -m venv /tmp/rootvenv && /tmp/rootvenv/bin/pip install root numpy
    /tmp/rootvenv/bin/python tests/frontends/data/make_root_files.py
writes, next to this script:
- tmlp.root: one TMultiLayerPerceptron per neuron type (sigmoid, tanh, linear, gauss hidden
  layers; softmax and sigmoid output layers; an external TFormula with parameters), inputs
  and outputs normalised ("@"), trained a few epochs on a small random tree so that weights
  and normalisations are not the defaults; and a histogram, which is not a model.
- tmlp_single.root: a file holding one model (addressed without a name).
- tmlp_reference.json: for each model, events and TMultiLayerPerceptron::Evaluate(i, event)
  for every output i: ROOT's own prediction, which the tests compare sofie's with.
A rerun may give other weights (ROOT's training draws from generators of its own); the
reference is written in the same run, so files and reference always agree.
`--check FILE.root` instead opens a file sofie wrote (sofie-compile --save-root) with ROOT and
prints the models it holds, to show ROOT reads them.
"""

from __future__ import annotations

import array
import json
import os
import sys

import numpy as np
import ROOT

HERE = os.path.dirname(os.path.abspath(__file__))
N_TRAIN = 200
N_EVENTS = 6  # reference events per model; the tests run batch 1 (the first) and all of them

# name: (layout, hidden neuron type, external function, its derivative, parameters)
MODELS = {
    "sigmoid": ("@x0,@x1,@x2:6:4:@y", "kSigmoid", None, None, ()),
    "tanh": ("@x0,x1,@x2:5:@y", "kTanh", None, None, ()),
    "linear": ("@x0,@x1,x2:4:y", "kLinear", None, None, ()),
    "gauss": ("@x0,@x1,@x2:5:3:@y", "kGauss", None, None, ()),
    "softmax": ("@x0,@x1,@x2:6:c0,c1,c2!", "kSigmoid", None, None, ()),
    "sigmoid_out": ("@x0,x1,@x2:4:c0!", "kTanh", None, None, ()),
    "external": ("@x0,@x1,@x2:5:@y", "kExternal", "[0]*x/(1+abs(x))+[1]*TMath::TanH(x)",
                 "[0]/((1+abs(x))*(1+abs(x)))+[1]*(1-TMath::TanH(x)^2)", (0.7, 0.4)),
}


def training_tree() -> ROOT.TTree:
    rng = np.random.default_rng(7)
    t = ROOT.TTree("data", "training events")
    cols = {n: array.array("d", [0.0]) for n in ("x0", "x1", "x2", "y", "c0", "c1", "c2")}
    for n, buf in cols.items():
        t.Branch(n, buf, f"{n}/D")
    for _ in range(N_TRAIN):
        x = rng.normal([5.0, -2.0, 0.0], [3.0, 0.5, 1.0])
        for i in range(3):
            cols[f"x{i}"][0] = x[i]
        cols["y"][0] = 20.0 + 4.0 * np.tanh(0.3 * x[0]) + x[1] * x[2]
        label = int(np.argmax([x[0] / 3.0, x[2], -x[1] - 2.0]))
        for i in range(3):
            cols[f"c{i}"][0] = float(i == label)
        t.Fill()
    return t


def build(name: str, tree: ROOT.TTree) -> ROOT.TMultiLayerPerceptron:
    layout, kind, ext, dext, params = MODELS[name]
    ntype = getattr(ROOT.TNeuron, kind)
    if ext:
        f = ROOT.TFormula(f"{name}_f", ext)
        d = ROOT.TFormula(f"{name}_d", dext)
        for i, p in enumerate(params):
            f.SetParameter(i, p)
            d.SetParameter(i, p)
        ROOT.SetOwnership(f, False)
        ROOT.SetOwnership(d, False)
        mlp = ROOT.TMultiLayerPerceptron(layout, tree, "Entry$%2==0", "", ntype, f"{name}_f", f"{name}_d")
    else:
        mlp = ROOT.TMultiLayerPerceptron(layout, tree, "Entry$%2==0", "", ntype)
    mlp.SetLearningMethod(ROOT.TMultiLayerPerceptron.kBFGS)
    mlp.Train(8, "")
    return mlp


def events() -> np.ndarray:
    """Typical events, one far out (saturated sigmoids and tanhs), one at zero."""
    rng = np.random.default_rng(11)
    x = rng.normal([5.0, -2.0, 0.0], [3.0, 0.5, 1.0], size=(N_EVENTS, 3))
    x[-2] = [40.0, -9.0, 6.0]
    x[-1] = 0.0
    return x


def reference(mlp: ROOT.TMultiLayerPerceptron, x: np.ndarray) -> list[list[float]]:
    n_out = str(mlp.GetStructure()).split(":")[-1].count(",") + 1
    return [[mlp.Evaluate(i, np.ascontiguousarray(row)) for i in range(n_out)] for row in x]


def main() -> tuple:
    ROOT.gRandom.SetSeed(3)
    tree = training_tree()
    x = events()
    ref, mlps = {}, []
    f = ROOT.TFile(os.path.join(HERE, "tmlp.root"), "RECREATE")
    for name in MODELS:
        mlp = build(name, tree)
        mlps.append(mlp)
        f.cd()
        mlp.Write(name)
        ref[name] = {"layout": MODELS[name][0], "events": x.tolist(), "evaluate": reference(mlp, x)}
        if name == "tanh":
            single = ROOT.TFile(os.path.join(HERE, "tmlp_single.root"), "RECREATE")
            mlp.Write("net")
            single.Close()
            f.cd()
    h = ROOT.TH1F("h", "not a model", 4, 0.0, 1.0)
    h.Write()
    f.Close()
    with open(os.path.join(HERE, "tmlp_reference.json"), "w") as out:
        out.write("{\n" + ",\n".join(f" {json.dumps(k)}: {json.dumps(v)}" for k, v in ref.items()) + "\n}\n")
    return mlps, tree


def check(path: str) -> None:
    f = ROOT.TFile.Open(path)
    for key in f.GetListOfKeys():
        obj = key.ReadObj()
        text = obj.GetString().Data() if obj.ClassName() == "TObjString" else ""
        print(f"{key.GetName()};{key.GetCycle()} {obj.ClassName()} {len(text)} characters: {text[:60]!r}")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--check":
        check(sys.argv[2])
    else:
        kept = main()
        # the networks point into the tree, and ROOT's teardown at exit frees them in an order
        # that crashes; the files are closed, so leave without it
        sys.stdout.flush()
        os._exit(0)
