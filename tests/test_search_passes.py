"""Passes of the threshold search: each further pass searches every layer again from the last."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from cli_run import run_in_process
from nets import graph_of, inputs

from snnconv.calibrate import search
from snnconv.convert import ConversionSettings, convert, prepare_ann
from snnconv.errors import InputError
from snnconv.load import load_onnx
from snnconv.ops import ann_forward

T = 4
DIGITS_CNN = "src/snnconv/assets/digits_cnn.onnx"


def test_search_passes_below_one_are_refused():
    with pytest.raises(InputError, match="--search-passes"):
        ConversionSettings(search_passes=0).check()


def test_a_second_pass_never_worsens_the_output_error_and_records_the_combined_scale():
    ann = graph_of("vgg")
    x = inputs(ann.input_shape, 64)
    base = ConversionSettings(neuron="if", target_timesteps=T, calibrate="search")
    snns = {p: convert(ann, x, replace(base, search_passes=p)) for p in (1, 2)}
    unsearched = convert(ann, x, replace(base, calibrate="none"))
    target = ann_forward(prepare_ann(ann), torch.as_tensor(x))[0].flatten(1)
    errors = {p: search.output_error(s, x, target, T) for p, s in snns.items()}
    assert errors[2] <= errors[1]
    scales = json.loads(snns[2].metadata["snnconv.threshold_scales"])
    for n in unsearched:
        if n.op == "if_neuron":  # scales relative to the method's thresholds, both passes
            np.testing.assert_allclose(
                snns[2].node(n.name).params["threshold"],
                n.params["threshold"] * scales[n.name],
                rtol=1e-3,
            )
    assert json.loads(snns[2].metadata["snnconv.conversion"])["search_passes"] == 2


def test_cli_takes_search_passes_and_stores_them(tmp_path):
    out = tmp_path / "m.snn.onnx"
    code, err = run_in_process(
        "convert", DIGITS_CNN, "--calib-data", "digits", "--calib-limit", "128",
        "--target-timesteps", "4", "--neuron", "if", "--search-passes", "2", "-o", str(out),
    )  # fmt: skip
    assert code == 0, err
    assert json.loads(load_onnx(out).metadata["snnconv.conversion"])["search_passes"] == 2


def test_cli_refuses_search_passes_zero_and_writes_nothing(tmp_path):
    out = tmp_path / "m.snn.onnx"
    code, err = run_in_process(
        "convert", DIGITS_CNN, "--calib-data", "digits", "--search-passes", "0", "-o", str(out)
    )
    assert code == 2
    assert "--search-passes" in err and "Traceback" not in err
    assert not out.exists()
