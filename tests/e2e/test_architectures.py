"""Real architectures users bring, exported by torch at a dynamic batch (and a dynamic
sequence length where the model has one), compiled once each and compared with onnxruntime
at two batch sizes from the one build.

Tolerances: float32, rtol 1e-4 / atol 1e-5. The models are a few layers deep with weights at
torch's default init; GEMMs, convolutions and reductions sum in another order than
onnxruntime, a few ulps per accumulation, and softmax / layer norm divide by those sums.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from torch import nn

import sofie
from tests.conftest import ort_run

RTOL, ATOL = 1e-4, 1e-5
BATCHES = (1, 3)


class TransformerEncoder(nn.Module):
    """torch.nn.TransformerEncoder over [N, T, D] tokens, padding positions masked out."""

    def __init__(self, d: int = 32, heads: int = 4, layers: int = 2) -> None:
        super().__init__()
        layer = nn.TransformerEncoderLayer(d, heads, dim_feedforward=64, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Linear(d, 5)

    def forward(self, x):
        mask = x[:, :, 0] == 0.0  # exactly-zero first feature marks padding (Equal -> Where)
        y = self.encoder(x, src_key_padding_mask=mask)
        return self.head(y.mean(dim=1))


class ViT(nn.Module):
    """A ViT-style encoder: patch embedding, class token, learned positions, pre-norm blocks."""

    def __init__(self, d: int = 32, patches: int = 16) -> None:
        super().__init__()
        self.embed = nn.Conv2d(3, d, 4, stride=4)
        self.cls = nn.Parameter(torch.randn(1, 1, d))
        self.pos = nn.Parameter(torch.randn(1, patches + 1, d) * 0.1)
        layer = nn.TransformerEncoderLayer(d, 4, dim_feedforward=64, dropout=0.0, batch_first=True,
                                           norm_first=True, activation="gelu")
        self.blocks = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, 10)

    def forward(self, x):
        t = self.embed(x).flatten(2).transpose(1, 2)  # [N, 16, d]
        t = torch.cat([self.cls.expand(x.size(0), -1, -1), t], dim=1) + self.pos
        return self.head(self.norm(self.blocks(t))[:, 0])


class TimeSeriesConv(nn.Module):
    """A 1-D conv net over [N, C, T]: conv / batch norm / pooling, then a linear head."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv1d(4, 16, 5, padding=2), nn.BatchNorm1d(16), nn.ReLU(), nn.MaxPool1d(2),
            nn.Conv1d(16, 32, 3, padding=2, dilation=2), nn.BatchNorm1d(32), nn.ReLU(),
            nn.Conv1d(32, 32, 3, groups=4, padding=1), nn.ReLU(), nn.AdaptiveAvgPool1d(1), nn.Flatten(),
            nn.Linear(32, 3))

    def forward(self, x):
        return self.net(x)


def _block(cin: int, cout: int) -> nn.Module:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(),
                         nn.Conv2d(cout, cout, 3, padding=1), nn.ReLU())


class UNet(nn.Module):
    """Two levels down, ConvTranspose up on one side and Resize (bilinear) on the other,
    skip connections concatenated."""

    def __init__(self) -> None:
        super().__init__()
        self.d1, self.d2, self.mid = _block(3, 8), _block(8, 16), _block(16, 32)
        self.up2 = nn.ConvTranspose2d(32, 16, 2, stride=2)
        self.u2 = _block(32, 16)
        self.u1 = _block(16 + 8, 8)
        self.out = nn.Conv2d(8, 2, 1)

    def forward(self, x):
        a = self.d1(x)
        b = self.d2(nn.functional.max_pool2d(a, 2))
        m = self.mid(nn.functional.max_pool2d(b, 2))
        u = self.u2(torch.cat([self.up2(m), b], 1))
        u = nn.functional.interpolate(u, scale_factor=2, mode="bilinear", align_corners=False)
        return self.out(self.u1(torch.cat([u, a], 1)))


