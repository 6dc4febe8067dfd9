"""Potential calibration and spike-norm thresholds: what they promise, and their bad values."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from nets import graph_of, inputs

from snnconv.calibrate import parse_method
from snnconv.convert import ConversionSettings, convert, prepare_ann
from snnconv.convert.convert import parse_layerwise
from snnconv.errors import InputError
from snnconv.graph import Graph, Node
from snnconv.ops import ann_forward
from snnconv.simulate import Simulator


def _layer_gaps(snn: Graph, ann: Graph, x: np.ndarray, timesteps: int) -> list[float]:
    """Per neuron layer: mean over channels of |ANN mean (clipped at θ) - SNN rate x θ|."""
    names = [n.name for n in snn if n.op == "if_neuron"]
    xt = torch.as_tensor(x)
    _, acts = ann_forward(ann, xt, keep=names)
    _, spikes = Simulator(snn).run(
        xt, torch.zeros(len(x), dtype=torch.long), timesteps, record=names
    )
    gaps = []
    for name in names:
        a = acts[name]
        theta = torch.as_tensor(snn.node(name).params["threshold"])
        theta = theta.reshape((1, -1) + (1,) * (a.dim() - 2))
        dims = [d for d in range(a.dim()) if d != 1]
        ann_mean = a.clamp(min=0).minimum(theta).mean(dims)
        snn_mean = (spikes[name] * theta).mean(dims)
        gaps.append(float((ann_mean - snn_mean).abs().mean()))
    return gaps


def test_potential_calibration_brings_layer_means_to_the_ann():
    ann = graph_of("vgg")
    x = inputs(ann.input_shape, 128)
    T = 4
    # one kind for both (the one --neuron auto had picked for both): the step's effect alone
    kind = "signed"
    plain = convert(ann, x, ConversionSettings(target_timesteps=T, calibrate="none", neuron=kind))
    tuned = convert(
        ann, x, ConversionSettings(target_timesteps=T, calibrate="potential", neuron=kind)
    )
    before = _layer_gaps(plain, prepare_ann(ann), x, T)
    after = _layer_gaps(tuned, prepare_ann(ann), x, T)
    # one correction step, not an exact fit: spike counts move in whole spikes
    assert all(a < b for a, b in zip(after, before, strict=True)), (before, after)
    assert sum(after) < 0.6 * sum(before), (before, after)
    neurons = [n for n in tuned if n.op == "if_neuron"]
    assert all("potential" in n.params and "bias" not in n.params for n in neurons)
    # thresholds are untouched: the correction is the initial membrane alone
    for a, b in zip(neurons, [n for n in plain if n.op == "if_neuron"], strict=True):
        assert np.array_equal(a.params["threshold"], b.params["threshold"])


def test_bias_and_potential_combine():
    ann = graph_of("vgg")
    x = inputs(ann.input_shape, 128)
    snn = convert(ann, x, ConversionSettings(target_timesteps=4, calibrate="bias+potential"))
    assert all({"bias", "potential"} <= n.params.keys() for n in snn if n.op == "if_neuron")


def test_initial_potential_makes_spikes_come_earlier():
    """One IF neuron, threshold 1, v0 0, input 0.5 per step: it fires at steps 2 and 4. With
    a potential of 0.5 its membrane starts at 0.5, so it fires at steps 1 and 3."""
    f = lambda a: np.asarray(a, np.float32)
    g = Graph(
        [
            Node("fc", "linear", ["x"], {}, {"weight": f([[1]]), "bias": f([0])}),
            Node(
                "if", "if_neuron", ["fc"], {"reset": "subtract", "v0": 0.0}, {"threshold": f([1])}
            ),
            Node("out", "linear", ["if"], {}, {"weight": f([[1]]), "bias": f([0])}),
        ],
        "x",
        (1,),
        "out",
    )
    x, y = torch.full((1, 1), 0.5), torch.zeros(1, dtype=torch.long)
    _, plain = Simulator(g).run(x, y, 4, record=["if"])
    g.node("if").params["potential"] = f([0.5])
    _, early = Simulator(g).run(x, y, 4, record=["if"])
    assert plain["if"].flatten().tolist() == [0, 1, 0, 1]
    assert early["if"].flatten().tolist() == [1, 0, 1, 0]


def _two_layer_graph() -> Graph:
    """x (2 features) -> identity -> relu -> sum of both -> relu -> output."""
    f = lambda a: np.asarray(a, np.float32)
    nodes = [
        Node("fc1", "linear", ["x"], {}, {"weight": f(np.eye(2)), "bias": f([0, 0])}),
        Node("r1", "relu", ["fc1"]),
        Node("fc2", "linear", ["r1"], {}, {"weight": f([[1, 1]]), "bias": f([0])}),
        Node("r2", "relu", ["fc2"]),
        Node("out", "linear", ["r2"], {}, {"weight": f([[1], [-1]]), "bias": f([0, 0])}),
    ]
    return Graph(nodes, "x", (2,), "out")


@pytest.mark.parametrize(("per_channel", "expected"), [(False, [2.0]), (True, [1.5])])
def test_spikenorm_threshold_is_the_largest_input_current(per_channel, expected):
    """By hand, T = 4, v0 = 0. Layer 1 gets the image itself: its thresholds are the largest
    pixel, 1.0 (or per channel 1.0 and 0.5). For image (1, 0.5), with one threshold 1.0 the
    first neuron fires every step and the second every other step, so layer 2 receives
    1 + 1 = 2 at steps 2 and 4; with per-channel thresholds both fire every step and layer 2
    receives 1 + 0.5 = 1.5. The ANN's largest layer-2 activation is 1.5 either way."""
    x = np.asarray([[1.0, 0.5], [0.25, 0.0]], np.float32)
    settings = ConversionSettings(
        threshold="spikenorm",
        per_channel=per_channel,
        calibrate="none",
        target_timesteps=4,
        v0=0.0,
    )
    snn = convert(_two_layer_graph(), x, settings)
    first = snn.node("r1").params["threshold"]
    assert first.tolist() == ([1.0, 0.5] if per_channel else [1.0])
    assert snn.node("r2").params["threshold"].tolist() == expected


def test_bad_values_name_the_option():
    with pytest.raises(InputError, match="--calibrate"):
        ConversionSettings(calibrate="potential+potential").check()
    with pytest.raises(InputError, match="--calibrate"):
        parse_layerwise("bias+")
    assert parse_layerwise("potential+bias") == ("bias", "potential")  # bias runs first
    assert parse_layerwise("none") == ()
    with pytest.raises(InputError, match="takes no argument"):
        parse_method("spikenorm:2")
    with pytest.raises(InputError, match="spikenorm"):
        parse_method("spike_norm")
    with pytest.raises(InputError, match="--threshold"):
        ConversionSettings(threshold="spikenorm:2").check()
