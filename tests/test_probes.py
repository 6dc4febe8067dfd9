"""``Simulator.run(probes=...)``: the current a neuron layer integrates, once per chunk (what
spike-norm calibration measures)."""

from __future__ import annotations

import numpy as np
import torch

from snnconv import ops
from snnconv.graph import Graph, Node
from snnconv.simulate import Simulator


def _net() -> Graph:
    g = np.random.default_rng(0)
    conv_attrs = {"stride": (1, 1), "padding": (1, 1, 1, 1), "dilation": (1, 1), "groups": 1}
    neuron = {"reset": "subtract", "v0": 0.5}
    theta = {"threshold": np.asarray([0.7], np.float32)}
    return Graph(
        [
            Node("c1", "conv", ["x"], conv_attrs, {
                "weight": (g.standard_normal((3, 1, 3, 3)) * 0.5).astype(np.float32),
                "bias": np.zeros(3, np.float32)}),
            Node("n1", "if_neuron", ["c1"], dict(neuron), dict(theta)),
            Node("c2", "conv", ["n1"], conv_attrs, {
                "weight": (g.standard_normal((2, 3, 3, 3)) * 0.5).astype(np.float32),
                "bias": np.zeros(2, np.float32)}),
            Node("n2", "if_neuron", ["c2"], dict(neuron), dict(theta)),
            Node("f", "flatten", ["n2"]),
        ],
        "x",
        (1, 5, 5),
        "f",
    )  # fmt: skip


def test_probes_see_each_chunk_of_the_current_a_layer_integrates():
    snn = _net()
    x = torch.rand((4, 1, 5, 5), generator=torch.Generator().manual_seed(1))
    seen: dict[str, list[torch.Tensor]] = {"n1": [], "n2": []}
    probes = {name: seen[name].append for name in seen}
    _, rec = Simulator(snn).run(
        x, torch.zeros(4, dtype=torch.long), 6, chunk=4, probes=probes, record=["n1"]
    )
    # direct input: the first layer's current is the same at every step, (B, ...), per chunk
    assert len(seen["n1"]) == 2
    expected = ops.conv(snn.node("c1"), x)
    for current in seen["n1"]:
        torch.testing.assert_close(current, expected, rtol=1e-6, atol=1e-6)
    # the next layer integrates the spikes of n1 times their threshold, through c2
    assert [tuple(c.shape) for c in seen["n2"]] == [(16, 2, 5, 5), (8, 2, 5, 5)]
    spikes = rec["n1"] * 0.7
    expected = ops.conv(snn.node("c2"), spikes)
    torch.testing.assert_close(torch.cat(seen["n2"]), expected, rtol=1e-5, atol=1e-5)
