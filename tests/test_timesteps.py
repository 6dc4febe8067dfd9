"""simulate and validate run at the T the model was converted for unless -T says otherwise."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from cli_run import run_in_process
from nets import graph_of, inputs

from snnconv.convert import ConversionSettings, convert
from snnconv.evaluation import DEFAULT_TIMESTEPS, choose_timesteps, target_timesteps
from snnconv.ops import ann_forward
from snnconv.save import save_onnx


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """An SNN converted for T = 6, and npz data labelled by its ANN."""
    d = tmp_path_factory.mktemp("timesteps")
    ann = graph_of("residual")
    x = inputs(ann.input_shape, 12)
    y = ann_forward(ann, torch.as_tensor(x))[0].argmax(1).numpy()
    np.savez(d / "d.npz", x=x, y=y)
    settings = ConversionSettings(
        threshold="max", calibrate="none", neuron="if", target_timesteps=6
    )
    snn = convert(ann, x, settings)
    save_onnx(snn, d / "m.snn.onnx")
    return d, snn


def test_target_timesteps_come_from_the_conversion_metadata(converted):
    _, snn = converted
    assert target_timesteps(snn) == 6
    assert choose_timesteps(snn, None) == (6, None)
    assert choose_timesteps(snn, 6) == (6, None)
    T, warning = choose_timesteps(snn, 16)
    assert T == 16 and "converted for T = 6" in warning
    bare = dataclasses.replace(snn, metadata={})
    assert target_timesteps(bare) == DEFAULT_TIMESTEPS == 32
    assert choose_timesteps(bare, 8) == (8, None)  # nothing recorded: nothing to warn about


@pytest.mark.parametrize("verb", ["simulate", "validate"])
def test_verbs_default_to_the_target_and_warn_on_another(converted, tmp_path, verb):
    d, _ = converted
    limits = ["--max-synops", "1e12"] if verb == "validate" else []
    common = [verb, str(d / "m.snn.onnx"), "--data", f"npz:{d / 'd.npz'}", *limits]
    code, err = run_in_process(*common, "--json", str(tmp_path / "a.json"))
    assert code == 0, err
    assert json.loads((tmp_path / "a.json").read_text())["timesteps"] == 6
    assert "warning" not in err
    code, err = run_in_process(*common, "-T", "3", "--json", str(tmp_path / "b.json"))
    assert code == 0, err
    assert json.loads((tmp_path / "b.json").read_text())["timesteps"] == 3
    assert "warning" in err and "converted for T = 6" in " ".join(err.split())
