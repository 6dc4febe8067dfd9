"""Hybrid ANN-SNN: the two ends of the sweep are the plain SNN and the ANN."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from nets import graph_of, inputs

from snnconv.convert import ConversionSettings, convert
from snnconv.convert.hybrid import cut_for_ann_layers, cut_points, make_hybrid
from snnconv.errors import InputError
from snnconv.load import load_onnx
from snnconv.ops import ann_forward
from snnconv.save import save_onnx
from snnconv.simulate import SimulationSettings, simulate


def _setup(kind="vgg"):
    ann = graph_of(kind)
    x = inputs(ann.input_shape, 128)
    y = ann_forward(ann, torch.as_tensor(x))[0].argmax(1).numpy()
    snn = convert(ann, x, ConversionSettings(target_timesteps=8))
    return ann, snn, x, y


def test_all_ann_cut_is_the_ann():
    ann, snn, x, y = _setup()
    r = simulate(make_hybrid(snn, snn.input_name), x, y, SimulationSettings(timesteps=4))
    assert r.accuracy_per_step == [1.0] * 4  # labels are the ANN's own predictions
    assert r.spikes_per_image == 0
    assert r.energy.ratio == pytest.approx(1.0)  # every MAC once, as in the ANN


@pytest.mark.parametrize("kind", ["vgg", "residual"])
def test_output_layer_alone_in_the_ann_part_equals_the_plain_snn(kind):
    ann, snn, x, y = _setup(kind)
    hybrid = make_hybrid(snn, cut_for_ann_layers(snn, 1))
    plain = simulate(snn, x, y, SimulationSettings(timesteps=8))
    mixed = simulate(hybrid, x, y, SimulationSettings(timesteps=8))
    # W * mean(spikes) + b is V(t)/t: the same read-out up to float rounding
    diff = np.abs(np.array(plain.accuracy_per_step) - np.array(mixed.accuracy_per_step))
    assert diff.max() <= 2 / len(x)
    assert mixed.spikes_per_image == plain.spikes_per_image
    # the output layer's MACs now count once, in the ANN part
    assert mixed.energy.ann_part_joules_per_image > 0
    assert mixed.synops_per_image < plain.synops_per_image


def test_energy_splits_and_the_file_round_trips(tmp_path):
    ann, snn, x, y = _setup()
    hybrid = make_hybrid(snn, cut_for_ann_layers(snn, 2, "membrane"), "membrane")
    r = simulate(hybrid, x, y, SimulationSettings(timesteps=8))
    e = r.energy
    assert e.snn_joules_per_image == pytest.approx(
        e.snn_part_joules_per_image + e.ann_part_joules_per_image
    )
    save_onnx(hybrid, tmp_path / "h.snn.onnx")
    again = simulate(load_onnx(tmp_path / "h.snn.onnx"), x, y, SimulationSettings(timesteps=8))
    assert again.accuracy_per_step == r.accuracy_per_step


def test_a_cut_inside_a_residual_block_is_refused():
    _, snn, _, _ = _setup("residual")
    inner = next(n.name for n in snn if n.op == "conv" and n.name not in cut_points(snn))
    with pytest.raises(InputError, match="Valid cuts"):
        make_hybrid(snn, inner)


def test_ann_only_ops_must_sit_in_the_ann_part():
    from nets import to_graph
    from torch import nn

    from snnconv.errors import UnsupportedOpsError

    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(512, 32),
        nn.ReLU(),
        nn.Linear(32, 16),
        nn.Sigmoid(),
        nn.Linear(16, 10),
    )
    ann = to_graph(model, (1, 8, 8))
    x = inputs(ann.input_shape, 128)
    y = ann_forward(ann, torch.as_tensor(x))[0].argmax(1).numpy()
    with pytest.raises(UnsupportedOpsError) as err:
        convert(ann, x, ConversionSettings(target_timesteps=8))
    assert [op for _, op in err.value.nodes] == ["sigmoid"]
    cut = str(err.value).split("--hybrid-after '")[1].split("'")[0]
    hybrid = convert(ann, x, ConversionSettings(target_timesteps=8, hybrid_after=cut))
    r = simulate(hybrid, x, y, SimulationSettings(timesteps=32))
    assert r.ann_accuracy == 1.0 and r.snn_accuracy >= 0.9
    assert r.spikes_per_image > 0
