"""Accuracy vs timesteps for each threshold method: prints one JSON line per model.

Models: the bundled digits CNN, and the Fashion-MNIST VGG-style and ResNet-style nets of
bench/models.py (trained once and cached). For each: the ANN's accuracy and the SNN's accuracy
at T = 1, 2, 4, 8, 16, 32, 64 for

* ``max``, ``percentile:99.9``, ``percentile:99.99``: thresholds alone, binary IF neurons;
  they do not depend on T, so one simulation at T = 64 gives every T (the anytime curve);
* ``mse``: thresholds fitted to the rate error at T, binary IF neurons, converted once per T;
* ``default``: what ``snnconv convert`` does by default (``ConversionSettings()`` for the
  target T: mse thresholds, threshold search, bias calibration, ``--neuron auto``), converted
  once per T. (docs/accuracy-bench.json predates the search and the neuron choice: its
  ``default`` is mse thresholds and bias calibration.)

T-dependent methods at T = 64 reuse the conversion for T = 32 (``target_timesteps`` says so),
to keep the run short. Usage: ``python bench/accuracy.py [--models digits,vgg,resnet]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from models import FASHION_MNIST, train_or_load  # noqa: E402

from snnconv.convert import ConversionSettings, convert  # noqa: E402
from snnconv.data import asset_path, load_dataset  # noqa: E402
from snnconv.load import load_onnx  # noqa: E402
from snnconv.simulate import SimulationSettings, simulate  # noqa: E402

TIMESTEPS = (1, 2, 4, 8, 16, 32, 64)
FIXED = ("max", "percentile:99.9", "percentile:99.99")
LONGEST_TARGET = 32


def model_and_data(name: str, limit: int, calib: int):
    if name == "digits":
        graph = load_onnx(asset_path("digits_cnn.onnx"))
        return graph, load_dataset("digits", split="train"), load_dataset("digits")
    graph = load_onnx(train_or_load(name, threads=1))
    train = load_dataset(FASHION_MNIST, split="train", limit=calib)
    return graph, train, load_dataset(FASHION_MNIST, limit=limit)


def run(graph, train, test, settings: ConversionSettings, timesteps: int) -> dict:
    start = time.perf_counter()
    snn = convert(graph, train.x, settings)
    calib_s = time.perf_counter() - start
    r = simulate(snn, test.x, test.y, SimulationSettings(timesteps=timesteps))
    return {"report": r, "calibration_seconds": round(calib_s, 2)}


def bench_model(name: str, limit: int, calib: int) -> dict:
    graph, train, test = model_and_data(name, limit, calib)
    out = {
        "model": name,
        "test_images": len(test.x),
        "calibration_images": len(train.x),
        "methods": {},
    }
    for method in FIXED:
        res = run(
            graph,
            train,
            test,
            ConversionSettings(threshold=method, calibrate="none", neuron="if"),
            max(TIMESTEPS),
        )
        r = res["report"]
        out["ann_accuracy"] = r.ann_accuracy
        out["methods"][method] = {
            "accuracy": {str(t): r.accuracy_per_step[t - 1] for t in TIMESTEPS},
            "calibration_seconds": res["calibration_seconds"],
        }
    for method in ("mse", "default"):
        acc, target, seconds = {}, {}, {}
        for t in TIMESTEPS:
            tt = min(t, LONGEST_TARGET)
            settings = ConversionSettings(target_timesteps=tt)
            if method == "mse":
                settings = replace(settings, calibrate="none", neuron="if")
            res = run(graph, train, test, settings, t)
            acc[str(t)] = res["report"].snn_accuracy
            target[str(t)] = tt
            seconds[str(t)] = res["calibration_seconds"]
        out["methods"][method] = {
            "accuracy": acc,
            "target_timesteps": target,
            "calibration_seconds": seconds,
        }
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="digits,vgg,resnet")
    p.add_argument("--limit", type=int, default=1000, help="Fashion-MNIST test images")
    p.add_argument("--calib", type=int, default=1000, help="calibration images")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    for name in args.models.split(","):
        result = bench_model(name, args.limit, args.calib)
        result.update(bench="accuracy", threads=args.threads, torch=torch.__version__)
        print(json.dumps(result), flush=True)  # one line per model, as soon as it is done


if __name__ == "__main__":
    main()
