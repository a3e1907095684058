"""PyTorch: nn.Modules through torch.export (dynamic batch) and torch's default ONNX exporter,
`.pt2` files, the ONNX files of both torch exporters, and the messages when a path fails.

Compared with the module's own prediction `module(x)` at batch 1 and 4 (the example input has
batch 2, so a batch torch fixed would show): float32 at rtol 1e-4 / atol 1e-5, since sofie's
convolutions, GEMMs and reductions sum in another order than torch's.
"""

from __future__ import annotations

import logging
import os
import shutil

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import sofie
from sofie.errors import SofieError
from sofie.frontends import load_model
from tests.e2e.test_errors import assert_user_error, cli

RTOL, ATOL = 1e-4, 1e-5


class CNN(nn.Module):
    """Conv + BatchNorm + ReLU twice, AdaptiveAvgPool to 2x2, LayerNorm, Linear."""

    def __init__(self) -> None:
        super().__init__()
        self.c1, self.bn1 = nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8)
        self.c2, self.bn2 = nn.Conv2d(8, 8, 3, padding=1, stride=2), nn.BatchNorm2d(8)
        self.pool = nn.AdaptiveAvgPool2d((2, 2))
        self.ln = nn.LayerNorm(32)
        self.fc = nn.Linear(32, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.bn1(self.c1(x)))
        y = torch.relu(self.bn2(self.c2(y)))
        return self.fc(self.ln(self.pool(y).flatten(1)))


class FixedBatch(nn.Module):
    """Reshapes to a literal batch of 2: torch.export cannot keep the batch dynamic."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(12, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.reshape(2, 12))


class DataDependent(nn.Module):
    """Python control flow on a tensor's value: torch.export refuses it, TorchScript's tracer
    records the branch taken."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum() > 0:
            return torch.tanh(self.fc(x))
        return self.fc(x)


def _cnn() -> nn.Module:
    torch.manual_seed(0)
    m = CNN().eval()
    for bn in (m.bn1, m.bn2):  # statistics other than the defaults, so BatchNorm matters
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2.0)
    return m


EXAMPLE = (torch.randn(2, 3, 12, 12),)


@pytest.fixture(scope="module")
def cnn() -> nn.Module:
    return _cnn()


def _assert_matches(compiled: sofie.CompiledModel, module: nn.Module, shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(1)
    for batch in (1, 4):
        x = rng.standard_normal((batch, *shape)).astype(np.float32)
        with torch.no_grad():
            want = module(torch.from_numpy(x)).numpy()
        np.testing.assert_allclose(compiled(x)[0], want, rtol=RTOL, atol=ATOL, err_msg=f"batch {batch}")


@pytest.mark.slow
def test_cnn_from_module_through_torch_export(cnn: nn.Module, caplog) -> None:
    with caplog.at_level(logging.INFO, logger="sofie"):
        m = load_model(cnn, example_inputs=EXAMPLE)
    assert "exported with torch.export (batch dynamic)" in caplog.text
    assert m.main.args[0].type.shape[0] == "N"  # a symbol, whatever torch called it
    ops = {op.name for op in m.main.ops}
    assert {"graph.average_pool", "graph.layer_normalization"} <= ops, ops  # opset 18+: LayerNormalization
    _assert_matches(sofie.compile(cnn, example_inputs=EXAMPLE, blas="none"), cnn, (3, 12, 12))


@pytest.mark.slow
def test_cnn_from_pt2_file(cnn: nn.Module, tmp_path) -> None:
    """`torch.export.save` writes it; sofie reads it by content, whatever its name."""
    program = torch.export.export(cnn, EXAMPLE, dynamic_shapes=({0: torch.export.Dim.AUTO},))
    path = str(tmp_path / "cnn.pt2")
    torch.export.save(program, path)
    _assert_matches(sofie.compile(path, blas="none"), cnn, (3, 12, 12))
    renamed = str(tmp_path / "cnn.model")
    shutil.copy(path, renamed)
    assert load_model(renamed).main.args[0].type.shape[0] == "N"


def test_exported_program_compiles(cnn: nn.Module) -> None:
    program = torch.export.export(cnn, EXAMPLE, dynamic_shapes=({0: torch.export.Dim("batch")},))
    m = load_model(program, name="prog")
    assert m.name == "prog" and m.main.args[0].type.shape[0] == "N"
    from sofie.jit import _model_bytes  # the cache key: the program's graph and weights
    assert _model_bytes(program, None) == _model_bytes(program, None) != _model_bytes(cnn, EXAMPLE)
    other = _cnn()
    other.fc.bias.data += 1
    changed = torch.export.export(other, EXAMPLE, dynamic_shapes=({0: torch.export.Dim("batch")},))
    assert _model_bytes(changed, None) != _model_bytes(program, None)


@pytest.mark.slow
def test_onnx_from_default_exporter_readme_line(cnn: nn.Module, tmp_path) -> None:
    """The export line docs/guide/formats.md shows: default exporter (opset 18+), dynamic batch."""
    path = str(tmp_path / "cnn.onnx")
    x = EXAMPLE[0]
    torch.onnx.export(cnn, (x,), path, dynamic_shapes=({0: torch.export.Dim("batch")},))
    _assert_matches(sofie.compile(path, blas="none"), cnn, (3, 12, 12))


@pytest.mark.slow
def test_onnx_from_legacy_exporter(cnn: nn.Module, tmp_path) -> None:
    """The line of docs/guide/formats.md: only the input's batch is declared dynamic."""
    path = str(tmp_path / "cnn_legacy.onnx")
    x = EXAMPLE[0]
    torch.onnx.export(cnn, (x,), path, dynamo=False, input_names=["x"], dynamic_axes={"x": {0: "batch"}})
    _assert_matches(sofie.compile(path, blas="none"), cnn, (3, 12, 12))


def test_explicit_dynamic_shapes() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 4), nn.GELU()).eval()
    m = load_model(net, example_inputs=(torch.randn(3, 6),),
                   dynamic_shapes=({0: torch.export.Dim("events", max=1024)},))
    assert m.main.args[0].type.shape == ("N", 6) or list(m.main.args[0].type.shape) == ["N", 6]
    fixed = load_model(net, example_inputs=(torch.randn(3, 6),), dynamic_shapes=({},))
    assert list(fixed.main.args[0].type.shape) == [3, 6]


