"""snnconv finetune as a user meets it: a trained file the other verbs run, clear refusals."""

from __future__ import annotations

import sys
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from nets import graph_of, inputs

from snnconv.cli.main import main
from snnconv.convert import ConversionSettings, convert
from snnconv.load import load_onnx
from snnconv.ops import ann_forward
from snnconv.save import save_onnx


@pytest.fixture
def run(capsys, monkeypatch):
    """Run the ``snnconv`` entry point in-process (no torch import per call); return its exit
    code and output."""

    def call(*args: str) -> SimpleNamespace:
        monkeypatch.setattr(sys, "argv", ["snnconv", *args])
        capsys.readouterr()
        try:
            main()
            code = 0
        except SystemExit as e:
            code = e.code or 0
        out = capsys.readouterr()
        return SimpleNamespace(returncode=code, stdout=out.out, stderr=out.err)

    return call


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A converted SNN, its ANN, and npz data labelled by the ANN."""
    d = tmp_path_factory.mktemp("finetune")
    ann = graph_of("vgg").copy()
    x = inputs(ann.input_shape, 96)
    y = ann_forward(ann, torch.as_tensor(x))[0].argmax(1).numpy()
    np.savez(d / "data.npz", x=x, y=y)
    save_onnx(ann, d / "model.onnx")
    snn = convert(ann, x, ConversionSettings(neuron="if", target_timesteps=4))  # as finetune trains
    save_onnx(snn, d / "model.snn.onnx")
    return d


def test_finetune_writes_an_snn_that_simulates(run, workdir):
    d = workdir
    out = d / "ft.snn.onnx"
    r = run(
        "finetune", str(d / "model.snn.onnx"), "--data", f"npz:{d / 'data.npz'}",
        "--epochs", "2", "-T", "3", "--loss", "stochmax:0.5", "--lr", "1e-3",
        "--batch-size", "32", "-o", str(out),
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "epoch 2: loss" in r.stdout
    assert '"stochmax:0.5"' in load_onnx(out).metadata["snnconv.finetune"]
    r = run("simulate", str(out), "--data", f"npz:{d / 'data.npz'}", "-T", "4")
    assert r.returncode == 0, r.stderr


def test_existing_output_is_refused_before_any_work(run, workdir, tmp_path):
    target = tmp_path / "kept.snn.onnx"
    target.write_bytes(b"precious")
    # the data spec is bad too: the output is checked first
    r = run("finetune", str(workdir / "model.snn.onnx"), "--data", "nosuch:x", "-o", str(target))
    assert r.returncode == 2 and "--force" in r.stderr
    assert target.read_bytes() == b"precious"


@pytest.mark.parametrize(
    "model, extra, expected",
    [
        ("model.snn.onnx", ["--loss", "hinge"], "--loss"),
        ("model.snn.onnx", ["--loss", "stochmax:2"], "RHO"),
        ("model.snn.onnx", ["--lr", "0"], "--lr"),
        ("model.snn.onnx", ["--teacher-weight", "0.3"], "--teacher MODEL"),
        ("model.onnx", [], "snnconv convert"),
    ],
)
def test_bad_input_exits_2_and_writes_nothing(run, workdir, tmp_path, model, extra, expected):
    out = tmp_path / "out.snn.onnx"
    r = run("finetune", str(workdir / model), "--data", f"npz:{workdir / 'data.npz'}",
            "-o", str(out), *extra)  # fmt: skip
    assert r.returncode == 2 and expected in r.stderr and "Traceback" not in r.stderr
    assert not out.exists()


def test_data_of_the_wrong_shape_is_refused(run, workdir, tmp_path):
    bad = tmp_path / "shape.npz"
    np.savez(bad, x=inputs((3, 5, 5), 4), y=np.zeros(4, int))
    out = tmp_path / "out.snn.onnx"
    r = run("finetune", str(workdir / "model.snn.onnx"), "--data", f"npz:{bad}", "-o", str(out))
    assert r.returncode == 2 and "shape" in r.stderr and "Traceback" not in r.stderr
    assert not out.exists()


def test_finetune_with_a_teacher_records_it(run, workdir, tmp_path):
    out = tmp_path / "kd.snn.onnx"
    r = run("finetune", str(workdir / "model.snn.onnx"), "--data", f"npz:{workdir / 'data.npz'}",
            "-T", "2", "--teacher", str(workdir / "model.onnx"), "--teacher-weight", "0.7",
            "-o", str(out))  # fmt: skip
    assert r.returncode == 0, r.stderr
    record = load_onnx(out).metadata["snnconv.finetune"]
    assert '"teacher": ' in record and '"weight": 0.7' in record


@pytest.mark.parametrize(
    "teacher, extra, expected",
    [
        ("model.snn.onnx", [], "must be an ANN"),
        ("missing.onnx", [], "missing.onnx"),
        ("model.onnx", ["--teacher-weight", "2"], "--teacher-weight"),
        ("model.onnx", ["--temperature", "-1"], "--temperature"),
    ],
)
def test_a_bad_teacher_exits_2_and_writes_nothing(run, workdir, tmp_path, teacher, extra, expected):
    out = tmp_path / "out.snn.onnx"
    r = run("finetune", str(workdir / "model.snn.onnx"), "--data", f"npz:{workdir / 'data.npz'}",
            "--teacher", str(workdir / teacher), "-o", str(out), *extra)  # fmt: skip
    assert r.returncode == 2 and expected in r.stderr and "Traceback" not in r.stderr
    assert not out.exists()
