"""Energy models and the counts they read: the memory-aware model against a hand count, the
engine's neuron-update, weight-read and membrane-update counts against brute force, the
break-even line, and the JSON names and units scripts rely on."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from nets import to_graph
from torch import nn

from snnconv.cli.main import cli
from snnconv.convert import ConversionSettings, convert
from snnconv.simulate import SimulationSettings, Simulator, simulate
from snnconv.simulate.energy import MODELS, EnergyModel, Term, estimate, register, unregister

PJ = 1e-12


def _two_layer():
    torch.manual_seed(0)
    ann = to_graph(nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2)), (4,))
    x = np.random.default_rng(0).random((32, 4), dtype=np.float32)
    snn = convert(ann, x, ConversionSettings(calibrate="none", neuron="if"))
    return snn, x, np.zeros(32, np.int64)


def test_memory_model_matches_a_hand_count_on_a_two_layer_net():
    snn, x, y = _two_layer()
    T = 8
    r = simulate(snn, x, y, SimulationSettings(timesteps=T, energy="memory-45nm"))
    spikes = next(row.spikes_per_image for row in r.layers if row.neurons)
    assert spikes > 0
    # 4.6 pJ per MAC, 0.9 pJ per add, 10 pJ per memory access (Horowitz 2014)
    mac, add, mem = 4.6 * PJ, 0.9 * PJ, 10 * PJ
    # ANN: per MAC a MAC, a weight and an input read; per output a bias read and a write
    ann = (12 + 6) * (mac + 2 * mem) + (3 + 2) * 2 * mem
    # SNN: the first layer on the static image once; 3 neurons updated at each of T steps
    # (membrane read and write, threshold compare, the constant current read and added);
    # each spike written, read by the second layer and delivered to its 2 targets
    # (accumulate, weight read, membrane read and write)
    snn_j = 12 * (mac + 2 * mem) + 3 * 2 * mem
    snn_j += 3 * T * (3 * mem + 2 * add) + spikes * mem
    snn_j += spikes * mem + 2 * spikes * (add + 3 * mem)
    assert r.energy.model == "memory-45nm"
    assert r.energy.ann_joules_per_image == pytest.approx(ann, rel=1e-12)
    assert r.energy.snn_joules_per_image == pytest.approx(snn_j, rel=1e-12)
    assert r.energy.ratio == pytest.approx(snn_j / ann, rel=1e-12)


def _conv_net():
    torch.manual_seed(3)
    model = nn.Sequential(
        nn.Conv2d(2, 4, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Conv2d(4, 3, 3, padding=2, dilation=2, bias=False),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(3 * 5 * 5, 5),
    )
    ann = to_graph(model, (2, 9, 9))
    x = np.random.default_rng(1).random((6, 2, 9, 9), dtype=np.float32)
    return convert(ann, x, ConversionSettings(calibrate="none", neuron="if")), x


def _window_spikes(spikes: np.ndarray, node) -> np.ndarray:
    """Per row (step x image) and output position of a one-group conv, the spikes in its
    window over all input channels, walking every position and tap."""
    a = node.attrs
    _, _, kh, kw = node.params["weight"].shape
    (sh, sw), (dh, dw), (top, left) = a["stride"], a["dilation"], a["padding"][:2]
    rows, _, h, w = spikes.shape
    out_h = (h + a["padding"][0] + a["padding"][2] - dh * (kh - 1) - 1) // sh + 1
    out_w = (w + a["padding"][1] + a["padding"][3] - dw * (kw - 1) - 1) // sw + 1
    total = np.zeros((rows, out_h, out_w))
    for oh in range(out_h):
        for ow in range(out_w):
            for i in range(kh):
                for j in range(kw):
                    ih, iw = oh * sh - top + i * dh, ow * sw - left + j * dw
                    if 0 <= ih < h and 0 <= iw < w:
                        total[:, oh, ow] += spikes[:, :, ih, iw].sum(1)
    return total


def test_neuron_update_weight_read_and_membrane_counts_equal_brute_force():
    snn, x = _conv_net()
    T, n = 5, len(x)
    sim = Simulator(snn)
    neurons = [node for node in snn if node.op == "if_neuron"]
    convs = [node for node in snn if node.op == "conv"]
    xb, yb = torch.as_tensor(x), torch.zeros(n, dtype=torch.long)
    counts, spikes = sim.run(xb, yb, T, record=sim.neurons)
    s1 = spikes[neurons[0].name].numpy()  # (T*n, C, H, W)
    s2 = spikes[neurons[1].name].numpy()
    assert 0 < s1.sum() < s1.size
    co = convs[1].params["weight"].shape[0]
    window = _window_spikes((s1 != 0).astype(float), convs[1])  # (T*n, 5, 5)
    reached = np.repeat(window[:, None] > 0, co, axis=1)  # (T*n, 3, 5, 5)
    np.testing.assert_array_equal(
        counts.reached[convs[1].name], reached.reshape(T, n, -1).sum((1, 2))
    )
    # membranes of the bias-free layer change where an event arrives or a spike fires,
    # and all of them at the first step
    changed = (reached | (s2 != 0)).reshape(T, n, -1).sum((1, 2)).astype(float)
    changed[0] = n * s2[0].size
    np.testing.assert_array_equal(counts.membrane_updates[neurons[1].name], changed)

    r = simulate(snn, x, np.zeros(n, np.int64), SimulationSettings(timesteps=T))
    rows = {row.name: row for row in r.layers}
    second = rows[neurons[1].name]
    assert second.neuron_updates_per_image == 75 * T
    assert second.event_driven_updates_per_image == pytest.approx(reached.sum() / n)
    assert second.event_driven_updates_per_image < second.neuron_updates_per_image
    assert not second.constant_current and rows[neurons[0].name].constant_current
    # one weight read per synaptic operation: each spike, each output channel of each
    # output position whose window holds it
    reads = window.sum() * co
    assert rows[convs[1].name].weight_reads_per_image == pytest.approx(reads / n)
    fc = next(node for node in snn if node.op == "linear")
    assert rows[fc.name].weight_reads_per_image == pytest.approx(5 * (s2 != 0).sum() / n)
    assert rows[fc.name].input_events_per_image == pytest.approx((s2 != 0).sum() / n)


def test_break_even_rate_equalises_the_energies():
    snn, x = _conv_net()
    r = simulate(snn, x, np.zeros(len(x), np.int64), SimulationSettings(timesteps=6))
    for name in MODELS:
        e = estimate(name, r)
        snn_terms = [t for t in e.terms if t["side"] == "snn"]
        fixed = sum(t["joules_per_image"] for t in snn_terms if not t["spikes"])
        varying = sum(t["joules_per_image"] for t in snn_terms if t["spikes"])
        scale = e.break_even_firing_rate / e.firing_rate
        if scale > 0:  # at the break-even rate the SNN costs what the ANN does
            assert fixed + scale * varying == pytest.approx(e.ann_joules_per_image)
        else:  # the fixed part alone costs more than the ANN
            assert fixed >= e.ann_joules_per_image
        assert e.ratio < 1 or e.break_even_firing_rate <= e.firing_rate
        for layer in e.layers:
            assert set(layer) == {
                "name",
                "ann_joules_per_image",
                "snn_joules_per_image",
                "firing_rate",
                "break_even_firing_rate",
            }


def test_json_names_and_units():
    snn, x = _conv_net()
    settings = SimulationSettings(timesteps=4, energy="loihi")
    r = simulate(snn, x, np.zeros(len(x), np.int64), settings)
    d = json.loads(r.to_json())
    assert d["energy"]["model"] == d["energy"]["preset"] == "loihi"
    assert 0 <= d["energy"]["break_even_firing_rate"]
    nb = d["neurobench"]
    assert set(nb) == {
        "activation_sparsity",
        "synaptic_operations",
        "membrane_updates",
        "footprint_bytes",
        "connection_sparsity",
    }
    assert set(nb["synaptic_operations"]) == {"dense", "effective_macs", "effective_acs"}
    assert nb["activation_sparsity"] == pytest.approx(1 - d["energy"]["firing_rate"])
    assert nb["synaptic_operations"]["effective_acs"] == pytest.approx(d["synops_per_image"])
    # every synapse at every step: fewer than the MACs, which count taps on the padding
    dense = sum(row["synapses"] or 0 for row in d["layers"]) * 4
    assert nb["synaptic_operations"]["dense"] == pytest.approx(dense)
    assert dense < 4 * d["ann_macs_per_image"]
    weights = sum(np.asarray(p).size for node in snn for p in node.params.values())
    assert nb["footprint_bytes"] == 4 * weights  # float32 parameters
    assert nb["connection_sparsity"] == 0.0
    # every term is its constant times its count, and the terms add up to the totals
    for side in ("ann", "snn"):
        terms = [t for t in d["energy"]["terms"] if t["side"] == side]
        for t in terms:
            assert t["joules_per_image"] == pytest.approx(
                t["constant_joules"] * t["count_per_image"]
            )
        total = sum(t["joules_per_image"] for t in terms)
        assert total == pytest.approx(d["energy"][f"{side}_joules_per_image"])
    assert all(c["source"] for c in d["energy"]["constants"])


def test_energy_help_lists_every_model_and_a_bad_one_is_refused():
    out = CliRunner().invoke(cli, ["simulate", "--help"]).output
    for name in MODELS:
        assert name in out
    assert any("memory" in name for name in MODELS)
    with pytest.raises(Exception, match="--energy must be one of"):
        SimulationSettings(energy="nope").check()


class _PerSpike(EnergyModel):
    name, summary, source, constants = "toy-per-spike", "1 pJ per spike", "a test", ()
    mac_joules = ac_joules = 1e-12

    def terms(self, report):
        return [
            Term("ann", "all", "MAC", 1e-12, report.ann_macs_per_image),
            Term("snn", "all", "spike", 1e-12, report.spikes_per_image, spikes=True),
        ]


def test_a_registered_model_is_estimated_like_the_built_in_ones():
    snn, x, y = _two_layer()
    register(_PerSpike())
    try:
        r = simulate(snn, x, y, SimulationSettings(timesteps=4, energy="toy-per-spike"))
    finally:
        unregister("toy-per-spike")
    assert r.energy.snn_joules_per_image == pytest.approx(r.spikes_per_image * 1e-12)
    assert r.energy.break_even_firing_rate == pytest.approx(
        r.energy.firing_rate * r.ann_macs_per_image / r.spikes_per_image
    )


def test_simulate_cli_prices_with_the_chosen_model(tmp_path):
    from snnconv.save import save_onnx

    snn, x = _conv_net()
    save_onnx(snn, tmp_path / "m.snn.onnx")
    np.savez(tmp_path / "d.npz", x=x, y=np.zeros(len(x), np.int64))
    args = ["simulate", str(tmp_path / "m.snn.onnx"), "--data", f"npz:{tmp_path / 'd.npz'}"]
    args += ["-T", "4", "--energy", "memory-45nm", "--json", str(tmp_path / "r.json")]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "Energy arithmetic" in result.output and "break-even" in result.output
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["energy"]["model"] == "memory-45nm"
    whats = {t["what"] for t in report["energy"]["terms"]}
    assert {"weight read", "membrane read", "spike write", "bias read"} <= whats