def test_batch_that_cannot_be_dynamic_is_reported() -> None:
    torch.manual_seed(0)
    with pytest.warns(UserWarning, match=r"batch cannot be dynamic.*input 'x' \(axis 0 = 2\)"):
        m = load_model(FixedBatch().eval(), example_inputs=(torch.randn(2, 2, 6),))
    assert list(m.main.args[0].type.shape) == [2, 2, 6]


# the module is untraceable on purpose: torch's tracer says so, as it should to a user
@pytest.mark.filterwarnings("ignore:Converting a tensor to a Python boolean:torch.jit.TracerWarning")
def test_untraceable_module_falls_back_to_legacy_exporter(caplog) -> None:
    torch.manual_seed(0)
    with pytest.warns(UserWarning, match="torch.export failed .*legacy TorchScript exporter") as record, \
            caplog.at_level(logging.INFO, logger="sofie"):
        m = load_model(DataDependent().eval(), example_inputs=(torch.ones(2, 4),))
    assert "legacy TorchScript ONNX exporter" in caplog.text
    # our warning says it once; torch's deprecation notices for the same export are kept quiet
    assert [str(w.message) for w in record if issubclass(w.category, DeprecationWarning)] == []
    assert m.main.args[0].type.shape[0] == "N"


def test_torch_errors(tmp_path, cnn: nn.Module) -> None:
    with pytest.raises(SofieError, match="needs example_inputs="):
        load_model(cnn)
    with pytest.raises(SofieError, match="torch.export failed with the dynamic_shapes given"):
        load_model(FixedBatch().eval(), example_inputs=(torch.randn(2, 2, 6),),
                   dynamic_shapes=({0: torch.export.Dim("batch")},))
    state = str(tmp_path / "weights.pt")
    torch.save(cnn.state_dict(), state)
    with pytest.raises(SofieError, match=r"unsupported model format '\.pt': a torch.save file.*torch.export.save"):
        load_model(state)


def test_damaged_pt2(cnn: nn.Module, tmp_path) -> None:
    path = tmp_path / "cnn.pt2"
    torch.export.save(torch.export.export(cnn, EXAMPLE), str(path))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(SofieError, match="not a readable torch.export program"):
        load_model(str(path))


