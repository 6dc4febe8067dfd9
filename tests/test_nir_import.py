"""NIR in: a NIR graph read back runs in snnconv's engine exactly as the SNN it came from."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from cli_run import run_in_process
from nets import graph_of, inputs

from snnconv.convert import ConversionSettings, convert
from snnconv.errors import InputError
from snnconv.load import load_model
from snnconv.simulate import Simulator

nir = pytest.importorskip("nir")
from snnconv.export.nir import to_nir, write_nir  # noqa: E402
from snnconv.export.nir_reader import from_nir, read_nir  # noqa: E402

NIR = ConversionSettings(target="nir", calibration_images=32)


@pytest.fixture(scope="module")
def snns():
    out = {}
    for kind in ("vgg", "residual", "strided", "mlp"):
        g = graph_of(kind)
        out[kind] = convert(g, inputs(g.input_shape, 32), NIR, batch_size=32)
    return out


@pytest.mark.parametrize("kind", ["vgg", "residual", "strided", "mlp"])
def test_round_trip_gives_identical_predictions_and_spikes(snns, kind):
    snn = snns[kind]
    back = from_nir(to_nir(snn)[0])
    assert [n.op for n in back] == [n.op for n in snn]
    x = torch.as_tensor(inputs(snn.input_shape, 40, seed=5))
    for c in range(3):  # correct counts per class: the per-step predictions agree
        y = torch.full((len(x),), c)
        a, _ = Simulator(snn).run(x, y, 12)
        b, _ = Simulator(back).run(x, y, 12)
        assert a.correct_per_step.tolist() == b.correct_per_step.tolist()
    spikes_a = [float(v.sum()) for v in a.spikes.values()]
    spikes_b = [float(v.sum()) for v in b.spikes.values()]
    assert spikes_a == spikes_b and sum(spikes_a) > 0


def _graph(nodes: dict, edges: list):
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


def _mlp(neuron):
    return _graph(
        {
            "input": nir.Input(input_type={"input": np.array([4])}),
            "fc": nir.Affine(weight=np.ones((3, 4), np.float32), bias=np.zeros(3, np.float32)),
            "lif": neuron,
            "out": nir.Affine(weight=np.eye(3, dtype=np.float32), bias=np.zeros(3, np.float32)),
            "output": nir.Output(output_type={"output": np.array([3])}),
        },
        [("input", "fc"), ("fc", "lif"), ("lif", "out"), ("out", "output")],
    )


def test_nir_if_rule_reset_and_r_are_read_as_nir_defines_them():
    # r = 2, v_threshold = 3, input 1 per step: v = 2, 4 (> 3: spike, reset to 0), 2, 4, ...
    ones = np.ones(3, np.float32)
    g = from_nir(_mlp(nir.IF(r=2 * ones, v_threshold=3 * ones, v_reset=0 * ones)))
    neuron = next(n for n in g if n.op == "if_neuron")
    x = torch.full((1, 4), 0.25)
    counts, _ = Simulator(g).run(x, torch.zeros(1, dtype=torch.long), 8)
    assert float(counts.spikes[neuron.name].sum()) == 3 * 4  # 4 spikes in 8 steps, 3 neurons
    # v = 1 lands exactly on v_threshold = 1 and does not fire (NIR: v > v_threshold); v = 2
    # does: a spike every second step, where v >= threshold would fire on every one.
    g = from_nir(_mlp(nir.IF(r=ones, v_threshold=ones, v_reset=0 * ones)))
    counts, _ = Simulator(g).run(x, torch.zeros(1, dtype=torch.long), 8)
    assert counts.spikes[neuron.name].tolist() == [0, 3] * 4


@pytest.mark.parametrize(
    "settings",
    [
        dataclasses.replace(NIR, reset="zero"),
        dataclasses.replace(NIR, reset="zero", v0=0.0),
        dataclasses.replace(NIR, calibrate="search+bias+potential"),
        dataclasses.replace(NIR, calibrate="bias+potential", v0=0.3),
    ],
    ids=["zero", "zero-at-rest", "subtract-potential", "subtract-potential-v0.3"],
)
def test_round_trip_of_every_reset_and_initial_membrane(settings, tmp_path):
    g = graph_of("residual")
    snn = convert(g, inputs(g.input_shape, 32), settings, batch_size=32)
    write_nir(snn, tmp_path / "m.nir")
    back = read_nir(tmp_path / "m.nir")
    neurons = [n for n in back if n.op == "if_neuron"]
    assert {n.attrs["reset"] for n in neurons} == {settings.reset}
    for a, b in zip([n for n in snn if n.op == "if_neuron"], neurons, strict=True):
        assert a.attrs["v0"] == b.attrs["v0"] or "potential" in b.params
    x = torch.as_tensor(inputs(snn.input_shape, 40, seed=5))
    y = torch.zeros(len(x), dtype=torch.long)
    a, _ = Simulator(snn).run(x, y, 12)
    b, _ = Simulator(back).run(x, y, 12)
    assert a.correct_per_step.tolist() == b.correct_per_step.tolist()
    assert [float(v.sum()) for v in a.spikes.values()] == [
        float(v.sum()) for v in b.spikes.values()
    ]


def _loop(threshold, reset, r=None, tap_membrane=False):
    """Input -> fc -> (I -> Threshold -> Scale(reset) -> I) -> out -> Output."""
    ones = np.ones(3, np.float32)
    nodes = {
        "input": nir.Input(input_type={"input": np.array([4])}),
        "fc": nir.Affine(weight=np.ones((3, 4), np.float32), bias=np.zeros(3, np.float32)),
        "mem": nir.I(r=ones if r is None else r * ones),
        "spk": nir.Threshold(threshold=threshold * ones),
        "reset": nir.Scale(scale=reset * ones),
        "out": nir.Affine(weight=np.eye(3, dtype=np.float32), bias=np.zeros(3, np.float32)),
        "output": nir.Output(output_type={"output": np.array([3])}),
    }
    edges = [("input", "fc"), ("fc", "mem"), ("mem", "spk"), ("spk", "reset")]
    edges += [("reset", "mem"), ("spk", "out"), ("out", "output")]
    if tap_membrane:
        edges.append(("mem", "out"))
    return _graph(nodes, edges)


def test_a_subtraction_loop_from_another_tool_is_one_neuron():
    # threshold 1, input 0.75 per step: v = .75, 1.5 (> 1: spike), 1.25 (spike), 1.0 (not > 1),
    # 1.75, 1.5, 1.25 (spikes), 1.0: 6 spikes in 8 steps, the rate 0.75 asks for; NIR's IF
    # (reset to 0) would fire every second step.
    g = from_nir(_loop(1.0, -1.0))
    assert [n.op for n in g] == ["linear", "if_neuron", "linear"]
    neuron = g.node("spk")
    assert neuron.attrs["reset"] == "subtract"
    x = torch.full((1, 4), 0.75 / 4)
    counts, _ = Simulator(g).run(x, torch.zeros(1, dtype=torch.long), 8)
    assert counts.spikes["spk"].tolist() == [0, 3, 3, 0, 3, 3, 3, 0]
    # r = 2 doubles the input and the reset alike: 2 * 0.75 = 1.5 against threshold 2
    g = from_nir(_loop(2.0, -1.0, r=2.0))
    np.testing.assert_allclose(g.node("spk").params["threshold"], 1.0, rtol=1e-6)
    # firing at 1 but losing 0.5 per spike: a neuron of threshold 0.5 that starts at -0.5
    g = from_nir(_loop(1.0, -0.5))
    np.testing.assert_allclose(g.node("spk").params["threshold"], 0.5)
    np.testing.assert_allclose(g.node("spk").params["potential"], -0.5, rtol=1e-6)
    counts, _ = Simulator(g).run(x, torch.zeros(1, dtype=torch.long), 6)
    # w = .75, 1.5 (> 1: spike), 1.75 (spike), 2.0 (spike), 2.25, ...: from step 2 on, each
    assert counts.spikes["spk"].tolist() == [0, 3, 3, 3, 3, 3]
    with pytest.raises(InputError, match="'reset': the reset loop adds to the membrane"):
        from_nir(_loop(1.0, 0.5))
    with pytest.raises(InputError, match="'mem'.*reaches other nodes"):
        from_nir(_loop(1.0, -1.0, tap_membrane=True))


def test_unsupported_nodes_are_named():
    ones = np.ones(3, np.float32)
    lif = nir.LIF(tau=ones, r=ones, v_leak=0 * ones, v_threshold=ones)
    with pytest.raises(InputError, match="'lif'.*leaky"):
        from_nir(_mlp(lif))
    with pytest.raises(InputError, match="'lif': Threshold is not supported"):
        from_nir(_mlp(nir.Threshold(threshold=ones)))
    with pytest.raises(InputError, match="v_reset != 0"):
        from_nir(_mlp(nir.IF(r=ones, v_threshold=ones, v_reset=ones)))
    five = np.ones(5, np.float32)
    with pytest.raises(InputError, match="'lif': v_threshold of shape"):
        from_nir(_mlp(nir.IF(r=five, v_threshold=five, v_reset=0 * five)))
    g = _mlp(nir.IF(r=ones, v_threshold=ones, v_reset=0 * ones))
    g.nodes["out"] = nir.Affine(weight=np.ones((3, 7), np.float32), bias=np.zeros(3, np.float32))
    with pytest.raises(InputError, match="'out'"):
        from_nir(g)


def test_cli_simulates_and_validates_a_nir_file(snns, tmp_path):
    snn = snns["vgg"]
    write_nir(snn, tmp_path / "m.nir")
    x = inputs(snn.input_shape, 24, seed=2)
    y = np.arange(24) % 10
    np.savez(tmp_path / "d.npz", x=x, y=y)
    data = ("--data", f"npz:{tmp_path / 'd.npz'}", "-T", "8")
    code, err = run_in_process(
        "simulate", str(tmp_path / "m.nir"), *data, "--json", str(tmp_path / "r.json")
    )
    assert code == 0, err
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["deployment"] == {"spikes": "binary", "nir_exact": True, "blockers": []}
    counts, _ = Simulator(snn).run(torch.as_tensor(x), torch.as_tensor(y), 8)
    assert report["snn_accuracy"] == pytest.approx(counts.correct_per_step[-1] / 24)
    code, err = run_in_process("validate", str(tmp_path / "m.nir"), *data, "--max-synops", "1")
    assert code == 1
    assert load_model(tmp_path / "m.nir").metadata["source_name"] == "m.nir"
    (tmp_path / "bad.nir").write_bytes(b"not hdf5")
    code, err = run_in_process("simulate", str(tmp_path / "bad.nir"), *data)
    assert code == 2 and "not a readable NIR file" in err
