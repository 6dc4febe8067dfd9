"""Conversion choices a user relies on: thresholds, layer-wise calibration, max pooling."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from nets import graph_of, inputs

from snnconv.calibrate import parse_method
from snnconv.calibrate.thresholds import mse_threshold, quantisation_errors, rate_quantise
from snnconv.convert import ConversionSettings, convert, prepare_ann, to_ann
from snnconv.errors import InputError
from snnconv.load import load_onnx
from snnconv.ops import ann_forward
from snnconv.save import save_onnx
from snnconv.simulate import SimulationSettings, simulate


def _labels(ann, x):
    return ann_forward(ann, torch.as_tensor(x))[0].argmax(1).numpy()


def test_threshold_methods_parse_and_refuse_nonsense():
    assert str(parse_method("percentile:99.9")) == "percentile:99.9"
    assert parse_method("mse").name == "mse"
    for bad in ("median", "percentile:0", "percentile:abc", "max:3"):
        with pytest.raises(InputError):
            parse_method(bad)


def test_mse_threshold_beats_max_on_its_own_objective():
    rng = np.random.default_rng(0)
    a = rng.exponential(1.0, 50_000).astype(np.float32)
    T = 4
    best = mse_threshold(a, float(a.max()), T, 0.5)
    err = lambda th: np.mean((a - rate_quantise(a, th, T, 0.5)) ** 2)
    assert best < a.max()
    assert err(best) < err(float(a.max()))


@pytest.mark.parametrize("timesteps", [1, 3, 8, 32])
@pytest.mark.parametrize("v0", [0.0, 0.5])
def test_quantisation_errors_equal_the_direct_error_of_each_threshold(timesteps, v0):
    # the sort-and-prefix-sum errors must be what rate_quantise gives, value by value; values
    # put exactly on level boundaries and above the largest level test the edges
    rng = np.random.default_rng(timesteps)
    thresholds = np.array([0.25, 0.5, 1.0, 2.0])
    edges = ((np.arange(1, timesteps + 1) - v0) * 0.5 / timesteps).astype(np.float32)
    a = np.concatenate([rng.exponential(0.4, 20_000), edges, [3.0, 7.5]]).astype(np.float32)
    direct = [
        np.mean((a.astype(np.float64) - rate_quantise(a, t, timesteps, v0)) ** 2)
        for t in thresholds
    ]
    assert quantisation_errors(a, thresholds, timesteps, v0) == pytest.approx(direct, rel=1e-9)


def test_layerwise_bias_calibration_lifts_low_t_accuracy():
    ann = graph_of("residual")
    x = inputs(ann.input_shape, 256)
    y = _labels(ann, x)
    T = 4
    plain = convert(ann, x, ConversionSettings(target_timesteps=T, calibrate="none"))
    tuned = convert(ann, x, ConversionSettings(target_timesteps=T, calibrate="bias"))
    a_plain = simulate(plain, x, y, SimulationSettings(timesteps=T)).snn_accuracy
    a_tuned = simulate(tuned, x, y, SimulationSettings(timesteps=T)).snn_accuracy
    assert a_tuned > a_plain
    # the correction lives in the neurons: the ANN the report compares against is unchanged
    xt = torch.as_tensor(x)
    torch.testing.assert_close(
        ann_forward(to_ann(tuned), xt)[0], ann_forward(prepare_ann(ann), xt)[0]
    )
    assert any("bias" in n.params for n in tuned if n.op == "if_neuron")


def test_saved_snn_simulates_identically(tmp_path):
    ann = graph_of("vgg")
    x = inputs(ann.input_shape, 64)
    y = _labels(ann, x)
    snn = convert(ann, x, ConversionSettings(target_timesteps=8, per_channel=True))
    save_onnx(snn, tmp_path / "m.snn.onnx")
    again = load_onnx(tmp_path / "m.snn.onnx")
    a = simulate(snn, x, y, SimulationSettings(timesteps=8))
    b = simulate(again, x, y, SimulationSettings(timesteps=8))
    assert a.accuracy_per_step == b.accuracy_per_step
    assert a.spikes_per_image == b.spikes_per_image
    assert a.synops_per_image == b.synops_per_image


def test_maxpool_avg_changes_the_ann_and_says_so():
    ann = graph_of("vgg")
    x = inputs(ann.input_shape, 64)
    snn = convert(ann, x, ConversionSettings(maxpool="avg", calibrate="none"))
    assert not any(n.op in ("maxpool", "maxpool_gate") for n in snn)
    assert '"maxpool": "avg"' in snn.metadata["snnconv.conversion"]
    gated = convert(ann, x, ConversionSettings(maxpool="gate", calibrate="none"))
    assert any(n.op == "maxpool_gate" for n in gated)
