"""Max-pool gate rules: ``max_count`` (the default) keeps the gate's spike count at its
window's largest at every step; ``winner`` (the former gate) stays what saved files hold."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from nets import graph_of, inputs

from snnconv.convert import ConversionSettings, convert
from snnconv.errors import InputError
from snnconv.graph import Graph, Node
from snnconv.load import load_onnx
from snnconv.save import save_onnx
from snnconv.simulate import Simulator

POOL = {"kernel": (2, 2), "stride": (2, 2), "padding": (0, 0, 0, 0), "dilation": (1, 1)}


def _gated(rule: str | None, marks: dict, padding=(0, 0, 0, 0), ceil_mode=False) -> Graph:
    """input (2, 6, 6) -> 1x1 conv -> IF -> 2x2 gate -> linear output."""
    rng = np.random.default_rng(0)
    pool = {**POOL, "padding": padding, "ceil_mode": ceil_mode}
    if rule is not None:
        pool["rule"] = rule
    conv_attrs = {"stride": (1, 1), "padding": (0, 0, 0, 0), "dilation": (1, 1), "groups": 1}
    weight = rng.standard_normal((3, 2, 1, 1)).astype(np.float32)
    theta = np.full(3, 0.7, np.float32)
    out_hw = 4 if ceil_mode or any(padding) else 3
    nodes = [
        Node("conv", "conv", ["x"], conv_attrs, {"weight": weight, "bias": np.zeros(3, "f4")}),
        Node(
            "if",
            "if_neuron",
            ["conv"],
            {"reset": "subtract", "v0": 0.5} | marks,
            {"threshold": theta},
        ),
        Node("gate", "maxpool_gate", ["if"], pool),
        Node("flat", "flatten", ["gate"]),
        Node(
            "fc",
            "linear",
            ["flat"],
            {},
            {"weight": np.ones((2, 3 * out_hw * out_hw), "f4"), "bias": np.zeros(2, "f4")},
        ),
    ]
    return Graph(nodes, "x", (2, 6, 6), "fc", {})


def _counts(rec: torch.Tensor, steps: int) -> torch.Tensor:
    return rec.view((steps, -1) + tuple(rec.shape[1:])).cumsum(0)


@pytest.mark.parametrize("marks", [{}, {"signed": 1}], ids=["binary", "signed"])
@pytest.mark.parametrize("chunk", [None, 3])
def test_max_count_gate_counts_the_window_maximum_at_every_step(marks, chunk):
    snn = _gated("max_count", marks)
    x = torch.as_tensor(
        np.random.default_rng(1).normal(0.3, 1.0, (16, 2, 6, 6)), dtype=torch.float32
    )
    steps = 10
    _, rec = Simulator(snn).run(
        x, torch.zeros(16, dtype=torch.long), steps, chunk=chunk, record=["if", "gate"]
    )
    inputs_so_far = _counts(rec["if"], steps)
    gate_so_far = _counts(rec["gate"], steps)
    expected = torch.nn.functional.max_pool2d(inputs_so_far.flatten(0, 1), 2).view(
        gate_so_far.shape
    )
    assert torch.equal(gate_so_far, expected)
    values = set(rec["gate"].unique().tolist())
    assert values <= ({-1.0, 0.0, 1.0} if marks else {0.0, 1.0})
    assert 1.0 in values


def test_max_count_gate_handles_padded_and_partial_windows():
    snn = _gated("max_count", {}, padding=(1, 1, 1, 1))
    x = torch.rand(4, 2, 6, 6)
    _, rec = Simulator(snn).run(x, torch.zeros(4, dtype=torch.long), 6, record=["if", "gate"])
    pooled = torch.nn.functional.max_pool2d(
        torch.nn.functional.pad(_counts(rec["if"], 6).flatten(0, 1), (1, 1, 1, 1), value=-1), 2
    )
    assert torch.equal(_counts(rec["gate"], 6).flatten(0, 1), pooled)


def test_winner_gate_passes_one_inputs_spikes():
    snn = _gated("winner", {})
    x = torch.rand(8, 2, 6, 6)
    _, rec = Simulator(snn).run(x, torch.zeros(8, dtype=torch.long), 8, record=["if", "gate"])
    spikes = rec["if"].view(8, 8, 3, 3, 2, 3, 2)  # steps, batch, C, rows, 2, cols, 2
    chosen = rec["gate"].view(8, 8, 3, 3, 3)
    window_any = spikes.amax(dim=(4, 6))
    assert torch.all(chosen <= window_any)


def test_default_conversion_uses_max_count_and_winner_is_the_former_gate(tmp_path):
    ann = graph_of("vgg")
    x = inputs(ann.input_shape, 32)
    gates = lambda g: [n.attrs.get("rule") for n in g if n.op == "maxpool_gate"]
    default = convert(ann, x, ConversionSettings(calibrate="none", neuron="if"))
    assert set(gates(default)) == {"max_count"}
    former = convert(ann, x, ConversionSettings(calibrate="none", neuron="if", maxpool="winner"))
    assert set(gates(former)) == {"winner"}
    save_onnx(default, tmp_path / "m.snn.onnx")
    assert set(gates(load_onnx(tmp_path / "m.snn.onnx"))) == {"max_count"}


def test_a_gate_saved_without_a_rule_simulates_as_winner(tmp_path):
    x = torch.rand(8, 2, 6, 6)
    y = torch.zeros(8, dtype=torch.long)
    save_onnx(_gated(None, {}), tmp_path / "old.snn.onnx")
    old = load_onnx(tmp_path / "old.snn.onnx")
    assert "rule" not in old.node("gate").attrs
    _, a = Simulator(old).run(x, y, 8, record=["gate"])
    _, b = Simulator(_gated("winner", {})).run(x, y, 8, record=["gate"])
    assert torch.equal(a["gate"], b["gate"])


def test_unknown_gate_rule_is_refused():
    with pytest.raises(InputError, match="unknown rule 'loudest'"):
        Simulator(_gated("loudest", {})).run(
            torch.rand(2, 2, 6, 6), torch.zeros(2, dtype=torch.long), 4
        )
