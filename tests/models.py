"""The reference models of the test suite, as PyTorch modules exported to ONNX."""

from __future__ import annotations

import os

import torch
import torch.nn as nn
import torch.nn.functional as F

from bench.models import Block, export_module, mlp


class SmallResNet(nn.Module):
    """A ResNet with BatchNorm, residual adds, a strided downsample and a view-based flatten."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
                                  nn.MaxPool2d(3, 2, 1))
        self.layers = nn.Sequential(Block(16, 16, 1), Block(16, 32, 2))
        self.fc = nn.Linear(32, 10)

    def forward(self, x):
        x = F.adaptive_avg_pool2d(self.layers(self.stem(x)), 1)
        return self.fc(x.view(x.size(0), -1))  # Shape -> Gather -> Concat -> Reshape in ONNX


MODELS = {
    "linear_10x50": (lambda: mlp(10, 50), (50,)),
    "mlp_5x200": (lambda: mlp(5, 200), (200,)),
    "conv1": (lambda: nn.Sequential(nn.Conv2d(1, 2, 5), nn.ReLU()), (1, 100, 100)),
    "resnet_small": (SmallResNet, (3, 32, 32)),
}


def export(name: str, folder: str) -> str:
    """Exports model `name` (fixed seed, randomized BatchNorm statistics) to folder/name.onnx."""
    torch.manual_seed(0)
    factory, shape = MODELS[name]
    return export_module(factory(), shape, os.path.join(folder, name + ".onnx"))


def input_shape(name: str) -> tuple[int, ...]:
    return MODELS[name][1]
