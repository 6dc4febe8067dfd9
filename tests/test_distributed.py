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

    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env["PYTHONPATH"] = os.pathsep.join(
        [str(Path(__file__).parents[1] / "src"), env.get("PYTHONPATH", "")]
    )
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc-per-node",
            "2",
            "-m",
            "snnconv",
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
        ],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.count("SNN simulation") == 1  # only rank 0 prints
    two = json.loads((tmp_path / "two.json").read_text())
    expected = one.to_dict()
    for d in (two, expected):
        d.pop("throughput")
    assert two == json.loads(json.dumps(expected))
