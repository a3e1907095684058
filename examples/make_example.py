"""Regenerates examples/lenet.onnx, the model `make demo` compiles (needs torch).

A LeNet-style CNN for 1x28x28 images: Conv+BatchNorm+ReLU+MaxPool twice, then two dense
layers and a softmax; dynamic batch; BatchNorm kept in the graph for the passes to fold.
"""

import os
import sys

import torch
import torch.nn as nn

torch.manual_seed(7)


def lenet() -> nn.Module:
    m = nn.Sequential(
        nn.Conv2d(1, 8, 5, padding=2), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 5), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(16 * 5 * 5, 120), nn.ReLU(), nn.Linear(120, 10), nn.Softmax(dim=1))
    for mod in m.modules():
        if isinstance(mod, nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.1, 0.1)
            mod.running_var.uniform_(0.5, 1.5)
    return m.eval()


def main(path: str) -> None:
    torch.onnx.export(lenet(), (torch.randn(1, 1, 28, 28),), path, input_names=["x"], output_names=["y"],
                      opset_version=17, dynamic_axes={"x": {0: "N"}, "y": {0: "N"}}, dynamo=False,
                      training=torch.onnx.TrainingMode.PRESERVE)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "lenet.onnx"))
