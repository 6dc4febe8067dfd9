"""Property tests (slow): the loader survives mutated files; random conv nets convert exactly."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from onnx_models import old_style_model, tiny_model
from torch import nn

from snnconv.convert import ConversionSettings, convert
from snnconv.errors import InputError
from snnconv.load import load_onnx
from snnconv.simulate import SimulationSettings, simulate

pytestmark = pytest.mark.slow

VALID = old_style_model()
TINY = tiny_model().SerializeToString()


@settings(max_examples=1000, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    edits=st.lists(
        st.tuples(st.integers(0, len(VALID) - 1), st.integers(0, 255)), min_size=1, max_size=8
    ),
    cut=st.one_of(st.none(), st.integers(1, len(VALID))),
    tiny=st.booleans(),
)
def test_mutated_onnx_loads_or_gives_input_error(edits, cut, tiny):
    data = bytearray(TINY if tiny else VALID)
    for pos, value in edits:
        data[pos % len(data)] = value
    try:
        load_onnx(bytes(data[:cut]))
    except InputError:  # UnsupportedOpsError included
        pass


class _Block(nn.Module):
    def __init__(self, c: int, bn: bool):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1)
        self.bn = nn.BatchNorm2d(c) if bn else nn.Identity()

    def forward(self, x):
        return torch.relu(x + self.bn(self.conv(x)))


def _net(channels, kernel, stride, bn, residual, seed) -> nn.Module:
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    c_in = 1
    for c, k, s in zip(channels, kernel, stride, strict=True):
        layers += [nn.Conv2d(c_in, c, k, stride=s, padding=k // 2)]
        layers += [nn.BatchNorm2d(c)] if bn else []
        layers += [nn.ReLU()]
        c_in = c
    if residual:
        layers.append(_Block(c_in, bn))
    layers += [nn.Flatten(), nn.LazyLinear(5)]
    net = nn.Sequential(*layers)
    net(torch.zeros(1, 1, 8, 8))  # materialise the lazy linear
    g = torch.Generator().manual_seed(seed)
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.3, 0.3, generator=g)
            m.running_var.uniform_(0.5, 2.0, generator=g)
    return net.eval()


def _onnx(net: nn.Module) -> bytes:
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            net,
            torch.rand(2, 1, 8, 8),
            buf,
            dynamo=False,
            opset_version=17,
            input_names=["x"],
            dynamic_axes={"x": {0: "b"}},
        )
    return buf.getvalue()


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    depth=st.integers(1, 2),
    channels=st.lists(st.integers(2, 8), min_size=2, max_size=2),
    kernel=st.lists(st.sampled_from([1, 3]), min_size=2, max_size=2),
    stride=st.lists(st.sampled_from([1, 2]), min_size=2, max_size=2),
    bn=st.booleans(),
    residual=st.booleans(),
    seed=st.integers(0, 1000),
)
def test_random_conv_nets_agree_with_their_ann(depth, channels, kernel, stride, bn, residual, seed):
    net = _net(channels[:depth], kernel[:depth], stride[:depth], bn, residual, seed)
    ann = load_onnx(_onnx(net))
    x = np.random.default_rng(seed).random((64, 1, 8, 8), dtype=np.float32)
    with torch.no_grad():
        logits = net(torch.from_numpy(x))
    y = logits.argmax(1).numpy()
    # Rate coding at T=256 resolves about 1/256 of a threshold: a near-tie between the two
    # top classes (margin < 1 % of the logit range) is a coin toss at any finite T.
    top2 = logits.topk(2, 1).values
    decided = ((top2[:, 0] - top2[:, 1]) >= 0.01 * logits.abs().max()).numpy()
    assume(decided.sum() >= 48)  # a net with that many near-ties says nothing of the SNN
    snn = convert(ann, x, ConversionSettings(threshold="max", calibrate="none"))
    report = simulate(snn, x[decided], y[decided], SimulationSettings(timesteps=256, batch_size=64))
    assert report.ann_accuracy == 1.0
    assert report.snn_accuracy >= 0.99, f"SNN agrees with the ANN on {report.snn_accuracy:.2%}"
