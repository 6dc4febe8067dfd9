"""Does choosing the thresholds of a residual add's two sides jointly help? Prints JSON.

On the Fashion-MNIST ResNet-style net of bench/models.py: the default conversion (threshold
search, then bias calibration) against the same with a joint step between the two. For each
``add``, the nearest neuron layer on each side (the block's inner layer, whose spikes reach
the add through a conv, and the block input on the shortcut) gets its threshold rescaled on a
3 x 3 grid of pairs (factors 2**-1/4, 1, 2**1/4 each), keeping the pair that minimises the
SNN's output error at T, as the search does for one layer at a time. The joint step is not
part of snnconv: this measured no gain (docs/latency.md).

Usage: ``python bench/joint_residual.py [--timesteps 8] [--test-limit 1000]``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from accuracy import model_and_data  # noqa: E402

from snnconv.calibrate import layerwise  # noqa: E402
from snnconv.calibrate.search import SEARCH_IMAGES, output_error  # noqa: E402
from snnconv.convert import ConversionSettings, convert, prepare_ann  # noqa: E402
from snnconv.ops import ann_forward  # noqa: E402
from snnconv.simulate import SimulationSettings, simulate  # noqa: E402

STEP = 2**0.25


def nearest_neuron(snn, name: str):
    node = snn.node(name)
    while node.op != "if_neuron":
        node = snn.node(node.inputs[0])
    return node


def joint_step(snn, ann, x, timesteps) -> list[dict]:
    """Rescale each add's pair of source layers jointly, in order; returns what it chose."""
    xt = torch.as_tensor(x)
    target = ann_forward(ann, xt)[0].flatten(1)
    best = output_error(snn, xt, target, timesteps)
    chosen = []
    for add in [n for n in snn if n.op == "add"]:
        a, b = (nearest_neuron(snn, i) for i in add.inputs)
        base = {n.name: np.asarray(n.params["threshold"]) for n in (a, b)}
        tried = {(1.0, 1.0): best}
        for pair in itertools.product((1 / STEP, 1.0, STEP), repeat=2):
            if pair not in tried:
                for n, s in zip((a, b), pair, strict=True):
                    n.params["threshold"] = base[n.name] * np.float32(s)
                tried[pair] = output_error(snn, xt, target, timesteps)
        pair = min(tried, key=tried.get)
        for n, s in zip((a, b), pair, strict=True):
            n.params["threshold"] = base[n.name] * np.float32(s)
        best = tried[pair]
        chosen.append({"add": add.name, "sides": [a.name, b.name], "scales": pair, "error": best})
    return chosen


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--timesteps", type=int, default=8)
    p.add_argument("--test-limit", type=int, default=1000)
    p.add_argument("--calib-limit", type=int, default=1000)
    args = p.parse_args()
    torch.set_num_threads(1)
    T = args.timesteps
    graph, train, test = model_and_data("resnet", args.test_limit, args.calib_limit)
    ann = prepare_ann(graph)
    settings = ConversionSettings(neuron="if", target_timesteps=T)  # binary, as measured
    default = convert(graph, train.x, settings)
    start = time.perf_counter()
    searched = convert(
        graph, train.x, ConversionSettings(neuron="if", target_timesteps=T, calibrate="search")
    )
    chosen = joint_step(searched, ann, train.x[:SEARCH_IMAGES], T)
    joint = layerwise.calibrate_layers(
        searched, ann, train.x[: settings.calibration_images], T, ("bias",)
    )
    joint_s = time.perf_counter() - start
    sim = SimulationSettings(timesteps=T)
    report = simulate(default, test.x, test.y, sim)
    out = {
        "model": "resnet",
        "timesteps": T,
        "test_images": len(test.x),
        "ann_accuracy": report.ann_accuracy,
        "default_accuracy": report.snn_accuracy,
        "joint_accuracy": simulate(joint, test.x, test.y, sim).snn_accuracy,
        "joint_seconds": round(joint_s, 1),
        "joint_choices": chosen,
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
