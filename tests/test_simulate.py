"""The engine: an SNN at large T computes its ANN; schedules agree; counts are exact."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from nets import KINDS, graph_of, inputs

from snnconv.convert import ConversionSettings, convert, prepare_ann
from snnconv.ops import ann_forward
from snnconv.simulate import SimulationSettings, Simulator, simulate
from snnconv.simulate.early_exit import charge, exit_steps
from snnconv.simulate.engine import OUTPUT


def _converted(kind: str, **settings):
    ann = graph_of(kind).copy()
    x = inputs(ann.input_shape, 128)
    return ann, convert(ann, x, ConversionSettings(**settings)), x


def _labels(ann, x) -> np.ndarray:
    out, _ = ann_forward(ann, torch.as_tensor(x))
    return out.argmax(1).numpy()


@pytest.mark.parametrize("kind", KINDS)
def test_snn_at_large_t_agrees_with_its_ann(kind):
    ann, snn, x = _converted(kind, threshold="max")
    y = _labels(ann, x)  # the ANN's own predictions as labels: accuracy = agreement
    report = simulate(snn, x, y, SimulationSettings(timesteps=256))
    assert report.ann_accuracy == 1.0
    assert report.snn_accuracy >= 0.95, report.accuracy_per_step[-1]
    # agreement improves with time: the anytime curve ends well above where it starts
    assert report.accuracy_per_step[-1] > report.accuracy_per_step[0]


@pytest.mark.parametrize("kind", ["vgg", "residual", "concat"])
@pytest.mark.parametrize("encoding", ["direct", "poisson"])
@pytest.mark.parametrize("channels_last", [True, False])  # True: the CPU default
def test_schedules_give_identical_spikes(kind, encoding, channels_last):
    ann, snn, x = _converted(kind)
    sim = Simulator(snn, channels_last=channels_last)
    xb, yb = torch.as_tensor(x[:32]), torch.as_tensor(_labels(ann, x[:32]))
    runs = []
    for chunk in (None, 1, 5):
        gen = torch.Generator().manual_seed(7)
        rec = [*sim.neurons, OUTPUT]  # the output potentials too, bit for bit
        runs.append(sim.run(xb, yb, 16, chunk=chunk, encoding=encoding, generator=gen, record=rec))
    (c0, s0), *rest = runs
    for c, s in rest:
        for name in s0:
            assert torch.equal(s0[name], s[name]), name
        np.testing.assert_array_equal(c0.correct_per_step, c.correct_per_step)
        for name in c0.synops:
            np.testing.assert_array_equal(c0.synops[name], c.synops[name])


@pytest.mark.parametrize("kind", ["residual", "mlp"])
@pytest.mark.parametrize("channels_last", [True, False])
def test_a_lone_image_run_step_by_step_matches_its_chunked_run(kind, channels_last):
    """A batch of one image run step by step gives its convs and linear layers one row,
    for which oneDNN and MKL pick kernels that round differently; the engine passes it as
    two rows, so the output potentials agree bit for bit."""
    ann, snn, x = _converted(kind)
    sim = Simulator(snn, channels_last=channels_last)
    xb, yb, rec = torch.as_tensor(x[:1]), torch.zeros(1, dtype=torch.long), [*sim.neurons, OUTPUT]
    (_, step), (_, chunked) = (sim.run(xb, yb, 8, chunk=c, record=rec) for c in (1, 8))
    for name in rec:
        assert torch.equal(step[name], chunked[name]), name


@pytest.mark.parametrize("kind", ["vgg", "residual", "concat"])
@pytest.mark.parametrize("encoding", ["direct", "poisson"])
def test_channels_last_flows_from_layer_to_layer(kind, encoding, monkeypatch):
    """On CPU the convs run channels-last by default, and the neurons, pooling, adds and
    concatenations keep that layout: the only copy into it is of the first conv's output
    (its input has 1 channel; once per batch under direct input, once per chunk under
    Poisson input), never a hidden copy per layer. Binary IF: signed spikes through a
    max-pool gate take the general (copying) gather path."""
    ann, snn, x = _converted(kind, neuron="if")
    sim = Simulator(snn)
    assert sim.channels_last
    copies = []
    contiguous = torch.Tensor.contiguous

    def spy(t, memory_format=torch.contiguous_format):
        if not t.is_contiguous(memory_format=memory_format):
            copies.append(tuple(t.shape))
        return contiguous(t, memory_format=memory_format)

    monkeypatch.setattr(torch.Tensor, "contiguous", spy)
    xb, gen = torch.as_tensor(x[:32]), torch.Generator().manual_seed(7)
    sim.run(xb, torch.zeros(32, dtype=torch.long), 16, chunk=5, encoding=encoding, generator=gen)
    assert len(copies) == (1 if encoding == "direct" else 4), copies


def _brute_force_conv_synops(spikes: np.ndarray, node) -> float:
    """Count (spike, target) pairs of a conv by walking every output position and tap."""
    a = node.attrs
    co, ci_g, kh, kw = node.params["weight"].shape
    groups = a["groups"]
    top, left, _, _ = a["padding"]
    sh, sw = a["stride"]
    dh, dw = a["dilation"]
    b, c, h, w = spikes.shape
    out_h = (h + a["padding"][0] + a["padding"][2] - dh * (kh - 1) - 1) // sh + 1
    out_w = (w + a["padding"][1] + a["padding"][3] - dw * (kw - 1) - 1) // sw + 1
    total = 0.0
    per_group_out = co // groups
    for g in range(groups):
        chans = slice(g * ci_g, (g + 1) * ci_g)
        for oh in range(out_h):
            for ow in range(out_w):
                for i in range(kh):
                    for j in range(kw):
                        ih, iw = oh * sh - top + i * dh, ow * sw - left + j * dw
                        if 0 <= ih < h and 0 <= iw < w:
                            total += per_group_out * spikes[:, chans, ih, iw].sum()
    return total


@pytest.mark.parametrize("neuron", ["if", "signed"])
def test_synops_equal_a_brute_force_count(neuron):
    # max thresholds at 6 steps leave the signed neurons room to take spikes back
    ann, snn, x = _converted("strided", neuron=neuron, threshold="max", calibrate="none")
    sim = Simulator(snn)
    xb = torch.as_tensor(x[:8])
    counts, spikes = sim.run(xb, torch.zeros(8, dtype=torch.long), 6, record=sim.neurons)
    neurons = [n for n in snn if n.op == "if_neuron"]
    # a -1 reaches its targets like a 1: the events are the spikes' magnitudes
    events = {name: s.abs() for name, s in spikes.items()}
    if neuron == "signed":
        assert any((s < 0).any() for s in spikes.values())
    conv2 = next(n for n in snn if n.op == "conv" and n.inputs == [neurons[0].name])
    s = events[neurons[0].name].numpy()  # (T*B, C, H, W)
    assert s.sum() > 0
    assert counts.synops[conv2.name].sum() == pytest.approx(_brute_force_conv_synops(s, conv2))
    # global average pool then linear: every spike reaches each of the 10 outputs once
    fc = next(n for n in snn if n.op == "linear")
    assert counts.synops[fc.name].sum() == pytest.approx(10 * events[neurons[1].name].sum())
    # the first conv sees the analog image: MACs once per image, no synops
    first = snn.nodes[0]
    assert first.name not in counts.synops
    assert counts.snn_macs[first.name] > 0


def test_report_counts_are_consistent():
    ann, snn, x = _converted("vgg")
    r = simulate(snn, x, _labels(ann, x), SimulationSettings(timesteps=8))
    assert len(r.accuracy_per_step) == 8
    assert r.spikes_per_image == pytest.approx(
        sum(layer.spikes_per_image or 0 for layer in r.layers)
    )
    assert r.energy.snn_joules_per_image == pytest.approx(
        r.synops_per_image * r.energy.ac_joules + r.snn_macs_per_image * r.energy.mac_joules
    )
    assert r.energy.ann_joules_per_image == pytest.approx(
        r.ann_macs_per_image * r.energy.mac_joules
    )
    for layer in r.layers:
        if layer.firing_rate is not None:
            assert 0 <= layer.firing_rate <= 1


def test_poisson_runs_are_reproducible_and_seed_dependent():
    ann, snn, x = _converted("mlp")
    y = _labels(ann, x)
    a = simulate(snn, x, y, SimulationSettings(timesteps=8, encoding="poisson", seed=3))
    b = simulate(snn, x, y, SimulationSettings(timesteps=8, encoding="poisson", seed=3))
    c = simulate(snn, x, y, SimulationSettings(timesteps=8, encoding="poisson", seed=4))
    assert a.accuracy_per_step == b.accuracy_per_step
    assert a.spikes_per_image == b.spikes_per_image
    assert a.spikes_per_image != c.spikes_per_image


def test_bn_folding_keeps_the_ann_function():
    ann = graph_of("vgg")
    x = torch.as_tensor(inputs(ann.input_shape, 16))
    folded = prepare_ann(ann)
    assert not any(n.op == "affine" for n in folded)
    torch.testing.assert_close(
        ann_forward(folded, x)[0], ann_forward(ann, x)[0], rtol=1e-4, atol=1e-5
    )


def test_exit_steps_stop_when_the_prediction_has_held():
    predictions = np.array([[0, 1, 2], [0, 2, 2], [0, 2, 1], [0, 2, 1]])  # T=4, three images
    np.testing.assert_array_equal(exit_steps(predictions, 2), [2, 3, 2])
    np.testing.assert_array_equal(exit_steps(predictions, 1), [1, 1, 1])
    np.testing.assert_array_equal(exit_steps(predictions, 4), [4, 4, 4])  # never held 4: T


def test_early_exit_charges_only_the_steps_run():
    ann, snn, x = _converted("vgg")
    y = _labels(ann, x)
    full = simulate(snn, x, y, SimulationSettings(timesteps=16))
    late = simulate(snn, x, y, SimulationSettings(timesteps=16, exit_when_stable=16))
    early = simulate(snn, x, y, SimulationSettings(timesteps=16, exit_when_stable=2))
    # waiting for all 16 steps to agree stops at T at the latest: nothing saved for those
    assert late.early_exit.synops_per_image <= full.synops_per_image + 1e-6
    assert early.early_exit.mean_steps < 16
    assert early.early_exit.synops_per_image < full.synops_per_image
    assert early.early_exit.snn_joules_per_image < full.energy.snn_joules_per_image
    assert sum(early.early_exit.steps_histogram) == len(x)
    # the report describes the run as made: its figures are those of the early exit
    assert early.snn_accuracy == early.early_exit.accuracy
    assert early.synops_per_image == pytest.approx(early.early_exit.synops_per_image)
    assert early.energy.snn_joules_per_image == pytest.approx(early.early_exit.snn_joules_per_image)


def _charged_full_runs(snn, x, y, T, stable, settings):
    """The reference: every image run to T (as simulate batches them), then charged only the
    steps up to where it would have stopped."""
    sim = Simulator(snn)
    gen = torch.Generator().manual_seed(settings.seed)
    total = None
    for start in range(0, len(x), settings.batch_size):
        xb, yb = (torch.as_tensor(a[start : start + settings.batch_size]) for a in (x, y))
        counts, _ = sim.run(xb, yb, T, encoding=settings.encoding, generator=gen, per_image=True)
        if total is None:
            total = counts
        else:
            total.merge(counts)
    return total, exit_steps(total.predictions, stable)


@pytest.mark.parametrize(
    ("kind", "encoding", "schedule"),
    [("vgg", "direct", "step"), ("vgg", "poisson", "step"), ("residual", "direct", "layer")],
)
def test_early_exit_that_stops_work_matches_charging_a_full_run(kind, encoding, schedule):
    ann, snn, x = _converted(kind)
    y = _labels(ann, x)
    T, K = 16, 3
    settings = SimulationSettings(
        timesteps=T, exit_when_stable=K, encoding=encoding, schedule=schedule, batch_size=48
    )
    e = simulate(snn, x, y, settings).early_exit
    full, stop = _charged_full_runs(snn, x, y, T, K, settings)
    assert 1 < e.mean_steps < T - 1
    assert e.mean_steps == stop.mean()
    assert e.steps_histogram == np.bincount(stop, minlength=T + 1)[1:].tolist()
    assert e.accuracy == (full.predictions[stop - 1, np.arange(len(x))] == y).mean()
    assert e.spikes_per_image == charge(full.image_spikes, stop)
    assert e.synops_per_image == charge(full.image_synops, stop)
    static_macs = sum(full.snn_macs.values()) / len(x) - full.image_macs.sum() / len(x)
    macs = static_macs + charge(full.image_macs, stop)
    assert e.snn_macs_per_image == pytest.approx(macs, rel=1e-12)


def test_early_exit_drops_stopped_images_from_the_batch():
    ann, snn, x = _converted("vgg")
    y = torch.as_tensor(_labels(ann, x))
    sim = Simulator(snn)
    batches = []
    read_out = sim._read_out

    def spy(*args):
        predictions = read_out(*args)
        batches.append(predictions.shape[1])
        return predictions

    sim._read_out = spy
    counts, _ = sim.run(torch.as_tensor(x), y, 64, chunk=1, exit_when_stable=2)
    assert counts.stop.max() < 64  # every image stopped early ...
    assert len(batches) == counts.stop.max()  # ... and the run ended with the last of them
    assert batches[0] == len(x) > batches[-1]
    assert batches == sorted(batches, reverse=True)
    # an image that stopped keeps its answer: accuracy no longer changes after the last stop
    assert len(set(counts.correct_per_step[counts.stop.max() - 1 :])) == 1


def test_conv_biases_left_to_fused_neurons_on_cuda():
    """On CUDA a conv's bias is added by the IF layer it feeds (one pass fewer) only where
    that layer is its sole reader: a conv feeding a residual add keeps its own."""
    from types import SimpleNamespace

    from snnconv.graph import unroll

    _, snn, _ = _converted("residual", neuron="if")
    g = unroll(snn)
    chosen = Simulator._biases_to_fuse(SimpleNamespace(device=torch.device("cuda")), g)
    readers = {n.name: [m for m in g if n.name in m.inputs] for n in g}
    convs = [n for n in g if n.op == "conv"]
    feeding_add = {n.name for n in convs if any(m.op == "add" for m in readers[n.name])}
    assert chosen and feeding_add and not chosen & feeding_add
    for name in chosen:
        (reader,) = readers[name]
        assert reader.op == "if_neuron" and not reader.attrs.get("signed")
    assert Simulator._biases_to_fuse(SimpleNamespace(device=torch.device("cpu")), g) == set()


def test_cpu_defaults():
    """On CPU: channels-last convolutions, eager per-step loops (the fused kernels are CUDA's;
    on CPU only Triton's interpreter runs them, for tests)."""
    _, snn, _ = _converted("vgg")
    sim = Simulator(snn)
    assert sim.channels_last and not sim.fused
