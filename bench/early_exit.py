"""Early exit against the full run: accuracy, mean steps and simulation wall time.

The Fashion-MNIST VGG-style net of bench/models.py, converted for T = 8 (the cached
out/vgg_t8.snn.onnx of docs/techniques.md, else converted here the same way), run at T = 32 on
test images, in full and with early exit after K stable steps. Every configuration is timed
in the same process, in turn, each repeat (engine time: ``Simulator.run`` over all images in
batches), so load on a shared machine hits all alike; the medians are printed, one JSON line
per configuration, with the speed-up over the full run next to the step saving T / mean steps.

Usage: python bench/early_exit.py [--images 256] [--stable 8,12,16] [--chunks auto,1,4]
       [--timesteps 32] [--batch-size 64] [--repeats 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

from snnconv.convert import ConversionSettings, convert
from snnconv.data import load_dataset
from snnconv.load import load_onnx
from snnconv.simulate import Counts, Simulator

DATA = "mnist:/usr/share/datasets/fashion-mnist"
CACHED = Path("out/vgg_t8.snn.onnx")


def snn_for_t8():
    if CACHED.exists():
        return load_onnx(CACHED)
    sys.path.insert(0, str(Path(__file__).parent))
    from models import train_or_load

    ann = load_onnx(train_or_load("vgg", threads=1))
    calib = load_dataset(DATA, split="train", limit=1000)
    # as the cached file was made (before threshold search became the default)
    return convert(
        ann, calib.x, ConversionSettings(neuron="if", target_timesteps=8, calibrate="bias")
    )


def run_all(sim, x, y, T, batch, chunk, stable) -> tuple[float, Counts]:
    """Simulate every image; the wall time and the merged counts."""
    total = None
    t = time.perf_counter()
    for start in range(0, len(x), batch):
        counts, _ = sim.run(
            x[start : start + batch], y[start : start + batch], T, chunk=chunk,
            exit_when_stable=stable,
        )  # fmt: skip
        if total is None:
            total = counts
        else:
            total.merge(counts)
    return time.perf_counter() - t, total


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=256)
    p.add_argument("--stable", default="8,12,16")
    p.add_argument("--chunks", default="auto,1,4")
    p.add_argument("--timesteps", type=int, default=32)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    T, batch = args.timesteps, args.batch_size
    sim = Simulator(snn_for_t8())
    test = load_dataset(DATA, split="test", limit=args.images)
    x, y = torch.as_tensor(test.x), torch.as_tensor(test.y)
    auto = sim.auto_chunk(batch, T)
    chunks = [auto if c == "auto" else int(c) for c in args.chunks.split(",")]
    configs = [(None, auto)] + [
        (int(k), c) for k in args.stable.split(",") for c in dict.fromkeys(chunks)
    ]
    run_all(sim, x[:batch], y[:batch], 2, batch, None, None)  # warm up
    times: dict = {c: [] for c in configs}
    counts: dict = {}
    for _ in range(args.repeats):
        for stable, chunk in configs:
            seconds, counts[stable, chunk] = run_all(sim, x, y, T, batch, chunk, stable)
            times[stable, chunk].append(seconds)
    full = statistics.median(times[None, auto])
    for (stable, chunk), secs in times.items():
        c = counts[stable, chunk]
        mean_steps = T if c.stop is None else float(c.stop.mean())
        print(
            json.dumps(
                {
                    "images": c.images,
                    "timesteps": T,
                    "exit_when_stable": stable,
                    "batch": batch,
                    "chunk": chunk,
                    "threads": torch.get_num_threads(),
                    "accuracy": c.correct_per_step[-1] / c.images,
                    "mean_steps": round(mean_steps, 3),
                    "seconds": round(statistics.median(secs), 3),
                    "speedup": round(full / statistics.median(secs), 3),
                    "step_saving": round(T / mean_steps, 3),
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
