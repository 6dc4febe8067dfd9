"""The hybrid sweep: one row per boundary position, from all-spiking to all-ANN."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from cli_run import run_in_process
from nets import graph_of, inputs

from snnconv.convert import ConversionSettings, convert
from snnconv.data import Dataset
from snnconv.errors import InputError
from snnconv.ops import ann_forward
from snnconv.save import save_onnx
from snnconv.simulate import SimulationSettings, simulate
from snnconv.simulate.sweep import ALL_SPIKING, hybrid_sweep


@pytest.fixture(scope="module")
def net():
    ann = graph_of("residual")
    x = inputs(ann.input_shape, 10)
    y = ann_forward(ann, torch.as_tensor(x))[0].argmax(1).numpy()
    snn = convert(ann, x, ConversionSettings(threshold="max", calibrate="none", neuron="if"))
    return snn, Dataset(x=x, y=y, name="test")


def test_sweep_runs_from_all_spiking_to_all_ann(net):
    snn, ds = net
    settings = SimulationSettings(timesteps=4)
    seen: dict[str, int] = {}
    sweep = hybrid_sweep(
        snn, ds, settings, progress=lambda stage, done, total: seen.update({stage: done})
    )
    rows = sweep["rows"]
    assert sweep["schema"] == "snnconv.sweep/1" and sweep["timesteps"] == 4
    assert rows[0]["after"] == ALL_SPIKING and rows[-1]["after"] == snn.input_name
    assert len(rows) >= 3
    plain = simulate(snn, ds.x, ds.y, settings)
    assert rows[0]["snn_accuracy"] == plain.snn_accuracy and rows[0]["ann_layers"] == 0
    assert rows[-1]["snn_accuracy"] == sweep["ann_accuracy"] == 1.0  # all ANN: the ANN itself
    assert rows[-1]["spikes_per_image"] == 0
    assert [r["ann_layers"] for r in rows] == sorted(r["ann_layers"] for r in rows)
    assert set(seen) == {r["after"] for r in rows} and set(seen.values()) == {10}


def test_sweep_refuses_a_hybrid_net(net):
    from snnconv.convert.hybrid import cut_points, make_hybrid

    snn, ds = net
    hybrid = make_hybrid(snn, cut_points(snn)[-1], "rate")
    with pytest.raises(InputError, match="plain SNN"):
        hybrid_sweep(hybrid, ds, SimulationSettings(timesteps=2))


def test_cli_sweep_writes_the_rows(net, tmp_path):
    snn, ds = net
    save_onnx(snn, tmp_path / "m.snn.onnx")
    np.savez(tmp_path / "d.npz", x=ds.x, y=ds.y)
    args = ["simulate", str(tmp_path / "m.snn.onnx"), "--data", f"npz:{tmp_path / 'd.npz'}"]
    out = tmp_path / "s.json"
    code, err = run_in_process(*args, "-T", "4", "--sweep-hybrid", "--json", str(out))
    assert code == 0, err
    sweep = json.loads(out.read_text())
    assert sweep["rows"] == hybrid_sweep(snn, ds, SimulationSettings(timesteps=4))["rows"]
    code, err = run_in_process(*args, "--sweep-hybrid", "--html", str(tmp_path / "r.html"))
    assert code == 2 and "leave them out of a sweep" in err
