"""Threshold methods and layer-wise steps as registries; the layer walk that lets a layer-wise
step re-simulate only what its change affects, and the engine hooks under it."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pytest
import torch
from nets import graph_of, inputs

from snnconv.calibrate import METHODS, parse_method, search
from snnconv.calibrate.search import _search_layer, output_error, search_thresholds
from snnconv.calibrate.steps import LAYER_STEPS, parse_layerwise, stages
from snnconv.calibrate.thresholds import ObservedMethod
from snnconv.convert import ConversionSettings, convert, prepare_ann
from snnconv.errors import InputError
from snnconv.graph import unroll
from snnconv.ops import ann_forward
from snnconv.simulate.engine import OUTPUT, Simulator

T = 4


def test_threshold_methods_are_one_registry_parsed_and_named_through_it():
    assert list(METHODS)[:3] == ["max", "percentile", "mse"]
    parse_method("mse")
    assert "spikenorm" in METHODS
    for text in ("max", "mse", "spikenorm", "percentile:99.9"):
        method = parse_method(text)
        assert isinstance(method, METHODS[text.partition(":")[0]])
        assert str(method) == text
    assert str(parse_method("percentile")) == "percentile:99.99"
    with pytest.raises(InputError, match="use max, percentile:P .*, mse, spikenorm or qcfs"):
        parse_method("median")


def test_a_registered_method_is_usable_by_name_without_touching_the_converter(monkeypatch):
    @dataclass(frozen=True)
    class HalfMax(ObservedMethod):
        name: ClassVar[str] = "halfmax"

        def choose(self, values, maximum, timesteps, v0) -> float:
            return maximum / 2

    monkeypatch.setitem(METHODS, "halfmax", HalfMax)
    ann = graph_of("vgg")
    x = inputs(ann.input_shape, 32)
    common = {"calibrate": "none", "neuron": "if"}
    half = convert(ann, x, ConversionSettings(threshold="halfmax", **common))
    full = convert(ann, x, ConversionSettings(threshold="max", **common))
    for a, b in zip(half, full, strict=True):
        if a.op == "if_neuron":
            np.testing.assert_allclose(a.params["threshold"], b.params["threshold"] / 2)
    assert json.loads(half.metadata["snnconv.conversion"])["threshold"] == "halfmax"


def test_layerwise_steps_are_a_registry_and_bias_and_potential_share_a_walk():
    assert list(LAYER_STEPS) == ["search", "bias", "potential"]
    assert parse_layerwise("potential+search") == ("search", "potential")
    assert stages(("search", "bias", "potential")) == [
        ("search", ("search",)),
        ("bias+potential", ("bias", "potential")),
    ]


@pytest.mark.parametrize("kind", ["vgg", "residual"])
@pytest.mark.parametrize("neuron", ["if", "signed"])
def test_a_run_split_at_any_node_computes_what_one_run_does(kind, neuron):
    ann = graph_of(kind)
    x = torch.as_tensor(inputs(ann.input_shape, 16))
    snn = convert(
        ann, x.numpy(), ConversionSettings(target_timesteps=T, calibrate="none", neuron=neuron)
    )
    sim = Simulator(snn)
    _, whole = sim.run(x, torch.zeros(16, dtype=torch.long), T, record=[OUTPUT])
    for node in unroll(snn).nodes[1:]:
        cut, _ = sim.run_span(x, T, stop=node.name)
        _, rest = sim.run_span(cut, T, record=[OUTPUT])
        assert torch.equal(rest[OUTPUT], whole[OUTPUT]), node.name


def test_a_probe_sees_the_current_its_layer_integrates():
    """Under direct encoding the first layer's current is the ANN's pre-activation, once per
    batch; a later layer's comes once per step."""
    ann = prepare_ann(graph_of("vgg"))
    x = torch.as_tensor(inputs(ann.input_shape, 8))
    snn = convert(
        ann, x.numpy(), ConversionSettings(target_timesteps=T, calibrate="none", neuron="if")
    )
    neurons = [n for n in snn if n.op == "if_neuron"]
    first, second = neurons[0], neurons[1]
    seen: dict[str, list[torch.Tensor]] = {first.name: [], second.name: []}
    probes = {name: seen[name].append for name in seen}
    Simulator(snn).run(x, torch.zeros(8, dtype=torch.long), T, chunk=2, probes=probes)
    _, acts = ann_forward(ann, x, keep=[first.inputs[0]])
    assert len(seen[first.name]) == 2  # one call per chunk
    torch.testing.assert_close(seen[first.name][0], acts[first.inputs[0]])
    assert seen[second.name][0].shape[0] == 2 * 8  # steps x batch


def test_spikenorm_thresholds_are_the_peak_currents_of_the_converted_snn():
    """Each layer's threshold is the largest current it received with the layers before it
    at their final thresholds: re-simulating the result in one plain run shows the same."""
    ann = graph_of("residual")
    x = inputs(ann.input_shape, 48)
    settings = ConversionSettings(
        threshold="spikenorm", calibrate="none", neuron="if", target_timesteps=T
    )
    snn = convert(ann, x, settings)
    peaks: dict[str, torch.Tensor] = {}

    def keep(name):
        def probe(current):
            peak = current.max().reshape(1)
            peaks[name] = peak if name not in peaks else torch.maximum(peaks[name], peak)

        return probe

    neurons = [n for n in snn if n.op == "if_neuron"]
    sim = Simulator(snn)
    for start in range(0, len(x), 128):
        xb = torch.as_tensor(x[start : start + 128])
        probes = {n.name: keep(n.name) for n in neurons}
        sim.run(xb, torch.zeros(len(xb), dtype=torch.long), T, probes=probes)
    for n in neurons:
        np.testing.assert_array_equal(n.params["threshold"], peaks[n.name].numpy())


