"""Small torch nets covering each supported op mix, and a helper that loads them as graphs."""

from __future__ import annotations

import functools
import io

import numpy as np
import torch
from torch import nn

from snnconv.graph import Graph
from snnconv.load import load_onnx


@functools.cache
def graph_of(kind: str) -> Graph:
    """The net ``make(kind)`` builds, loaded once per test session (callers copy it)."""
    return to_graph(*make(kind))


def to_graph(model: nn.Module, input_shape: tuple[int, ...]) -> Graph:
    """Export ``model`` to ONNX in memory and load it (verified against onnxruntime)."""
    buf = io.BytesIO()
    torch.onnx.export(
        model.eval(),
        torch.rand((2,) + input_shape),
        buf,
        dynamo=False,
        opset_version=17,
        input_names=["x"],
        output_names=["y"],
        dynamic_axes={"x": {0: "b"}, "y": {0: "b"}},
    )
    return load_onnx(buf.getvalue())


def _randomise_bn(model: nn.Module, seed: int) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.1)
    return model


class Residual(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.a = nn.Sequential(nn.Conv2d(c, c, 3, padding=1), nn.BatchNorm2d(c), nn.ReLU())
        self.b = nn.Sequential(nn.Conv2d(c, c, 3, padding=1), nn.BatchNorm2d(c))

    def forward(self, x):
        return torch.relu(self.b(self.a(x)) + x)


class Inception(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.a = nn.Sequential(nn.Conv2d(c, 4, 1), nn.ReLU())
        self.b = nn.Sequential(nn.Conv2d(c, 4, 3, padding=1), nn.ReLU6())

    def forward(self, x):
        return torch.cat([self.a(x), self.b(x)], dim=1)


def make(kind: str, seed: int = 0) -> tuple[nn.Module, tuple[int, ...]]:
    """One net per op mix: 'vgg' (conv, BN, max and avg pooling), 'residual', 'concat'
    (with ReLU6), 'mlp', 'strided' (stride, dilation, groups, global average pooling)."""
    torch.manual_seed(seed)
    if kind == "vgg":
        m = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1),
            nn.BatchNorm2d(8),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(8, 8, 3, padding=1),
            nn.BatchNorm2d(8),
            nn.ReLU(),
            nn.AvgPool2d(2),
            nn.Flatten(),
            nn.Linear(8 * 2 * 2, 16),
            nn.ReLU(),
            nn.Dropout(0.2),
            nn.Linear(16, 10),
        )
        return _randomise_bn(m, seed), (1, 8, 8)
    if kind == "residual":
        m = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1),
            nn.ReLU(),
            Residual(8),
            nn.AvgPool2d(2),
            nn.Flatten(),
            nn.Linear(8 * 4 * 4, 10),
        )
        return _randomise_bn(m, seed), (1, 8, 8)
    if kind == "concat":
        m = nn.Sequential(
            nn.Conv2d(1, 6, 3, padding=1),
            nn.ReLU(),
            Inception(6),
            nn.Flatten(),
            nn.Linear(8 * 8 * 8, 10),
        )
        return m, (1, 8, 8)
    if kind == "mlp":
        return nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10)), (
            1,
            8,
            8,
        )
    if kind == "strided":
        m = nn.Sequential(
            nn.Conv2d(2, 8, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(8, 8, 3, padding=2, dilation=2, groups=2),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(8, 10),
        )
        return m, (2, 9, 9)
    raise ValueError(kind)


KINDS = ("vgg", "residual", "concat", "mlp", "strided")


def inputs(shape: tuple[int, ...], n: int = 64, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).random((n,) + shape, dtype=np.float32)
