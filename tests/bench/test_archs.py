"""bench/archs.py: the architectures written out here (torchvision cannot be installed beside
the pinned torch) have torchvision's exact parameter counts and layer structure."""

from __future__ import annotations

import torch.nn as nn

from bench import archs


def params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def depthwise(m: nn.Module) -> list[nn.Conv2d]:
    return [c for c in m.modules() if isinstance(c, nn.Conv2d) and c.groups > 1 and c.groups == c.in_channels]


def test_torchvision_parameter_counts() -> None:
    # torchvision's mobilenet_v2(), efficientnet_b0() and resnet50(), 1000 classes
    assert params(archs.MobileNetV2()) == 3_504_872
    assert params(archs.EfficientNetB0()) == 5_288_548
    assert params(archs.ResNet50()) == 25_557_032


def test_blocks() -> None:
    m = archs.MobileNetV2()
    assert len(depthwise(m)) == 17 and all(c.kernel_size == (3, 3) for c in depthwise(m))
    e = archs.EfficientNetB0()
    assert len(depthwise(e)) == 16 and {c.kernel_size for c in depthwise(e)} == {(3, 3), (5, 5)}
    assert sum(isinstance(x, archs.SqueezeExcite) for x in e.modules()) == 16
    assert sum(isinstance(x, nn.SiLU) for x in e.modules()) == 1 + 15 + 16 + 1  # stem, expands, depthwise, head
    r = archs.ResNet50()
    assert sum(isinstance(x, nn.Conv2d) for x in r.modules()) == 53
