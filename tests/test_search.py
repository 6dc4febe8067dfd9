"""Threshold search: each layer's threshold rescaled, in order, to fit the ANN's output at T."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from nets import graph_of, inputs

from snnconv.calibrate.search import _search_layer, search_thresholds
from snnconv.convert import ConversionSettings, convert, prepare_ann
from snnconv.convert.convert import parse_layerwise
from snnconv.errors import InputError
from snnconv.graph import Node
from snnconv.load import load_onnx
from snnconv.ops import ann_forward
from snnconv.simulate.engine import OUTPUT, Simulator

T = 4
DIGITS_CNN = "src/snnconv/assets/digits_cnn.onnx"


def _snnconv(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "snnconv", *args], capture_output=True, text=True, timeout=300
    )


def _output_error(snn, ann, x) -> float:
    xt = torch.as_tensor(x)
    _, rec = Simulator(snn).run(xt, torch.zeros(len(x), dtype=torch.long), T, record=[OUTPUT])
    target = ann_forward(ann, xt)[0].flatten(1)
    return float(((rec[OUTPUT][-len(x) :] - target) ** 2).mean())


def test_layerwise_steps_parse_in_running_order_and_refuse_nonsense():
    assert parse_layerwise("none") == ()
    assert parse_layerwise("bias+search") == ("search", "bias")
    for bad in ("", "bias+", "bias+bias", "search+weights", "Bias"):
        with pytest.raises(InputError):
            parse_layerwise(bad)


def test_recorded_output_is_the_running_estimate_the_predictions_come_from():
    ann = graph_of("vgg")
    x = inputs(ann.input_shape, 32)
    snn = convert(ann, x, ConversionSettings(target_timesteps=T, calibrate="none"))
    counts, rec = Simulator(snn).run(
        torch.as_tensor(x), torch.zeros(32, dtype=torch.long), T, record=[OUTPUT], per_image=True
    )
    estimate = rec[OUTPUT].view(T, 32, -1)
    np.testing.assert_array_equal(estimate.argmax(-1).numpy(), counts.predictions)


def test_search_never_worsens_the_output_error_and_rescales_only_thresholds():
    ann = prepare_ann(graph_of("residual"))
    x = inputs(ann.input_shape, 64)
    snn = convert(ann, x, ConversionSettings(target_timesteps=T, calibrate="none"))
    # the full search: with early stop and one second-pass point (the defaults, within the
    # noise of the bench nets: docs/speed.md) no layer of this tiny net gains
    searched, scales = search_thresholds(snn, ann, x, T, early_stop=False, one_fine=False)
    neurons = [n for n in snn if n.op == "if_neuron"]
    assert list(scales) == [n.name for n in neurons]
    for n in neurons:
        np.testing.assert_allclose(
            searched.node(n.name).params["threshold"],
            n.params["threshold"] * np.float32(scales[n.name]),
            rtol=1e-6,
        )
    for a, b in zip(snn, searched, strict=True):
        for k, v in a.params.items():
            if k != "threshold":
                np.testing.assert_array_equal(b.params[k], v)
    before, after = _output_error(snn, ann, x), _output_error(searched, ann, x)
    assert after <= before
    assert any(s != 1.0 for s in scales.values())  # on this net some layer gains from it


def test_search_keeps_thresholds_within_a_bounded_relu():
    ann = prepare_ann(graph_of("concat"))  # has a ReLU6
    x = inputs(ann.input_shape, 32)
    snn = convert(ann, x, ConversionSettings(target_timesteps=T, calibrate="none"))
    searched, _ = search_thresholds(snn, ann, x, T)
    for n in ann:
        if n.op == "clip":
            assert float(np.max(searched.node(n.name).params["threshold"])) <= n.attrs["max"]


def test_convert_prints_and_stores_the_chosen_scales(tmp_path):
    out = tmp_path / "m.snn.onnx"
    r = _snnconv(
        "convert", DIGITS_CNN, "--calib-data", "digits", "--calib-limit", "128",
        "--target-timesteps", "4", "-o", str(out),
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "threshold search kept" in r.stdout
    scales = json.loads(load_onnx(out).metadata["snnconv.threshold_scales"])
    assert scales and all(s > 0 for s in scales.values())


def test_convert_refuses_unknown_calibration_steps(tmp_path):
    r = _snnconv(
        "convert", DIGITS_CNN, "--calib-data", "digits", "--calibrate", "bias+magic",
        "-o", str(tmp_path / "m.snn.onnx"),
    )  # fmt: skip
    assert r.returncode == 2
    assert "--calibrate" in r.stderr and "bias+magic" in r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "m.snn.onnx").exists()


@pytest.mark.parametrize("best", [4.0, 0.25, 2**0.25])
def test_search_steps_past_the_grid_when_the_error_keeps_falling(best):
    """A made-up error with its minimum at ``best``: the search ends within 2**1/4 of it."""
    base = np.array([2.0], np.float32)
    neuron = Node("n", "if_neuron", ["x"], {"reset": "subtract", "v0": 0.5}, {"threshold": base})

    def error() -> float:
        return float(np.log(neuron.params["threshold"][0] / base[0] / best) ** 2)

    scale, err = _search_layer(neuron, None, error(), error)
    assert abs(np.log2(scale / best)) <= 0.25 + 1e-9
    assert err == pytest.approx(error())  # the threshold left in place is the one chosen
