"""BackRes vs plain nets on Fashion-MNIST: parameters, ANN and SNN accuracy, synops, energy.

Three small nets, each conv(16)-BN-ReLU → avgpool 2 → [middle] → avgpool 2 → linear(10):
``backres`` (middle: one conv(16)-BN-ReLU block run R times, mode add), ``plain_logical``
(R distinct conv-BN-ReLU layers: the same logical depth) and ``plain_physical`` (one such
layer: the same physical depth). Each trains 1 epoch (seeded) and is cached as ONNX in
--cache-dir. Each converts once with default settings (target T = 32; thresholds on 1024
training images) and simulates once for T = 64 on the first --images test images; accuracy,
synops and energy at T = 4, 8, 16, 32, 64 are read off that one run (per-step counts).
Prints JSON. Run: ``python bench/backres.py``. On a shared, loaded 2-core machine it took 29
minutes wall (training 6, then conversion with layer-wise bias calibration and simulation);
cached models skip training, and --images / --calib-images cut the rest.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from models import FASHION_MNIST, SEED, export_onnx, onnx_accuracy, train
from torch import nn

from snnconv.convert import ConversionSettings, convert
from snnconv.data import load_dataset
from snnconv.graph import SYNAPTIC_OPS, all_nodes, unroll
from snnconv.load import load_onnx
from snnconv.ops import ann_forward, macs
from snnconv.simulate import Simulator
from snnconv.simulate.counts import Counts
from snnconv.simulate.energy import PRESETS

REPEATS = 4
TIMESTEPS = (4, 8, 16, 32, 64)
ENERGY = "45nm-fp32"


def _layer() -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(16, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU())


def build(name: str) -> nn.Module:
    from snnconv.nn import BackRes

    middle = {
        "backres": lambda: [BackRes(_layer(), repeats=REPEATS, mode="add")],
        "plain_logical": lambda: [_layer() for _ in range(REPEATS)],
        "plain_physical": lambda: [_layer()],
    }[name]()
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1, bias=False),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.AvgPool2d(2),
        *middle,
        nn.AvgPool2d(2),
        nn.Flatten(),
        nn.Linear(16 * 7 * 7, 10),
    )


def train_or_load(name: str, cache_dir: Path, epochs: int) -> tuple[Path, dict]:
    path = cache_dir / f"backres_{name}.onnx"
    record_path = path.with_suffix(".json")
    if path.is_file() and record_path.is_file():
        return path, json.loads(record_path.read_text())
    torch.manual_seed(SEED)
    model = build(name)
    train_set = load_dataset(FASHION_MNIST, split="train")
    start = time.perf_counter()
    train(model, train_set, epochs)
    seconds = time.perf_counter() - start
    tmp = path.with_suffix(".onnx.tmp")
    export_onnx(model, tmp, train_set.x.shape[1:])
    record = {
        "epochs": epochs,
        "train_seconds": round(seconds, 1),
        "onnx_test_accuracy": onnx_accuracy(tmp, load_dataset(FASHION_MNIST, split="test")),
    }
    record_path.write_text(json.dumps(record, indent=2) + "\n")
    tmp.replace(path)
    return path, record


def evaluate(path: Path, calib: np.ndarray, x: np.ndarray, y: np.ndarray, batch: int) -> dict:
    ann = load_onnx(path)
    start = time.perf_counter()
    snn = convert(ann, calib, ConversionSettings(neuron="if"))
    convert_seconds = time.perf_counter() - start
    sim = Simulator(snn)
    total = Counts(max(TIMESTEPS))
    ann_correct = 0
    start = time.perf_counter()
    for i in range(0, len(x), batch):
        xb, yb = torch.as_tensor(x[i : i + batch]), torch.as_tensor(y[i : i + batch])
        counts, _ = sim.run(xb, yb, max(TIMESTEPS))
        total.merge(counts)
        ann_correct += int((ann_forward(ann, xb)[0].argmax(1) == yb).sum())
    sim_seconds = time.perf_counter() - start
    preset = PRESETS[ENERGY]
    synops_per_step = sum(total.synops.values()) / len(x)
    snn_macs = sum(total.snn_macs.values()) / len(x)  # analog input layer, once per image
    ann_macs = float(sum(macs(ann).values()))
    per_t = {}
    for t in TIMESTEPS:
        synops = float(synops_per_step[:t].sum())
        per_t[str(t)] = {
            "snn_accuracy": float(total.correct_per_step[t - 1] / len(x)),
            "synops_per_image": synops,
            "snn_joules_per_image": synops * preset.ac_joules + snn_macs * preset.mac_joules,
        }
    return {
        "params": ann.param_count(),
        "params_unrolled": int(sum(p.size for n in unroll(ann).nodes for p in n.params.values())),
        "physical_depth": sum(n.op in SYNAPTIC_OPS for n in all_nodes(ann.nodes)),
        "logical_depth": sum(n.op in SYNAPTIC_OPS for n in unroll(ann).nodes),
        "ann_accuracy": ann_correct / len(x),
        "ann_macs_per_image": ann_macs,
        "ann_joules_per_image": ann_macs * preset.mac_joules,
        "snn_macs_per_image": snn_macs,
        "per_timesteps": per_t,
        "convert_seconds": round(convert_seconds, 1),
        "simulate_seconds": round(sim_seconds, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cache-dir", type=Path, default=Path("out/models"))
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--images", type=int, default=1000, help="test images simulated")
    parser.add_argument("--calib-images", type=int, default=1024)
    parser.add_argument("--batch-size", type=int, default=250)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    args.cache_dir.mkdir(parents=True, exist_ok=True)
    train_set = load_dataset(FASHION_MNIST, split="train")
    test_set = load_dataset(FASHION_MNIST, split="test")
    calib = train_set.x[: args.calib_images]
    x, y = test_set.x[: args.images], test_set.y[: args.images]
    results = {}
    for name in ("backres", "plain_logical", "plain_physical"):
        path, record = train_or_load(name, args.cache_dir, args.epochs)
        results[name] = {**record, **evaluate(path, calib, x, y, args.batch_size)}
    out = {
        "dataset": FASHION_MNIST,
        "test_images": len(x),
        "calibration_images": len(calib),
        "repeats": REPEATS,
        "conversion": "ConversionSettings(neuron='if'): binary IF, otherwise the defaults "
        "(target T = 32); one T = 64 run, read at each T",
        "energy_preset": ENERGY,
        "threads": args.threads,
        "models": results,
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
