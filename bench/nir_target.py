"""What `convert --target nir` costs against the default conversion: prints JSON lines.

For each model (the digits CNN, the Fashion-MNIST VGG- and ResNet-style nets of
bench/models.py) and each T, the accuracy on the test images of the default conversion
(``ConversionSettings(target_timesteps=T)``) and of the NIR target (same, ``target="nir"``),
both calibrated on the same images, one line per (model, T) as soon as it is done. The NIR
target's ANN accuracy is that of the network it approximates (relu max pools: the original).
Usage: ``python bench/nir_target.py [--models digits,vgg,resnet] [--timesteps 4,8,16,32]
[--targets snnconv,nir] [--nir-v0 0.5] [--search-passes N]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from accuracy import model_and_data  # noqa: E402

from snnconv.convert import ConversionSettings, convert  # noqa: E402
from snnconv.simulate import SimulationSettings, simulate  # noqa: E402


def measure(graph, train, test, settings: ConversionSettings, timesteps: int) -> dict:
    start = time.perf_counter()
    snn = convert(graph, train.x, settings)
    seconds = time.perf_counter() - start
    r = simulate(snn, test.x, test.y, SimulationSettings(timesteps=timesteps))
    return {
        "snn_accuracy": r.snn_accuracy,
        "ann_accuracy": r.ann_accuracy,
        "spikes_per_image": round(r.spikes_per_image, 1),
        "conversion_seconds": round(seconds, 1),
        "nir_exact": json.loads(snn.metadata["snnconv.deployment"])["nir_exact"],
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="digits,vgg,resnet")
    p.add_argument("--timesteps", default="4,8,16,32")
    p.add_argument("--limit", type=int, default=1000, help="Fashion-MNIST test images")
    p.add_argument("--calib", type=int, default=1000, help="calibration images")
    p.add_argument("--targets", default="snnconv,nir")
    p.add_argument("--nir-v0", type=float, default=0.5, help="--v0 of the NIR target")
    p.add_argument(
        "--search-passes", type=int, default=1, help="--search-passes of snnconv convert"
    )
    args = p.parse_args()
    torch.set_num_threads(1)
    for name in args.models.split(","):
        graph, train, test = model_and_data(name, args.limit, args.calib)
        for t in map(int, args.timesteps.split(",")):
            row = {"bench": "nir_target", "model": name, "timesteps": t, "images": len(test.x)}
            row["nir_v0"] = args.nir_v0
            row["search_passes"] = args.search_passes
            for target in args.targets.split(","):
                v0 = args.nir_v0 if target == "nir" else 0.5
                settings = ConversionSettings(
                    target_timesteps=t, target=target, v0=v0, search_passes=args.search_passes
                )
                row[target] = measure(graph, train, test, settings, t)
            if "snnconv" in row and "nir" in row:
                row["nir_cost_points"] = round(
                    100 * (row["snnconv"]["snn_accuracy"] - row["nir"]["snn_accuracy"]), 2
                )
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
