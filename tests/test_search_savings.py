"""The conversion's savings: fewer candidates per layer, a search whose cost grows linearly
with depth, and ``--neuron auto`` calibrating only the kinds that can win."""

from __future__ import annotations

import importlib
import json

import numpy as np
import pytest
import torch
from nets import graph_of, inputs, to_graph
from torch import nn

from snnconv.calibrate import search
from snnconv.calibrate.search import _search_layer
from snnconv.convert import ConversionSettings, convert, prepare_ann
from snnconv.graph import Node
from snnconv.simulate.engine import Simulator

conversion = importlib.import_module("snnconv.convert.convert")
T = 4


def _bowl(best: float):
    """A neuron and a made-up error, quadratic in log2(scale), lowest at ``best``; the error
    counts its calls."""
    base = np.array([2.0], np.float32)
    neuron = Node("n", "if_neuron", ["x"], {"reset": "subtract", "v0": 0.5}, {"threshold": base})
    calls = []

    def error() -> float:
        calls.append(1)
        return float(np.log2(neuron.params["threshold"][0] / base[0] / best) ** 2)

    return neuron, error, calls


@pytest.mark.parametrize("best", [1.0, 1.3, 0.6, 3.0, 0.2])
@pytest.mark.parametrize("early_stop", [False, True])
def test_one_fine_point_finds_a_bowls_bottom_with_one_candidate_less(best, early_stop):
    scales, counts = {}, {}
    for one_fine in (False, True):
        neuron, error, calls = _bowl(best)
        scale, err = _search_layer(neuron, None, error(), error, early_stop, one_fine)
        scales[one_fine], counts[one_fine] = scale, len(calls)
        assert abs(np.log2(scale / best)) <= 0.125 + 1e-9  # the nearest quarter power of 2
    assert scales[True] == scales[False]
    assert counts[True] == counts[False] - 1


@pytest.mark.parametrize("best", [1.0, 1.3, 0.6, 3.0])
def test_early_stop_tries_fewer_candidates_on_a_bowl_and_ends_as_close(best):
    counts = {}
    for early_stop in (False, True):
        neuron, error, calls = _bowl(best)
        scale, _ = _search_layer(neuron, None, error(), error, early_stop)
        counts[early_stop] = len(calls)
        assert abs(np.log2(scale / best)) <= 0.125 + 1e-9
    assert counts[True] < counts[False]


def _choice(snn) -> dict:
    return json.loads(snn.metadata["snnconv.neuron_choice"])


def test_auto_calibrates_only_the_kinds_within_the_margin(monkeypatch):
    """A kind whose error before the layer-wise steps is more than AUTO_MARGIN times the
    best's is dropped there; the SNN kept is the one converting with the other kind gives."""
    ann = graph_of("residual")
    x = inputs(ann.input_shape, 64)
    s = ConversionSettings(target_timesteps=T, calibration_images=64)
    monkeypatch.setattr(conversion, "AUTO_MARGIN", 1.0)  # only the best goes on
    pruned = convert(ann, x, s)
    choice = _choice(pruned)
    before = choice["before_steps"]
    assert set(before) == {"if", "signed"}
    assert list(choice["output_error"]) == [choice["chosen"]] == [min(before, key=before.get)]
    stages = json.loads(pruned.metadata["snnconv.stage_seconds"])
    assert not any(f"({k})" in stage for stage in stages for k in before if k != choice["chosen"])
    alone = convert(ann, x, ConversionSettings(**{**s.__dict__, "neuron": choice["chosen"]}))
    for a, b in zip(pruned, alone, strict=True):
        for k, v in a.params.items():
            np.testing.assert_array_equal(v, b.params[k])
    monkeypatch.setattr(conversion, "AUTO_MARGIN", 1e9)  # every kind goes on
    both = _choice(convert(ann, x, s))
    assert set(both["output_error"]) == {"if", "signed"}
    assert both["before_steps"] == before


def _chain(depth: int):
    """An MLP of ``depth`` ReLU layers, as a converted SNN and its ANN."""
    torch.manual_seed(0)
    layers = [nn.Flatten(), nn.Linear(16, 12), nn.ReLU()]
    for _ in range(depth - 1):
        layers += [nn.Linear(12, 12), nn.ReLU()]
    ann = prepare_ann(to_graph(nn.Sequential(*layers, nn.Linear(12, 4)), (1, 4, 4)))
    x = inputs(ann.input_shape, 16)
    snn = convert(ann, x, ConversionSettings(target_timesteps=T, calibrate="none", neuron="if"))
    return snn, ann, x


def _nodes_simulated(monkeypatch, depth: int, window: int) -> int:
    """Nodes the search runs (node x batch x chunk) when every layer tries three candidates."""
    snn, ann, x = _chain(depth)
    count = []
    run_nodes = Simulator._run_nodes

    def counting(self, values, chunk, static_cache, first, last):
        count.append(len(self._schedule[first:last]))
        return run_nodes(self, values, chunk, static_cache, first, last)

    def three(neuron, cap, current, error, *how):
        base = neuron.params["threshold"]
        for scale in (0.5, 2.0, 1.0):
            neuron.params["threshold"] = base * np.float32(scale)
            error()
        return 1.0, current

    monkeypatch.setattr(Simulator, "_run_nodes", counting)
    monkeypatch.setattr(search, "_search_layer", three)
    search.search_thresholds(snn, ann, x, T, window=window)
    return sum(count)


def test_with_a_window_the_search_costs_the_same_for_each_layer_added(monkeypatch):
    """Judged W layers on, a candidate simulates at most W + 1 neuron layers: past W layers,
    each layer added costs the same. Judged at the output, each costs more than the last."""
    windowed = [_nodes_simulated(monkeypatch, d, window=2) for d in (6, 9, 12)]
    assert windowed[2] - windowed[1] == windowed[1] - windowed[0] > 0
    at_output = [_nodes_simulated(monkeypatch, d, window=0) for d in (6, 9, 12)]
    assert at_output[2] - at_output[1] > at_output[1] - at_output[0] > 0
    assert windowed[2] < at_output[2]
