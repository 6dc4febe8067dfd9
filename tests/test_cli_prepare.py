"""snnconv prepare as a user meets it: a prepared ANN file the other verbs take, clear
refusals, nothing half written."""

from __future__ import annotations

import json

import numpy as np
import pytest
from cli_run import run_in_process

from snnconv.convert import ConversionSettings, convert
from snnconv.data import asset_path, load_dataset
from snnconv.load import load_onnx
from snnconv.save import save_onnx

pytest.importorskip("nir")
QUICK = ConversionSettings(threshold="qcfs", neuron="if", calibrate="none")


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    d = tmp_path_factory.mktemp("prepare")
    out = d / "digits.prepared.onnx"
    code, err = run_in_process(
        "--threads", "1", "prepare", str(asset_path("digits_cnn.onnx")), "--data", "digits",
        "--limit", "256", "--levels", "4", "--epochs", "1", "--lr", "1e-3", "--seed", "3",
        "-o", str(out),
    )  # fmt: skip
    assert code == 0, err
    return d, out


def test_prepare_writes_a_prepared_ann_that_records_lambda_and_l(prepared):
    _, out = prepared
    g = load_onnx(out)  # checked against onnxruntime on load
    assert g.metadata["verify_ok"] == "true"
    assert {n.attrs["levels"] for n in g if n.op == "qcfs"} == {4}
    meta = json.loads(g.metadata["snnconv.prepare"])
    assert meta["levels"] == 4 and meta["epochs"] == 1 and meta["images"] == 256
    assert meta["seed"] == 3


def test_convert_defaults_for_a_prepared_model_and_nir_paths(prepared):
    d, out = prepared
    snn = d / "digits.snn.onnx"
    code, err = run_in_process(
        "--threads", "1", "convert", str(out), "--calib-data", "digits", "--calib-limit", "128",
        "-o", str(snn),
    )  # fmt: skip
    assert code == 0, err
    assert "--threshold qcfs" in err and "--neuron if" in err
    conversion = json.loads(load_onnx(snn).metadata["snnconv.conversion"])
    assert conversion["threshold"] == "qcfs" and conversion["neuron"] == "if"
    assert conversion["target_timesteps"] == 4
    # options given win over the prepared defaults
    code, err = run_in_process(
        "--threads", "1", "convert", str(out), "--calib-data", "digits", "--calib-limit", "128",
        "--calibrate", "none", "--target-timesteps", "8", "--target", "nir",
        "-o", str(d / "digits.nir.snn.onnx"),
    )  # fmt: skip
    assert code == 0, err
    conversion = json.loads(load_onnx(d / "digits.nir.snn.onnx").metadata["snnconv.conversion"])
    assert conversion["calibrate"] == "none" and conversion["target_timesteps"] == 8
    # NIR's own nodes express reset by subtraction and the initial membrane: the target keeps them
    assert conversion["threshold"] == "qcfs" and conversion["neuron"] == "if"
    assert conversion["reset"] == "subtract"
    deployment = json.loads(load_onnx(d / "digits.nir.snn.onnx").metadata["snnconv.deployment"])
    assert deployment["nir_exact"] is True and deployment["blockers"] == []
    code, err = run_in_process(
        "export", str(d / "digits.nir.snn.onnx"), "--format", "nir", "-o", str(d / "d.nir")
    )
    assert code == 0, err
    assert (d / "d.nir").exists()


def test_prepare_refuses_overwrite_an_snn_and_a_prepared_model(prepared, tmp_path):
    d, out = prepared
    before = out.read_bytes()
    args = ["prepare", str(asset_path("digits_cnn.onnx")), "--data", "digits", "--limit", "32"]
    code, err = run_in_process(*args, "-o", str(out))
    assert code == 2 and "--force" in err and out.read_bytes() == before
    code, err = run_in_process(
        "prepare", str(out), "--data", "digits", "-o", str(tmp_path / "a.onnx")
    )
    assert code == 2 and "already prepared" in err and not (tmp_path / "a.onnx").exists()
    snn = tmp_path / "digits.snn.onnx"
    save_onnx(convert(load_onnx(out), load_dataset("digits", limit=32).x, QUICK), snn)
    code, err = run_in_process(
        "prepare", str(snn), "--data", "digits", "-o", str(tmp_path / "b.onnx")
    )
    assert code == 2 and not (tmp_path / "b.onnx").exists()
    code, err = run_in_process(*args, "--levels", "0", "-o", str(tmp_path / "c.onnx"))
    assert code == 2 and not (tmp_path / "c.onnx").exists()


TORCH_MODULE = """
import torch
from torch import nn


def make():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(48, 5)
    )
"""


def test_prepare_takes_a_native_pytorch_model(tmp_path, monkeypatch):
    (tmp_path / "prep_net.py").write_text(TORCH_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", x=rng.random((64, 1, 8, 8), dtype=np.float32),
             y=rng.integers(0, 5, 64))  # fmt: skip
    out = tmp_path / "p.onnx"
    code, err = run_in_process(
        "--threads", "1", "prepare", "--torch", "prep_net:make", "--input-shape", "1,8,8",
        "--data", f"npz:{tmp_path / 'd.npz'}", "--levels", "2", "-o", str(out),
    )  # fmt: skip
    assert code == 0, err
    assert [n.op for n in load_onnx(out)].count("qcfs") == 1


def test_a_run_that_diverges_is_flagged(tmp_path):
    base = ["--threads", "1", "prepare", str(asset_path("digits_cnn.onnx")), "--data", "digits",
            "--limit", "256", "--epochs", "2"]  # fmt: skip
    code, err = run_in_process(*base, "--lr", "50", "-o", str(tmp_path / "bad.onnx"))
    assert code == 0 and "diverged" in err and "lower --lr" in err
    code, err = run_in_process(*base, "--lr", "1e-3", "-o", str(tmp_path / "good.onnx"))
    assert code == 0 and "diverged" not in err
