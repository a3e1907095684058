"""The benchmark models (the seed's set): dynamic batch, input 'x', output 'y', BatchNorm kept."""

from __future__ import annotations

import os

import torch
import torch.nn as nn
import torch.nn.functional as F

from bench import archs


def mlp(n: int, width: int) -> nn.Module:
    layers: list[nn.Module] = []
    for _ in range(n):
        layers += [nn.Linear(width, width), nn.ReLU()]
    return nn.Sequential(*layers)


def conv14() -> nn.Module:
    ch = [1] + [128] * 13 + [1]
    layers: list[nn.Module] = []
    for i in range(14):
        layers += [nn.Conv2d(ch[i], ch[i + 1], 5, padding=2), nn.ReLU()]
    return nn.Sequential(*layers)


class Block(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.b1 = nn.BatchNorm2d(cout)
        self.c2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.b2 = nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = F.relu(self.b1(self.c1(x)))
        y = self.b2(self.c2(y))
        return F.relu(y + (x if self.down is None else self.down(x)))


class ResNet18(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
                                  nn.MaxPool2d(3, 2, 1))
        blocks, cin = [], 64
        for cout, stride in [(64, 1), (64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1)]:
            blocks.append(Block(cin, cout, stride))
            cin = cout
        self.layers = nn.Sequential(*blocks)
        self.fc = nn.Linear(512, 1000)

    def forward(self, x):
        x = self.layers(self.stem(x))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


# name: (factory, event shape, batches to time)
MODELS = {
    "linear_10x50": (lambda: mlp(10, 50), (50,), (1, 32)),
    "mlp_5x200": (lambda: mlp(5, 200), (200,), (1, 32)),
    "conv1": (lambda: nn.Sequential(nn.Conv2d(1, 2, 5), nn.ReLU()), (1, 100, 100), (1, 32)),
    "conv14": (conv14, (1, 100, 100), (1,)),  # batch 32 is 3 TFLOP a call: too long for make bench
    "resnet18": (ResNet18, (3, 224, 224), (1, 32)),
    "mobilenet_v2": (archs.MobileNetV2, (3, 224, 224), (1,)),
    "efficientnet_b0": (archs.EfficientNetB0, (3, 224, 224), (1,)),
    "resnet50": (archs.ResNet50, (3, 224, 224), (1,)),
    "transformer": (archs.transformer_encoder, (128, 256), (1,)),
    "rnn": (lambda: archs.Recurrent(nn.RNN), (20, 10), (1,)),
    "gru": (lambda: archs.Recurrent(nn.GRU), (20, 10), (1,)),
    "lstm": (lambda: archs.Recurrent(nn.LSTM), (20, 10), (1,)),
    "conv_transpose2d": (archs.conv_transpose2d, (1, 4, 4), (1,)),
    "silu": (nn.SiLU, (96, 112, 112), (1,)),  # x * sigmoid(x): one fused, vectorized loop
}

# the sets `make bench` reports (issue 15), in table order
GROUPS = {
    "seed": ["linear_10x50", "mlp_5x200", "conv1", "conv14", "resnet18"],
    "architectures": ["mobilenet_v2", "efficientnet_b0", "resnet50", "transformer"],
    "root_sofie": ["rnn", "gru", "lstm", "conv_transpose2d"],
}
DEFAULT = [m for names in GROUPS.values() for m in names]
QUICK = ["linear_10x50", "mlp_5x200", "conv1", "rnn", "conv_transpose2d"]  # about a minute


def group_of(name: str) -> str:
    return next((g for g, names in GROUPS.items() if name in names), "other")


def export_module(m: nn.Module, shape: tuple[int, ...], path: str) -> str:
    """Exports `m` for events of `shape` with randomized BatchNorm statistics (so folding them
    is visible in the numbers), dynamic batch, BatchNorm nodes kept (PRESERVE; torch then asks for
    its constant folding off, and sofie folds what it would have)."""
    m.eval()
    for mod in m.modules():
        if isinstance(mod, nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.1, 0.1)
            mod.running_var.uniform_(0.5, 1.5)
            mod.weight.data.uniform_(0.5, 1.5)
            mod.bias.data.uniform_(-0.1, 0.1)
    torch.onnx.export(m, (torch.randn(1, *shape),), path, input_names=["x"], output_names=["y"],
                      opset_version=17, dynamic_axes={"x": {0: "N"}, "y": {0: "N"}}, dynamo=False,
                      training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=False)
    return path


def export(name: str, folder: str) -> str:
    """folder/name.onnx for a benchmark model (fixed seed), exported once."""
    path = os.path.join(folder, name + ".onnx")
    if os.path.isfile(path):
        return path
    torch.manual_seed(0)
    factory, shape, _ = MODELS[name]
    return export_module(factory(), shape, path)
