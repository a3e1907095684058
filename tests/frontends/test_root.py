"""ROOT files, read with uproot: TMultiLayerPerceptron of every neuron type compared with
ROOT's own `TMultiLayerPerceptron::Evaluate` (stored by data/make_root_files.py, which needs
ROOT; the tests do not), sofie models saved into and read back from ROOT files, `file:name`
addresses, and the errors for damaged files and wrong names.

TMultiLayerPerceptron computes in double and so does the compiled model: rtol 1e-12 (ROOT's
sigmoid is a tabulated polynomial good to about 1e-15; sums run in another order).
"""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import onnx
import pytest
import uproot
from onnx import helper

import sofie
from sofie.errors import SofieError
from sofie.frontends import format_of, load_model
from sofie.frontends.onnx import load_onnx
from sofie.frontends.root import load_root, open_root, save_root
from sofie.frontends.root_mlp import mlp_to_onnx
from sofie.ir.printer import print_module
from tests.e2e.test_errors import assert_user_error, cli

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
TMLP = os.path.join(DATA, "tmlp.root")
SINGLE = os.path.join(DATA, "tmlp_single.root")  # the "tanh" network, under the name "net"
with open(os.path.join(DATA, "tmlp_reference.json")) as _f:
    REFERENCE = json.load(_f)
RTOL, ATOL = 1e-12, 1e-13


def _events(model: str) -> tuple[np.ndarray, np.ndarray]:
    r = REFERENCE[model]
    return np.array(r["events"], dtype=np.float64), np.array(r["evaluate"], dtype=np.float64)