class Zoo(nn.Module):
    """Layers users bring, side by side in one module so that one export covers them all:
    each takes its own input (batch on axis 0) and gives its own output."""

    SHAPES = {"act": (3, 16), "conv1d": (4, 20), "pools": (4, 10, 10), "layernorm": (4, 5), "reduce": (5, 6),
              "attention": (5, 16), "lstm": (5, 6), "interpolate": (3, 4, 4), "norms": (4, 5, 5),
              "views": (4, 6), "embedding": (5,), "topk": (6,)}

    def __init__(self) -> None:
        super().__init__()
        self.conv1d = nn.Sequential(nn.Conv1d(4, 8, 3), nn.BatchNorm1d(8), nn.MaxPool1d(2), nn.AdaptiveAvgPool1d(1))
        self.pools = nn.Sequential(nn.Conv2d(4, 8, 3, groups=2), nn.AvgPool2d(2), nn.AdaptiveMaxPool2d(1))
        self.ln = nn.LayerNorm([4, 5])
        self.attention = nn.TransformerEncoderLayer(16, 2, 32, batch_first=True, dropout=0.0)
        self.lstm = nn.LSTM(6, 8, batch_first=True)
        self.norms = nn.Sequential(nn.InstanceNorm2d(4, affine=True), nn.GroupNorm(2, 4), nn.PReLU())
        self.embedding = nn.Embedding(10, 4)

    def forward(self, act, conv1d, pools, layernorm, reduce, attention, lstm, interpolate, norms, views,
                embedding, topk):
        return (
            F.gelu(act) + F.silu(act) + F.softplus(act) + F.elu(act) + F.hardswish(act) + F.mish(act),
            self.conv1d(conv1d).flatten(1),
            self.pools(pools).flatten(1),
            F.softmax(self.ln(layernorm), -1) + F.log_softmax(layernorm, 1),
            reduce.mean(1, keepdim=True) + reduce.amax(-1, keepdim=True) + reduce.var(1, keepdim=True),
            self.attention(attention),
            self.lstm(lstm)[0],
            F.interpolate(interpolate, scale_factor=2, mode="bilinear"),
            self.norms(norms),
            torch.cat(torch.chunk(views, 2, 1)[::-1], 1).permute(0, 2, 1).reshape(views.shape[0], -1)[:, 1::2],
            self.embedding((embedding.abs() * 3).long().clamp(max=9)).sum(1),
            topk.cumsum(1) + torch.topk(topk, 2, dim=1).values.sum(1, keepdim=True),
        )


@pytest.mark.slow
def test_layers_through_default_exporter_import_exactly() -> None:
    """What torch's default exporter makes of common layers (opset 18+ forms: ReduceMean with
    an axes input, LayerNormalization, ...) imports and means what torch computes: the numpy
    interpreter on the imported graph against module(x), batch 1 and 3."""
    from sofie.ir.interpret import run_function
    torch.manual_seed(0)
    zoo = Zoo().eval()
    m = load_model(zoo, example_inputs=tuple(torch.randn(2, *s) for s in Zoo.SHAPES.values()))
    assert all(a.type.shape[0] == "N" for a in m.main.args)
    for batch in (1, 3):
        xs = [torch.randn(batch, *s) for s in Zoo.SHAPES.values()]
        with torch.no_grad():
            want = zoo(*xs)
        got = run_function(m, [x.numpy() for x in xs])
        for name, g, w in zip(Zoo.SHAPES, got, want):
            np.testing.assert_allclose(g, w.numpy(), rtol=RTOL, atol=ATOL, err_msg=f"{name} at batch {batch}")


@pytest.mark.slow
def test_cli_compiles_pt2(cnn: nn.Module, tmp_path) -> None:
    path = str(tmp_path / "cnn.pt2")
    torch.export.save(torch.export.export(cnn, EXAMPLE, dynamic_shapes=({0: torch.export.Dim.AUTO},)), path)
    out = tmp_path / "out"
    r = cli("sofie-compile", path, "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert os.path.isfile(out / "cnn.hxx") and os.path.isfile(out / "cnn.dat")
    assert_user_error(cli("sofie-compile", path + ":cnn", "-o", str(out)), "names a model inside a ROOT file")


def test_cache_key_tells_modules_apart_by_their_forward_code() -> None:
    """Two modules that print alike and hold the same weights, but compute differently, must
    not share a cached build."""
    from sofie.jit import _torch_bytes

    class Relu(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = torch.nn.Linear(3, 3)

        def forward(self, x):
            return self.fc(x).relu()

    class Tanh(Relu):
        def forward(self, x):
            return self.fc(x).tanh()

    Tanh.__name__ = Tanh.__qualname__ = "Relu"
    a, b = Relu(), Tanh()
    b.load_state_dict(a.state_dict())
    x = torch.zeros(1, 3)
    assert repr(a) == repr(b)
    assert _torch_bytes(a, (x,), None) != _torch_bytes(b, (x,), None)
    c = Relu()
    c.load_state_dict(a.state_dict())
    assert _torch_bytes(a, (x,), None) == _torch_bytes(c, (x,), None)
