"""Few-timestep accuracy of threshold methods and layer-wise calibrations: one JSON line per model.

Models: the bundled digits CNN and the Fashion-MNIST VGG-style, ResNet-style and deep
VGG-16-layout (``vgg16``: 13 conv layers, four max pools) nets of bench/models.py (trained
once and cached). For each: the ANN's accuracy and the SNN's at
T = 2, 4, 8, 16, 32 for every method, the smallest of those T within 1 point of the ANN, the
conversion (calibration) time, and, for methods converted per T, synaptic operations per image.

A method is ``THRESHOLD[+CALIBRATE]`` (``--threshold`` and ``--calibrate`` of ``snnconv
convert``, e.g. ``mse+bias+potential``), prefixed ``channel/`` for per-channel thresholds and
``signed/`` or ``auto/`` for ``--neuron signed`` or ``auto`` (no prefix: ``--neuron if``; for
``auto`` the kind chosen at each T is recorded), a ``--maxpool`` mode such as ``winner/``
(no prefix: ``gate``) and ``passesN/`` for ``--search-passes N`` (no prefix: 1).
Methods that depend on T (``mse``, ``spikenorm``, any layer-wise calibration) are converted
once per T with ``target_timesteps=T``; the others (``max``, ``percentile``, no calibration)
do not depend on T, so one conversion simulated at the largest T gives every T.

Usage: ``python bench/latency.py [--models digits,vgg,resnet,vgg16] [--test-limit 500]
[--calib-limit 1000] [--calib-offset 0] [--methods mse,mse+bias] [--timesteps 4,8,16]``.
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
from snnconv.convert.maxpool import MAXPOOL_MODES  # noqa: E402
from snnconv.convert.neurons import NEURONS  # noqa: E402
from snnconv.data import Dataset  # noqa: E402
from snnconv.simulate import SimulationSettings, simulate  # noqa: E402

TIMESTEPS = (2, 4, 8, 16, 32)
METHODS = (
    "percentile:99.99",
    "spikenorm",
    "mse",
    "mse+bias",
    "mse+potential",
    "mse+bias+potential",
    "channel/mse+bias",
    "channel/mse+bias+potential",
)
#: "Within 1 point of the ANN", in percentage points.
TOLERANCE_POINTS = 1.0


def settings_for(method: str, timesteps: int) -> ConversionSettings:
    """``channel/mse+bias+potential`` -> per-channel mse thresholds, bias and potential, IF
    neurons; ``auto/mse+search+bias`` -> ``--neuron auto``, mse thresholds, search and bias."""
    prefixes, given = [], method
    while "/" in method:
        prefix, method = method.split("/", 1)
        prefixes.append(prefix)
    neurons = [p for p in prefixes if p in (*NEURONS, "auto")]
    pools = [p for p in prefixes if p in MAXPOOL_MODES]
    passes = [p for p in prefixes if p.removeprefix("passes").isdigit()]
    unknown = set(prefixes) - {"channel", *neurons, *pools, *passes}
    if unknown or len(neurons) > 1 or len(pools) > 1 or len(passes) > 1:
        raise ValueError(
            f"bad method prefixes in {given!r}: channel/, one of if/signed/auto/, one "
            f"--maxpool mode ({'/, '.join(MAXPOOL_MODES)}/) and one passesN/"
        )
    threshold, _, layerwise = method.partition("+")
    return ConversionSettings(
        threshold=threshold,
        per_channel="channel" in prefixes,
        neuron=neurons[0] if neurons else "if",
        calibrate=layerwise or "none",
        target_timesteps=timesteps,
        **({"maxpool": pools[0]} if pools else {}),
        **({"search_passes": int(passes[0].removeprefix("passes"))} if passes else {}),
    )


def depends_on_t(settings: ConversionSettings) -> bool:
    return settings.calibrate != "none" or settings.threshold in ("mse", "spikenorm")


def first(ds: Dataset, n: int) -> Dataset:
    return Dataset(ds.x[:n], ds.y[:n], ds.name)


def bench_method(graph, train, test, method: str, timesteps: tuple[int, ...]) -> dict:
    acc, seconds, synops, chosen = {}, {}, {}, {}
    if not depends_on_t(settings_for(method, max(timesteps))):
        start = time.perf_counter()
        snn = convert(graph, train.x, settings_for(method, max(timesteps)))
        seconds["all"] = round(time.perf_counter() - start, 2)
        r = simulate(snn, test.x, test.y, SimulationSettings(timesteps=max(timesteps)))
        acc = {str(t): r.accuracy_per_step[t - 1] for t in timesteps}
        return {"accuracy": acc, "calibration_seconds": seconds, "ann_accuracy": r.ann_accuracy}
    for t in timesteps:
        start = time.perf_counter()
        snn = convert(graph, train.x, settings_for(method, t))
        seconds[str(t)] = round(time.perf_counter() - start, 2)
        r = simulate(snn, test.x, test.y, SimulationSettings(timesteps=t))
        acc[str(t)] = r.snn_accuracy
        synops[str(t)] = round(r.synops_per_image)
        if "snnconv.neuron_choice" in snn.metadata:
            chosen[str(t)] = json.loads(snn.metadata["snnconv.neuron_choice"])["chosen"]
        print(f"{method} T={t}: {100 * r.snn_accuracy:.1f} %", file=sys.stderr, flush=True)
    return {
        "accuracy": acc,
        "synops_per_image": synops,
        "calibration_seconds": seconds,
        "ann_accuracy": r.ann_accuracy,
    } | ({"neuron_chosen": chosen} if chosen else {})


def smallest_t(accuracy: dict[str, float], ann_accuracy: float) -> int | None:
    """The smallest T whose accuracy is within ``TOLERANCE_POINTS`` of the ANN, or None."""
    # Rounded: 0.918 - 0.908 is 1.0000000000000009 points in floating point.
    ok = [
        int(t)
        for t, a in accuracy.items()
        if round(100 * (ann_accuracy - a), 9) <= TOLERANCE_POINTS
    ]
    return min(ok) if ok else None


def bench_model(
    name: str,
    methods: list[str],
    test_limit: int,
    calib_limit: int,
    timesteps=TIMESTEPS,
    calib_offset: int = 0,
) -> dict:
    graph, train, test = model_and_data(name, test_limit, calib_offset + calib_limit)
    train = Dataset(train.x[calib_offset:], train.y[calib_offset:], train.name)
    train, test = first(train, calib_limit), first(test, test_limit)
    out = {
        "model": name,
        "test_images": len(test.x),
        "calibration_images": len(train.x),
        "calibration_offset": calib_offset,
        "layerwise_images": min(len(train.x), ConversionSettings.calibration_images),
        "timesteps": list(timesteps),
        "methods": {},
    }
    for method in methods:
        res = bench_method(graph, train, test, method, tuple(timesteps))
        out["ann_accuracy"] = res.pop("ann_accuracy")
        res["smallest_t_within_1_point"] = smallest_t(res["accuracy"], out["ann_accuracy"])
        out["methods"][method] = res
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="digits,vgg,resnet,vgg16")
    p.add_argument("--test-limit", type=int, default=500, help="test images per model")
    p.add_argument("--calib-limit", type=int, default=1000, help="calibration images")
    p.add_argument(
        "--calib-offset", type=int, default=0, help="first training image of the calibration draw"
    )
    p.add_argument("--methods", default=",".join(METHODS), help="comma-separated")
    p.add_argument("--timesteps", default=",".join(map(str, TIMESTEPS)), help="comma-separated")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    timesteps = [int(t) for t in args.timesteps.split(",")]
    methods = args.methods.split(",")
    for m in methods:
        settings_for(m, 1).check()  # a typo fails now, not after an hour of other methods
    torch.set_num_threads(args.threads)
    for name in args.models.split(","):
        result = bench_model(
            name, methods, args.test_limit, args.calib_limit, timesteps, args.calib_offset
        )
        result.update(bench="latency", threads=args.threads, torch=torch.__version__)
        print(json.dumps(result), flush=True)  # one line per model, as soon as it is done


if __name__ == "__main__":
    main()
