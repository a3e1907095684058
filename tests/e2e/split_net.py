"""A model with one layer per way a kernel splits its work over a Session's intra-op threads
(sofie_rt/thread_pool.hxx), each above the size that makes it split at batch 4."""

from __future__ import annotations

import os

import torch
import torch.nn as nn
import torch.nn.functional as F

from bench.models import export_module

EVENT = (3, 32, 32)
OUT = 10


class SplitNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.band = nn.Conv2d(3, 32, 5, padding=2)  # direct conv (75 taps): bands of output rows per thread
        self.dilated = nn.Conv2d(32, 32, 3, padding=2, dilation=2)  # im2col: the same, with a residual epilogue
        self.wino = nn.Conv2d(32, 64, 3, padding=1)  # Winograd: its 16 GEMMs shared out whole, by points
        self.down = nn.Conv2d(64, 128, 3, stride=4, padding=1)  # im2col, an 8x8 output in bands
        self.point = nn.Conv2d(128, 128, 1)  # 1x1: one GEMM 128 x 64 x 128, split into row blocks
        self.fc1 = nn.Linear(128 * 8 * 8, 128)  # GEMM batch x 128 x 8192: column blocks
        self.fc2 = nn.Linear(128, OUT)

    def forward(self, x):
        a = F.relu(self.band(x))
        a = F.relu(self.dilated(a) + a)
        a = F.relu(self.point(F.relu(self.down(F.relu(self.wino(a))))))
        return self.fc2(F.relu(self.fc1(torch.flatten(a, 1))))


def export_split_net(folder: str) -> str:
    torch.manual_seed(0)
    return export_module(SplitNet(), EVENT, os.path.join(folder, "split_net.onnx"))
