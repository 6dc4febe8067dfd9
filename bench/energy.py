"""Every energy model on one bench net: the Fashion-MNIST VGG-style net of bench/models.py,
converted as ``snnconv convert`` does by default for T = 4, 8, 16 and 32 and simulated once
per T; each model's SNN/ANN ratio and break-even firing rate is read off the same counts
(``snnconv.simulate.energy.estimate``), with NeuroBench's metrics. Prints one JSON document.

Usage: ``python bench/energy.py [--model vgg] [--limit 1000] [--calib 1000]``.
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
from snnconv.simulate.energy import MODELS, estimate  # noqa: E402

TIMESTEPS = (4, 8, 16, 32)


def at_timesteps(graph, train, test, T: int) -> dict:
    start = time.process_time()
    snn = convert(graph, train.x, ConversionSettings(target_timesteps=T))
    convert_s = time.process_time() - start
    r = simulate(snn, test.x, test.y, SimulationSettings(timesteps=T))
    models = {}
    for name in MODELS:
        e = estimate(name, r)
        models[name] = {
            "ann_joules_per_image": e.ann_joules_per_image,
            "snn_joules_per_image": e.snn_joules_per_image,
            "ratio": e.ratio,
            "break_even_firing_rate": e.break_even_firing_rate,
            "layers": e.layers,
        }
    return {
        "timesteps": T,
        "ann_accuracy": r.ann_accuracy,
        "snn_accuracy": r.snn_accuracy,
        "firing_rate": estimate("memory-45nm", r).firing_rate,
        "spikes_per_image": r.spikes_per_image,
        "synops_per_image": r.synops_per_image,
        "snn_macs_per_image": r.snn_macs_per_image,
        "neuron_updates_per_image": sum(x.neuron_updates_per_image or 0 for x in r.layers),
        "event_driven_updates_per_image": sum(
            x.event_driven_updates_per_image or 0 for x in r.layers
        ),
        "neurobench": r.neurobench,
        "models": models,
        "convert_cpu_seconds": round(convert_s, 1),
        "simulate_seconds": round(r.throughput.seconds, 1),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="vgg")
    p.add_argument("--limit", type=int, default=1000, help="Fashion-MNIST test images")
    p.add_argument("--calib", type=int, default=1000, help="calibration images")
    args = p.parse_args()
    torch.set_num_threads(1)
    graph, train, test = model_and_data(args.model, args.limit, args.calib)
    rows = [at_timesteps(graph, train, test, T) for T in TIMESTEPS]
    print(
        json.dumps(
            {
                "bench": "energy",
                "model": args.model,
                "test_images": len(test.x),
                "calibration_images": len(train.x),
                "models": {
                    n: {"summary": m.summary, "source": m.source} for n, m in MODELS.items()
                },
                "rows": rows,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
