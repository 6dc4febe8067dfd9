"""simulate under torchrun: sharded over processes, the same report as one process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from nets import graph_of, inputs

from snnconv.convert import ConversionSettings, convert
from snnconv.ops import ann_forward
from snnconv.save import save_onnx
from snnconv.simulate import SimulationSettings, simulate
from snnconv.simulate.distributed import World


def test_shards_are_contiguous_and_cover_everything():
    parts = [World(r, 3, r).shard(10) for r in range(3)]
    assert [(p.start, p.stop) for p in parts] == [(0, 3), (3, 6), (6, 10)]
    assert [World(r, 4, r).shard(2) for r in range(4)][0] == slice(0, 0)


def _torchrun(tmp_path: Path, *args: str, processes: int = 2) -> subprocess.CompletedProcess:
    """``snnconv ARGS`` under torchrun on CPU, ``processes`` ranks."""
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env["PYTHONPATH"] = os.pathsep.join(
        [str(Path(__file__).parents[1] / "src"), env.get("PYTHONPATH", "")]
    )
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(processes)]
    return subprocess.run(
        [*command, "-m", "snnconv", *args],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
        cwd=tmp_path,
    )


def _snn_and_data(tmp_path: Path, images: int):
    """A converted net saved as m.snn.onnx, and d.npz with ``images`` images (a third of them
    labelled unlike the ANN, so accuracies are not trivially 1)."""
    ann = graph_of("residual")
    x = inputs(ann.input_shape, images)
    y = ann_forward(ann, torch.as_tensor(x))[0].argmax(1).numpy()
    y[::3] = (y[::3] + 1) % 10
    snn = convert(ann, x, ConversionSettings(threshold="max", calibrate="none", neuron="if"))
    save_onnx(snn, tmp_path / "m.snn.onnx")
    np.savez(tmp_path / "d.npz", x=x, y=y)
    return snn, x, y


def test_a_rank_without_images_reports_the_whole_set(tmp_path):
    snn, x, y = _snn_and_data(tmp_path, 1)  # rank 0's shard is empty, rank 1 has the image
    one = simulate(
        snn, x, y, SimulationSettings(timesteps=4), data_name=f"npz:{tmp_path / 'd.npz'}"
    )
    r = _torchrun(
        tmp_path,
        "simulate",
        "m.snn.onnx",
        "--data",
        f"npz:{tmp_path / 'd.npz'}",
        "-T",
        "4",
        "--json",
        "two.json",
    )
    assert r.returncode == 0, r.stderr[-3000:]
    two = json.loads((tmp_path / "two.json").read_text())
    expected = one.to_dict()
    for d in (two, expected):
        d.pop("throughput")
    assert two["images"] == 1
    assert two == json.loads(json.dumps(expected))


def test_validate_under_torchrun_prints_and_writes_once(tmp_path):
    _snn_and_data(tmp_path, 9)
    r = _torchrun(
        tmp_path,
        "validate",
        "m.snn.onnx",
        "--data",
        f"npz:{tmp_path / 'd.npz'}",
        "-T",
        "4",
        "--max-synops",
        "1e12",
        "--json",
        "gate.json",
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.count("Validation") == 1 and r.stdout.count("PASS") == 1
    gate = json.loads((tmp_path / "gate.json").read_text())
    assert gate["images"] == 9 and gate["validation"]["passed"] is True

    failing = _torchrun(
        tmp_path,
        "validate",
        "m.snn.onnx",
        "--data",
        f"npz:{tmp_path / 'd.npz'}",
        "-T",
        "4",
        "--max-synops",
        "1",
    )
    assert failing.returncode != 0 and failing.stdout.count("a limit is crossed") == 1


def test_two_processes_report_what_one_does(tmp_path):
    ann = graph_of("vgg")
    x = inputs(ann.input_shape, 37)  # odd: shards of 18 and 19 images
    y = ann_forward(ann, torch.as_tensor(x))[0].argmax(1).numpy()
    y[::3] = (y[::3] + 1) % 10
    snn = convert(ann, x, ConversionSettings(calibrate="none"))
    save_onnx(snn, tmp_path / "m.snn.onnx")
    np.savez(tmp_path / "d.npz", x=x, y=y)
    one = simulate(
        snn, x, y, SimulationSettings(timesteps=6), data_name=f"npz:{tmp_path / 'd.npz'}"
    )

    r = _torchrun(
        tmp_path,
        "simulate",
        str(tmp_path / "m.snn.onnx"),
        "--data",
        f"npz:{tmp_path / 'd.npz'}",
        "-T",
        "6",
        "--batch-size",
        "8",
        "--json",
        str(tmp_path / "two.json"),
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.count("SNN simulation") == 1  # only rank 0 prints
    two = json.loads((tmp_path / "two.json").read_text())
    expected = one.to_dict()
    for d in (two, expected):
        d.pop("throughput")
    assert two == json.loads(json.dumps(expected))