def _all_networks_in_one_graph() -> onnx.ModelProto:
    """Every network of tmlp.root side by side (inputs NAME.x, outputs NAME.y), so one compile
    checks them all; each is what `load_model('tmlp.root:NAME')` imports."""
    f = open_root(TMLP)
    nodes, inits, inputs, outputs = [], [], [], []
    for name in REFERENCE:
        g = onnx.compose.add_prefix(mlp_to_onnx(f[name], name), f"{name}.").graph
        nodes += g.node
        inits += g.initializer
        inputs += g.input
        outputs += g.output
    graph = helper.make_graph(nodes, "tmlp_all", inputs, outputs, inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


@pytest.mark.slow
def test_every_neuron_type_matches_evaluate() -> None:
    """sigmoid, tanh, linear, gauss hidden layers; softmax and sigmoid outputs; an external
    TFormula with parameters; normalised inputs; at batch 1 and 6."""
    compiled = sofie.compile(_all_networks_in_one_graph(), name="tmlp_all", blas="none")
    names = list(REFERENCE)
    for batch in (1, 6):
        ys = compiled(*(_events(n)[0][:batch] for n in names))
        for name, y in zip(names, ys):
            np.testing.assert_allclose(y, _events(name)[1][:batch], rtol=RTOL, atol=ATOL,
                                       err_msg=f"{name} at batch {batch}")


@pytest.mark.slow
def test_address_without_name_compiles_end_to_end() -> None:
    x, want = _events("tanh")
    compiled = sofie.compile(SINGLE, blas="none")
    assert compiled.name == "net"
    for batch in (1, 6):
        np.testing.assert_allclose(compiled(x[:batch])[0], want[:batch], rtol=RTOL, atol=ATOL)


def test_each_network_imports_by_address() -> None:
    for name in REFERENCE:
        m = load_model(f"{TMLP}:{name}")
        assert m.name == name
        assert [str(d) for d in m.main.args[0].type.shape] == ["N", "3"]
        assert m.main.args[0].type.dtype == "f64"
    assert load_model(f"{TMLP}:sigmoid;1", name="other").name == "other"  # a cycle is accepted
    text = print_module(load_model(f"{TMLP}:gauss"))
    assert "graph.exp" in text and "graph.neg" in text  # exp(-a*a)
    assert "graph.softmax" in print_module(load_model(f"{TMLP}:softmax"))
    assert "graph.tanh" in print_module(load_model(f"{TMLP}:external"))  # [1]*TMath::TanH(x)
    r = cli("sofie-opt", f"{TMLP}:softmax", "--elide-weights")
    assert r.returncode == 0 and "module @softmax" in r.stdout and "graph.softmax" in r.stdout, r.stderr


def test_root_file_errors(tmp_path) -> None:
    with pytest.raises(SofieError, match=r"holds 7 models: sigmoid \(TMultiLayerPerceptron\), .*address one as"):
        load_model(TMLP)
    with pytest.raises(SofieError, match=r"no object named 'nope'; its models: sigmoid"):
        load_model(f"{TMLP}:nope")
    with pytest.raises(SofieError, match=r"tmlp.root:h is a TH1F, not a model"):
        load_model(f"{TMLP}:h")
    empty = str(tmp_path / "empty.root")
    with uproot.recreate(empty) as f:
        f["note"] = "just a string"
    with pytest.raises(SofieError, match="holds no model"):
        load_model(empty)
    onnx_path = str(tmp_path / "m.onnx")
    onnx.save(mlp_to_onnx(uproot.open(SINGLE)["net"], "net"), onnx_path)
    with pytest.raises(SofieError, match="names a model inside a ROOT file, but .* holds ONNX"):
        load_model(onnx_path + ":net")


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_damaged_root_file(tmp_path, damage: str) -> None:
    data = open(TMLP, "rb").read()
    path = tmp_path / "damaged.root"
    if damage == "truncated":
        path.write_bytes(data[: len(data) // 3])
    else:  # the header survives, the rest is noise
        path.write_bytes(data[:100] + bytes(np.random.default_rng(0).integers(0, 256, len(data) - 100, np.uint8)))
    with pytest.raises(SofieError, match=r"damaged.root"):
        load_model(str(path) + ":sigmoid")
    r = cli("sofie-compile", f"{path}:sigmoid", "-o", str(tmp_path / "out"))
    assert_user_error(r, "damaged.root")


def test_save_root_round_trip(tmp_path, model_dir: str) -> None:
    """sofie-compile --save-root writes the imported model's IR text into a ROOT file (next to
    what the file holds already); sofie-compile FILE.root:NAME then generates the same code."""
    onnx_path = os.path.join(model_dir, "linear_10x50.onnx")
    analysis = str(tmp_path / "analysis.root")
    shutil.copy(TMLP, analysis)  # an existing file: its objects are kept
    direct, via_root = tmp_path / "direct", tmp_path / "via_root"
    r = cli("sofie-compile", onnx_path, "-o", str(direct), "--save-root", analysis)
    assert r.returncode == 0, r.stderr
    assert f"saved {analysis}:linear_10x50" in r.stderr
    f = uproot.open(analysis)
    assert f.classnames(cycle=False)["linear_10x50"] == "TObjString"
    assert f.classnames(cycle=False)["sigmoid"] == "TMultiLayerPerceptron"
    r = cli("sofie-compile", f"{analysis}:linear_10x50", "-o", str(via_root))
    assert r.returncode == 0, r.stderr
    for ext in (".hxx", ".dat"):
        a = (direct / f"linear_10x50{ext}").read_bytes()
        b = (via_root / f"linear_10x50{ext}").read_bytes()
        if ext == ".hxx":  # the source line names the file compiled
            a, b = (x.replace(b"linear_10x50.onnx", b"").replace(b"analysis.root:linear_10x50", b"") for x in (a, b))
        assert a == b, ext


def test_save_root_replaces_and_names(tmp_path, model_dir: str) -> None:
    m = load_onnx(os.path.join(model_dir, "linear_10x50.onnx"))
    path = str(tmp_path / "models.root")
    assert save_root(m, path) == f"{path}:linear_10x50"
    assert save_root(m, path + ":second") == f"{path}:second"
    assert save_root(m, path + ":second") == f"{path}:second"  # replaced, not a second cycle
    keys = uproot.open(path).keys()
    assert sorted(keys) == ["linear_10x50;1", "second;1"], keys
    with pytest.raises(SofieError, match="holds 2 models"):
        load_root(path)
    back = load_root(path, member="second")
    assert back.name == "linear_10x50"  # the module's own name, as for IR text files
    assert print_module(back) == print_module(m)
    not_root = tmp_path / "notes.txt"
    not_root.write_text("hello")
    with pytest.raises(SofieError, match="exists and is not a ROOT file"):
        save_root(m, str(not_root))


def test_format_is_told_by_contents(tmp_path, model_dir: str) -> None:
    """Names do not matter: a ROOT file called .dat, ONNX called .bin, IR text called .txt."""
    copies = {"root": (SINGLE, "model.dat"), "onnx": (os.path.join(model_dir, "conv1.onnx"), "model.bin")}
    for kind, (src, dst) in copies.items():
        shutil.copy(src, tmp_path / dst)
        assert format_of(str(tmp_path / dst)).module.endswith(kind), kind
    assert load_model(str(tmp_path / "model.dat")).name == "net"
    (tmp_path / "model.txt").write_text(print_module(load_model(str(tmp_path / "model.bin"))))
    assert format_of(str(tmp_path / "model.txt")).module.endswith("ir_text")
    unknown = tmp_path / "weights.xyz"
    unknown.write_bytes(b"\x00\x01 not a model")
    r = cli("sofie-compile", str(unknown), "-o", str(tmp_path / "out"))
    assert_user_error(r, "unsupported model format '.xyz'", "ROOT files", "ONNX", "torch.export programs",
                      "sofie IR text")