def _plain_search(snn, ann, x, timesteps):
    """The search without the layer walk: every candidate simulates the whole net."""
    snn = snn.copy()
    xt = torch.as_tensor(x)
    target = ann_forward(ann, xt)[0].flatten(1)

    def error() -> float:
        return output_error(snn, xt, target, timesteps)

    scales, best = {}, error()
    for neuron in [n for n in snn if n.op == "if_neuron"]:
        cap = ann.node(neuron.name).attrs.get("max")
        how = (search.EARLY_STOP, search.ONE_FINE)  # the candidates search_thresholds tries
        scales[neuron.name], best = _search_layer(neuron, cap, best, error, *how)
    return snn, scales


@pytest.mark.parametrize("kind", ["residual", "concat"])
def test_the_search_from_each_layer_on_chooses_what_the_plain_search_does(kind):
    ann = prepare_ann(graph_of(kind))
    x = inputs(ann.input_shape, 48)
    snn = convert(ann, x, ConversionSettings(target_timesteps=T, calibrate="none", neuron="if"))
    fast, fast_scales = search_thresholds(snn, ann, x, T, batch_size=32)  # two batches
    plain, plain_scales = _plain_search(snn, ann, x, T)
    assert fast_scales == plain_scales
    for a, b in zip(fast, plain, strict=True):
        for k, v in a.params.items():
            np.testing.assert_array_equal(v, b.params[k])


def test_early_stop_tries_fewer_candidates_and_never_worsens_the_error():
    ann = prepare_ann(graph_of("vgg"))
    x = torch.as_tensor(inputs(ann.input_shape, 32))
    snn = convert(
        ann, x.numpy(), ConversionSettings(target_timesteps=T, calibrate="none", neuron="if")
    )
    target = ann_forward(ann, x)[0].flatten(1)
    neuron = next(n for n in snn if n.op == "if_neuron")
    trials = {}
    for early in (False, True):
        g = snn.copy()
        layer = g.node(neuron.name)
        calls = []

        def error(g=g, calls=calls) -> float:
            calls.append(1)
            return output_error(g, x, target, T)

        start = error()
        _, err = _search_layer(layer, None, start, error, early_stop=early)
        assert err <= start
        trials[early] = len(calls)
    assert trials[True] < trials[False]


def test_a_window_past_the_last_layer_is_the_search_at_the_output():
    ann = prepare_ann(graph_of("vgg"))
    x = inputs(ann.input_shape, 32)
    snn = convert(ann, x, ConversionSettings(target_timesteps=T, calibrate="none", neuron="if"))
    _, at_output = search_thresholds(snn, ann, x, T)
    _, windowed = search_thresholds(snn, ann, x, T, window=100)
    assert windowed == at_output
    _, short = search_thresholds(snn, ann, x, T, window=1)
    assert list(short) == list(at_output) and all(s > 0 for s in short.values())


def test_auto_gives_the_snn_a_conversion_with_the_chosen_kind_gives():
    """--neuron auto calibrates once for both kinds; the SNN it keeps is the one converting
    with that kind alone gives, parameter for parameter."""
    ann = graph_of("residual")
    x = inputs(ann.input_shape, 64)
    auto = convert(ann, x, ConversionSettings(target_timesteps=T, calibration_images=64))
    chosen = json.loads(auto.metadata["snnconv.neuron_choice"])["chosen"]
    alone = convert(
        ann, x, ConversionSettings(target_timesteps=T, neuron=chosen, calibration_images=64)
    )
    assert auto.metadata["snnconv.threshold_scales"] == alone.metadata["snnconv.threshold_scales"]
    for a, b in zip(auto, alone, strict=True):
        assert a.params.keys() == b.params.keys()
        for k, v in a.params.items():
            np.testing.assert_array_equal(v, b.params[k])


def test_conversion_records_the_seconds_of_each_stage(monkeypatch):
    # both kinds calibrated in full (test_search_savings.py checks the stages of one dropped)
    monkeypatch.setattr(importlib.import_module("snnconv.convert.convert"), "AUTO_MARGIN", None)
    ann = graph_of("vgg")
    x = inputs(ann.input_shape, 32)
    start = time.perf_counter()
    snn = convert(ann, x, ConversionSettings(target_timesteps=T, calibrate="search+bias+potential"))
    elapsed = time.perf_counter() - start
    stages_ = json.loads(snn.metadata["snnconv.stage_seconds"])
    assert list(stages_) == [
        "thresholds",
        "search (if)",
        "bias+potential (if)",
        "search (signed)",
        "bias+potential (signed)",
        "neuron choice",
    ]
    # each stage timed once: together no longer than the whole conversion (rounding aside)
    assert sum(stages_.values()) <= elapsed + 0.01 * len(stages_)
    assert list(json.loads(snn.metadata["snnconv.stage_cpu_seconds"])) == list(stages_)
    one = convert(ann, x, ConversionSettings(target_timesteps=T, neuron="if", calibrate="bias"))
    assert list(json.loads(one.metadata["snnconv.stage_seconds"])) == ["thresholds", "bias"]


def test_convert_prints_the_time_of_each_stage(tmp_path):
    out = tmp_path / "m.snn.onnx"
    r = subprocess.run(
        [sys.executable, "-m", "snnconv", "--threads", "1", "convert",
         "src/snnconv/assets/digits_cnn.onnx", "--calib-data", "digits", "--calib-limit", "64",
         "--target-timesteps", "2", "--neuron", "if", "-o", str(out)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    line = next(s for s in r.stdout.splitlines() if "conversion time per stage" in s)
    assert "thresholds" in line and "search" in line and "bias" in line
