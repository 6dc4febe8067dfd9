"""What the threshold search's optional savings cost in accuracy, and save in time.

For each model and T it converts with the defaults (``ConversionSettings(target_timesteps=T)``:
neuron auto, mse, search+bias) under each variant of the search, then simulates the first
test images at T. Variants: ``full`` (every candidate, judged at the output: the defaults),
``early`` (early stop), ``window:W`` (candidates judged W neuron layers on) and combinations
``early+window:W``. Prints JSON: per model, T and variant, the conversion time per stage, the
SNN's accuracy, the chosen scales and the neuron kind.

Usage: ``python bench/search_savings.py [--models vgg,resnet] [--timesteps 8,16]
[--variants full,early,window:2] [--calib-limit 1000] [--test-limit 1000]``
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

from snnconv.calibrate import search  # noqa: E402
from snnconv.convert import ConversionSettings, convert  # noqa: E402
from snnconv.simulate import SimulationSettings, simulate  # noqa: E402


def set_variant(variant: str) -> None:
    search.EARLY_STOP, search.WINDOW = False, None
    for part in variant.split("+"):
        if part == "early":
            search.EARLY_STOP = True
        elif part.startswith("window:"):
            search.WINDOW = int(part.split(":")[1])
        elif part != "full":
            raise SystemExit(f"unknown variant {part!r}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="vgg,resnet")
    p.add_argument("--timesteps", default="8,16")
    p.add_argument("--variants", default="full,early,window:2,early+window:2")
    p.add_argument("--calib-limit", type=int, default=1000)
    p.add_argument("--test-limit", type=int, default=1000)
    args = p.parse_args()
    torch.set_num_threads(1)
    rows = []
    for name in args.models.split(","):
        ann, train, test = model_and_data(name, args.test_limit, args.calib_limit)
        for t in map(int, args.timesteps.split(",")):
            for variant in args.variants.split(","):
                set_variant(variant)
                start = time.perf_counter()
                snn = convert(ann, train.x, ConversionSettings(target_timesteps=t))
                seconds = time.perf_counter() - start
                r = simulate(snn, test.x, test.y, SimulationSettings(timesteps=t))
                row = {
                    "model": name,
                    "timesteps": t,
                    "variant": variant,
                    "convert_seconds": round(seconds, 2),
                    "stage_seconds": json.loads(snn.metadata["snnconv.stage_seconds"]),
                    "snn_accuracy": r.snn_accuracy,
                    "ann_accuracy": r.ann_accuracy,
                    "neuron": json.loads(snn.metadata["snnconv.neuron_choice"])["chosen"],
                    "scales": json.loads(snn.metadata["snnconv.threshold_scales"]),
                }
                rows.append(row)
                print(json.dumps(row), file=sys.stderr, flush=True)
    print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
