"""The command line as a user meets it: the whole path, exit codes, clear errors, no debris."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pytest
from nets import graph_of, inputs

from snnconv.save import save_onnx


def run(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "snnconv", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """An ANN file and npz data labelled by the ANN itself (so its accuracy is 100 %)."""
    d = tmp_path_factory.mktemp("cli")
    ann = graph_of("residual")
    save_onnx(ann, d / "model.onnx")
    import torch

    from snnconv.ops import ann_forward

    x = inputs(ann.input_shape, 200)
    y = ann_forward(ann, torch.as_tensor(x))[0].argmax(1).numpy()
    np.savez(d / "data.npz", x=x, y=y)
    return d


def test_convert_simulate_validate(workdir):
    d = workdir
    r = run(
        "convert",
        str(d / "model.onnx"),
        "--calib-data",
        f"npz:{d / 'data.npz'}",
        "-o",
        str(d / "model.snn.onnx"),
    )
    assert r.returncode == 0, r.stderr
    assert (d / "model.snn.onnx").exists()

    r = run(
        "simulate",
        str(d / "model.snn.onnx"),
        "--data",
        f"npz:{d / 'data.npz'}",
        "-T",
        "64",
        "--json",
        str(d / "report.json"),
    )
    assert r.returncode == 0, r.stderr
    report = json.loads((d / "report.json").read_text())
    assert report["schema"] == "snnconv.report/1"
    assert report["timesteps"] == 64 and len(report["accuracy_per_step"]) == 64
    assert report["ann_accuracy"] == 1.0 and report["snn_accuracy"] >= 0.9
    for key in ("spikes_per_image", "synops_per_image", "ann_macs_per_image"):
        assert report[key] > 0
    assert set(report["energy"]) >= {
        "preset",
        "ann_joules_per_image",
        "snn_joules_per_image",
        "ratio",
    }
    assert {"name", "spikes_per_image", "firing_rate", "synops_per_image"} <= set(
        report["layers"][0]
    )
    assert {"images_per_s", "image_steps_per_s"} <= set(report["throughput"])

    passing = run(
        "validate",
        str(d / "model.snn.onnx"),
        "--data",
        f"npz:{d / 'data.npz'}",
        "-T",
        "64",
        "--min-accuracy",
        "0.5",
        "--json",
        str(d / "gate.json"),
    )
    assert passing.returncode == 0, passing.stderr
    gate = json.loads((d / "gate.json").read_text())
    assert gate["validation"]["passed"] is True

    failing = run(
        "validate",
        str(d / "model.snn.onnx"),
        "--data",
        f"npz:{d / 'data.npz'}",
        "-T",
        "8",
        "--max-synops",
        "1",
    )
    assert failing.returncode == 1
    assert "FAIL" in failing.stdout


def test_convert_with_spikenorm_and_potential_calibration(workdir):
    d = workdir
    out = d / "spikenorm.snn.onnx"
    data = f"npz:{d / 'data.npz'}"
    common = ("convert", str(d / "model.onnx"), "--calib-data", data, "--target-timesteps", "4")
    r = run(*common, "--threshold", "spikenorm", "--calibrate", "bias+potential", "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert "threshold spikenorm" in r.stdout and "calibration bias+potential" in r.stdout
    assert re.search(r"torch threads: \d+ \(", r.stderr)  # the count and where it came from
    from snnconv.load import load_onnx

    neurons = [n for n in load_onnx(out) if n.op == "if_neuron"]
    assert neurons and all({"bias", "potential"} <= n.params.keys() for n in neurons)


@pytest.mark.parametrize(
    ("option", "value"), [("--calibrate", "potential+spikes"), ("--threshold", "spikenorm:9")]
)
def test_bad_conversion_methods_exit_2_naming_the_option(
    workdir, monkeypatch, capsys, option, value
):
    from snnconv.cli.main import main

    target = workdir / "never.snn.onnx"
    args = ["snnconv", "convert", str(workdir / "model.onnx"), "--calib-data", "digits"]
    monkeypatch.setattr(sys, "argv", [*args, option, value, "-o", str(target)])
    with pytest.raises(SystemExit) as exit_:
        main()
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "Traceback" not in err
    assert option in err and value in err and not target.exists()


def test_existing_output_needs_force(workdir):
    d = workdir
    target = d / "kept.snn.onnx"
    target.write_bytes(b"precious")
    r = run(
        "convert", str(d / "model.onnx"), "--calib-data", f"npz:{d / 'data.npz'}", "-o", str(target)
    )
    assert r.returncode == 2
    assert "--force" in r.stderr
    assert target.read_bytes() == b"precious"


@pytest.mark.parametrize(
    "content, expected",
    [(b"\x00garbage\xff" * 50, "model.onnx"), (b"", "model.onnx")],
)
def test_broken_model_file_exits_2_without_traceback(tmp_path, content, expected):
    bad = tmp_path / "model.onnx"
    bad.write_bytes(content)
    r = run("convert", str(bad), "--calib-data", "digits", "-o", str(tmp_path / "out.snn.onnx"))
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert expected in r.stderr
    assert not (tmp_path / "out.snn.onnx").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]


def test_bad_data_gives_clear_errors(workdir, tmp_path):
    d = workdir
    run(
        "convert",
        str(d / "model.onnx"),
        "--calib-data",
        f"npz:{d / 'data.npz'}",
        "-o",
        str(tmp_path / "m.snn.onnx"),
    )
    wrong_labels = tmp_path / "labels.npz"
    np.savez(wrong_labels, x=inputs((1, 8, 8), 4), y=np.array([0, 1, 2, 42]))
    r = run("simulate", str(tmp_path / "m.snn.onnx"), "--data", f"npz:{wrong_labels}")
    assert r.returncode == 2 and "42" in r.stderr and "Traceback" not in r.stderr

    wrong_shape = tmp_path / "shape.npz"
    np.savez(wrong_shape, x=inputs((3, 5, 5), 4), y=np.zeros(4, int))
    r = run("simulate", str(tmp_path / "m.snn.onnx"), "--data", f"npz:{wrong_shape}")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "shape" in r.stderr

    r = run("simulate", str(tmp_path / "m.snn.onnx"), "--data", "nosuch:thing")
    assert r.returncode == 2 and "digits" in r.stderr


def test_simulate_refuses_an_ann(workdir):
    r = run("simulate", str(workdir / "model.onnx"), "--data", "digits")
    assert r.returncode == 2 and "snnconv convert" in r.stderr


def test_demo_runs_offline():
    r = run("demo", "-T", "16")
    assert r.returncode == 0, r.stderr
    assert "SNN accuracy at T = 16" in r.stdout
    assert re.search(r"torch threads: \d+ \(", r.stderr)


def test_help_and_version():
    r = run("--help")
    assert r.returncode == 0 and "convert" in r.stdout and "Exit codes" in r.stdout
    r = run("--version")
    assert r.returncode == 0 and "snnconv" in r.stdout
    r = run("simulate", "--help")
    assert "Example" in r.stdout


def test_threads_option_sets_torch_threads():
    import torch
    from cli_run import run_in_process

    before = torch.get_num_threads()
    try:
        code, err = run_in_process("--threads", "1", "inspect", "--help")
        assert code == 0, err
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    r = run("--threads", "0", "inspect", "--help")
    assert r.returncode == 2 and "--threads" in r.stderr
