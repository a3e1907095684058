"""Real architectures for the benchmark, written out as small nn.Modules (torchvision cannot be
installed beside the pinned torch): MobileNet-V2, EfficientNet-B0 and ResNet-50 with
torchvision's layer structure (random weights; BatchNorm kept for the exporter to emit), a
transformer encoder, and ROOT SOFIE's own benchmark models (rootbench root/tmva/sofie:
RNN/GRU/LSTM_d10_L20_h8_B1 and ConvTrans2dModel_B1)."""

from __future__ import annotations

import torch
import torch.nn as nn


def conv_bn(cin: int, cout: int, k: int, stride: int = 1, groups: int = 1,
            act: type | None = nn.ReLU6) -> nn.Sequential:
    """Conv (no bias, 'same' padding) + BatchNorm + the activation, torchvision's Conv2dNormActivation."""
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, groups=groups, bias=False),
                               nn.BatchNorm2d(cout)]
    if act is not None:
        layers.append(act())
    return nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    """MobileNet-V2's block: 1x1 expand + ReLU6, depthwise 3x3 + ReLU6, linear 1x1 projection,
    and the residual when the shape is kept."""

    def __init__(self, cin: int, cout: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = cin * expand
        layers = [conv_bn(cin, hidden, 1)] if expand != 1 else []
        layers += [conv_bn(hidden, hidden, 3, stride, groups=hidden), conv_bn(hidden, cout, 1, act=None)]
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        y = self.body(x)
        return x + y if self.residual else y


class MobileNetV2(nn.Module):
    # (expansion t, channels c, repeats n, first stride s), as in the paper and torchvision
    SETTINGS = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
                (6, 320, 1, 1)]

    def __init__(self, classes: int = 1000) -> None:
        super().__init__()
        layers: list[nn.Module] = [conv_bn(3, 32, 3, 2)]
        cin = 32
        for t, c, n, s in self.SETTINGS:
            for i in range(n):
                layers.append(InvertedResidual(cin, c, s if i == 0 else 1, t))
                cin = c
        layers.append(conv_bn(cin, 1280, 1))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(1280, classes)

    def forward(self, x):
        return self.classifier(torch.flatten(nn.functional.adaptive_avg_pool2d(self.features(x), 1), 1))


class SqueezeExcite(nn.Module):
    """EfficientNet's squeeze-and-excitation: global average, 1x1 reduce + SiLU, 1x1 expand +
    sigmoid, channel-wise scale."""

    def __init__(self, channels: int, squeezed: int) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(channels, squeezed, 1)
        self.expand = nn.Conv2d(squeezed, channels, 1)

    def forward(self, x):
        s = nn.functional.adaptive_avg_pool2d(x, 1)
        return x * torch.sigmoid(self.expand(nn.functional.silu(self.reduce(s))))


class MBConv(nn.Module):
    """EfficientNet's block: 1x1 expand + SiLU, depthwise kxk + SiLU, SE (block input / 4),
    linear 1x1 projection, residual when the shape is kept (stochastic depth is off in eval)."""

    def __init__(self, cin: int, cout: int, k: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = cin * expand
        layers: list[nn.Module] = [conv_bn(cin, hidden, 1, act=nn.SiLU)] if expand != 1 else []
        layers += [conv_bn(hidden, hidden, k, stride, groups=hidden, act=nn.SiLU),
                   SqueezeExcite(hidden, max(1, cin // 4)), conv_bn(hidden, cout, 1, act=None)]
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        y = self.body(x)
        return x + y if self.residual else y


class EfficientNetB0(nn.Module):
    # (expansion, kernel, first stride, in, out, repeats): torchvision's efficientnet_b0
    SETTINGS = [(1, 3, 1, 32, 16, 1), (6, 3, 2, 16, 24, 2), (6, 5, 2, 24, 40, 2), (6, 3, 2, 40, 80, 3),
                (6, 5, 1, 80, 112, 3), (6, 5, 2, 112, 192, 4), (6, 3, 1, 192, 320, 1)]

    def __init__(self, classes: int = 1000) -> None:
        super().__init__()
        layers: list[nn.Module] = [conv_bn(3, 32, 3, 2, act=nn.SiLU)]
        for e, k, s, cin, cout, n in self.SETTINGS:
            for i in range(n):
                layers.append(MBConv(cin if i == 0 else cout, cout, k, s if i == 0 else 1, e))
        layers.append(conv_bn(320, 1280, 1, act=nn.SiLU))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(1280, classes)

    def forward(self, x):
        return self.classifier(torch.flatten(nn.functional.adaptive_avg_pool2d(self.features(x), 1), 1))


class Bottleneck(nn.Module):
    """ResNet-50's block (v1.5: the stride on the 3x3): 1x1 reduce, 3x3, 1x1 expand x4."""

    def __init__(self, cin: int, width: int, stride: int) -> None:
        super().__init__()
        cout = width * 4
        self.body = nn.Sequential(conv_bn(cin, width, 1, act=nn.ReLU), conv_bn(width, width, 3, stride, act=nn.ReLU),
                                  conv_bn(width, cout, 1, act=None))
        self.down = conv_bn(cin, cout, 1, stride, act=None) if stride != 1 or cin != cout else None

    def forward(self, x):
        return torch.relu(self.body(x) + (x if self.down is None else self.down(x)))


class ResNet50(nn.Module):
    def __init__(self, classes: int = 1000) -> None:
        super().__init__()
        layers: list[nn.Module] = [conv_bn(3, 64, 7, 2, act=nn.ReLU), nn.MaxPool2d(3, 2, 1)]
        cin = 64
        for width, blocks, stride in [(64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)]:
            for i in range(blocks):
                layers.append(Bottleneck(cin, width, stride if i == 0 else 1))
                cin = width * 4
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(2048, classes)

    def forward(self, x):
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(self.features(x), 1), 1))


def transformer_encoder() -> nn.Module:
    """nn.TransformerEncoder: d_model 256, 4 heads, 4 layers, PyTorch's default feed-forward
    width (2048) and post-norm; input [batch, sequence, 256]."""
    layer = nn.TransformerEncoderLayer(256, 4, batch_first=True)
    return nn.TransformerEncoder(layer, 4, enable_nested_tensor=False)


class Recurrent(nn.Module):
    """ROOT's RNN/GRU/LSTM benchmark (rootbench's *_d10_L20_h8_B1): 10 inputs, 20 time steps,
    hidden size 8, here two stacked layers (issue 15 says 2-layer; the file name does not say),
    followed by a dense layer on the last step to 2 outputs."""

    def __init__(self, cell: type) -> None:
        super().__init__()
        self.rnn = cell(10, 8, num_layers=2, batch_first=True)
        self.fc = nn.Linear(8, 2)

    def forward(self, x):
        y, _ = self.rnn(x)
        return self.fc(y[:, -1])


def conv_transpose2d() -> nn.Module:
    """ROOT's ConvTrans2dModel_B1 as rootbench regenerates it: four ConvTranspose2d layers with
    ReLU between, 1x4x4 -> 1x6x6 (in, out channels, kernel, padding, stride below)."""
    layers: list[nn.Module] = []
    spec = [(1, 4, 2, 1, 1), (4, 8, 3, 1, 1), (8, 4, 3, 1, 1), (4, 1, 2, 0, 2)]
    for i, (cin, cout, k, p, s) in enumerate(spec):
        layers.append(nn.ConvTranspose2d(cin, cout, k, s, p))
        if i < len(spec) - 1:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)
