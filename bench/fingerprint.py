"""What a conversion and a simulation produce, exactly: one JSON object, to diff before and
after a change that must not alter results.

For each model (the bundled digits CNN, the Fashion-MNIST nets of bench/models.py) and each T,
it converts with the default settings (``ConversionSettings(target_timesteps=T)``), saves the
SNN under ``--snn-dir`` and simulates it; it records the conversion time, a SHA-256 of every
parameter of the SNN, and the accuracies, spikes and synops per layer. ``--simulate-only``
re-simulates SNNs saved by an earlier run instead of converting, which checks the engine alone.

Usage: ``python bench/fingerprint.py --snn-dir out/fp [--models digits,vgg,resnet]
[--timesteps 8,32] [--simulate-only] > fp.json``; then ``diff`` two outputs (``--no-times``
leaves out the timings so that identical results give identical files).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from accuracy import model_and_data  # noqa: E402

from snnconv.convert import ConversionSettings, convert  # noqa: E402
from snnconv.load import load_model  # noqa: E402
from snnconv.save import save_onnx  # noqa: E402
from snnconv.simulate import SimulationSettings, simulate  # noqa: E402


def param_digests(snn) -> dict[str, str]:
    """SHA-256 of each parameter array (name/param), over its float32 bytes."""
    out = {}
    for node in snn:
        for key, value in sorted(node.params.items()):
            data = np.ascontiguousarray(np.asarray(value, np.float32)).tobytes()
            out[f"{node.name}/{key}"] = hashlib.sha256(data).hexdigest()[:16]
        for body in node.attrs.get("body", []) if node.op == "backres" else []:
            for key, value in sorted(body.params.items()):
                data = np.ascontiguousarray(np.asarray(value, np.float32)).tobytes()
                out[f"{node.name}/{body.name}/{key}"] = hashlib.sha256(data).hexdigest()[:16]
    return out


def fingerprint(name: str, timesteps: int, args) -> dict:
    ann, train, test = model_and_data(name, args.test_limit, args.calib_limit)
    path = args.snn_dir / f"{name}-T{timesteps}.snn.onnx"
    row: dict = {"model": name, "timesteps": timesteps}
    if args.simulate_only:
        snn = load_model(str(path))
    else:
        start = time.perf_counter()
        snn = convert(ann, train.x, ConversionSettings(target_timesteps=timesteps))
        row["convert_seconds"] = round(time.perf_counter() - start, 2)
        save_onnx(snn, path, force=True)
    row["params"] = param_digests(snn)
    report = simulate(snn, test.x, test.y, SimulationSettings(timesteps=timesteps))
    row["ann_accuracy"] = report.ann_accuracy
    row["snn_accuracy"] = report.snn_accuracy
    row["accuracy_per_step"] = report.accuracy_per_step
    row["layers"] = {
        layer.name: [layer.spikes_per_image, layer.synops_per_image] for layer in report.layers
    }
    row["simulate_seconds"] = round(report.throughput.seconds, 2)
    if args.no_times:
        row.pop("convert_seconds", None)
        row.pop("simulate_seconds", None)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="digits,vgg,resnet")
    parser.add_argument("--timesteps", default="8,32")
    parser.add_argument("--test-limit", type=int, default=1000)
    parser.add_argument("--calib-limit", type=int, default=1000)
    parser.add_argument("--snn-dir", type=Path, required=True)
    parser.add_argument("--simulate-only", action="store_true")
    parser.add_argument("--no-times", action="store_true")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    args.snn_dir.mkdir(parents=True, exist_ok=True)
    rows = [
        fingerprint(name, int(t), args)
        for name in args.models.split(",")
        for t in args.timesteps.split(",")
    ]
    print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