class SqueezeExcite(nn.Module):
    def __init__(self, c: int, r: int = 4) -> None:
        super().__init__()
        self.fc = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(c, c // r, 1), nn.ReLU(),
                                nn.Conv2d(c // r, c, 1), nn.Hardsigmoid())

    def forward(self, x):
        return x * self.fc(x)


class DepthwiseSE(nn.Module):
    """MobileNet-style: depthwise-separable convolutions, hardswish, squeeze-and-excitation."""

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(3, 16, 3, stride=2, padding=1), nn.BatchNorm2d(16), nn.Hardswish()]
        for cin, cout, stride in [(16, 24, 2), (24, 24, 1), (24, 40, 2)]:
            layers += [nn.Conv2d(cin, cin, 3, stride=stride, padding=1, groups=cin), nn.BatchNorm2d(cin),
                       nn.Hardswish(), SqueezeExcite(cin), nn.Conv2d(cin, cout, 1), nn.BatchNorm2d(cout)]
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(40, 10))

    def forward(self, x):
        return self.head(self.features(x))


# name: (factory, event shape, dynamic axes beyond the batch {axis: symbol}, sizes per symbol)
ARCHITECTURES = {
    "transformer": (TransformerEncoder, (12, 32), {1: "T"}, {"T": (12, 5)}),
    "vit": (ViT, (3, 16, 16), {}, {}),
    "timeseries_conv1d": (TimeSeriesConv, (4, 64), {}, {}),
    "unet": (UNet, (3, 32, 32), {}, {}),
    "depthwise_se": (DepthwiseSE, (3, 64, 64), {}, {}),
}


def export(name: str, folder: str) -> str:
    """torch's TorchScript exporter, or for a dynamic sequence length its torch.export-based
    exporter: the TorchScript one bakes the traced length into MultiheadAttention's reshapes
    (onnxruntime then fails at any other length too)."""
    factory, shape, axes, _ = ARCHITECTURES[name]
    torch.manual_seed(0)
    m = factory().eval()
    for mod in m.modules():  # non-trivial batch norm statistics, so folding them shows
        if isinstance(mod, nn.BatchNorm1d | nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.1, 0.1)
            mod.running_var.uniform_(0.5, 1.5)
    path = os.path.join(folder, name + ".onnx")
    example = (torch.randn(2, *shape),)
    if axes:
        dims = {0: torch.export.Dim("N"), **{a: torch.export.Dim(s) for a, s in axes.items()}}
        torch.onnx.export(m, example, path, input_names=["x"], output_names=["y"], dynamo=True,
                          dynamic_shapes={"x": dims})
    else:
        torch.onnx.export(m, example, path, input_names=["x"], output_names=["y"],
                          dynamic_axes={"x": {0: "N"}, "y": {0: "N"}}, opset_version=17, dynamo=False)
    return path


def inputs(name: str, batch: int, size: int | None) -> np.ndarray:
    _, shape, axes, _ = ARCHITECTURES[name]
    shape = list(shape)
    for axis in axes:
        shape[axis - 1] = size
    x = np.random.default_rng(batch).standard_normal((batch, *shape)).astype(np.float32)
    if name == "transformer":
        x[:, -2:, 0] = 0.0  # the last two positions are padding
    return x


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("architectures"))
    cache: dict[str, tuple[str, object]] = {}

    def get(name: str):
        if name not in cache:
            path = export(name, folder)
            dims = {s: max(v) for s, v in ARCHITECTURES[name][3].items()}
            cache[name] = (path, sofie.compile(path, dims=dims) if dims else sofie.compile(path))
        return cache[name]
    return get


@pytest.mark.parametrize("name", list(ARCHITECTURES))
def test_matches_onnxruntime(compiled, name):
    path, model = compiled(name)
    sizes = next(iter(ARCHITECTURES[name][3].values()), (None,))
    for batch in BATCHES:
        for size in sizes:
            x = inputs(name, batch, size)
            (want,) = ort_run(path, x)
            (got,) = model(x)
            assert got.shape == want.shape, (batch, size)
            np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL, err_msg=f"batch {batch}, size {size}")
