"""Latency before and after fine-tuning, cross-entropy vs stochmax, on the Fashion-MNIST VGG.

Latency is the figure of merit: the smallest T at which the SNN reaches 99 % of its ANN's
accuracy (searched over 1..64 from one T = 64 simulation's anytime curve; null if never).
The SNN is converted for T = 4, fine-tuned at T = 4 for one epoch on a few thousand training
images with each loss (same seed, data and settings), and evaluated with the engine on test
images. Prints one JSON object. ``python bench/finetune.py --help`` for the knobs.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from models import FASHION_MNIST, train_or_load  # noqa: E402

from snnconv.convert import ConversionSettings, convert  # noqa: E402
from snnconv.data import load_dataset  # noqa: E402
from snnconv.finetune import FinetuneSettings, finetune, parse_loss  # noqa: E402
from snnconv.load import load_onnx  # noqa: E402
from snnconv.simulate import SimulationSettings, simulate  # noqa: E402

SEARCH_T = 64


def latency(curve: list[float], ann_accuracy: float, fraction: float = 0.99) -> int | None:
    """Smallest T (1-based) whose accuracy reaches ``fraction`` of the ANN's."""
    hits = np.flatnonzero(np.asarray(curve) >= fraction * ann_accuracy)
    return int(hits[0]) + 1 if hits.size else None


def measure(snn, test, batch_size: int, ann_accuracy: float | None = None) -> dict:
    """Anytime accuracy of ``snn`` and its latency against ``ann_accuracy`` (the original
    ANN's: after fine-tuning, the SNN's own ANN twin has other weights and another accuracy)."""
    r = simulate(snn, test.x, test.y, SimulationSettings(timesteps=SEARCH_T, batch_size=batch_size))
    curve = r.accuracy_per_step
    reference = r.ann_accuracy if ann_accuracy is None else ann_accuracy
    return {
        "ann_accuracy": reference,
        "twin_ann_accuracy": r.ann_accuracy,
        "latency_T": latency(curve, reference),
        "latency_T_at_97pct": latency(curve, reference, 0.97),
        **{f"accuracy_T{t}": curve[t - 1] for t in (2, 4, 8, 16, SEARCH_T)},
        "accuracy_per_step": [round(a, 4) for a in curve],
    }


def _progress(name: str, part: dict) -> dict:
    """Each part on stderr as it completes, so a long run shows its progress."""
    print(name, json.dumps(part), file=sys.stderr, flush=True)
    return part


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--cache-dir", type=Path, default=Path("out/models"))
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--train-images", type=int, default=3000)
    p.add_argument("--test-images", type=int, default=1000)
    p.add_argument("--timesteps", type=int, default=4, help="conversion and fine-tuning T")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument(
        "--lr-schedule", default="constant", help="constant: what docs/techniques.md measured"
    )
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--losses", default="ce,stochmax:0.5")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    ann = load_onnx(train_or_load("vgg", args.cache_dir, args.threads))
    train = load_dataset(FASHION_MNIST, split="train", limit=args.train_images)
    test = load_dataset(FASHION_MNIST, split="test", limit=args.test_images)
    t = time.perf_counter()
    snn = convert(
        ann, train.x[:1000], ConversionSettings(neuron="if", target_timesteps=args.timesteps)
    )
    result = {
        "model": "vgg (bench/models.py)",
        "data": FASHION_MNIST,
        "train_images": len(train.x),
        "test_images": len(test.x),
        "finetune_timesteps": args.timesteps,
        "epochs": args.epochs,
        "lr": args.lr,
        "lr_schedule": args.lr_schedule,
        "batch_size": args.batch_size,
        "seed": args.seed,
        "threads": args.threads,
        "convert_seconds": round(time.perf_counter() - t, 1),
    }
    result["before"] = _progress("before", measure(snn, test, 250))
    for name in args.losses.split(","):
        settings = FinetuneSettings(
            epochs=args.epochs,
            timesteps=args.timesteps,
            loss=parse_loss(name),
            lr=args.lr,
            lr_schedule=args.lr_schedule,
            batch_size=args.batch_size,
            seed=args.seed,
        )
        t = time.perf_counter()
        trained, history = finetune(snn, train.x, train.y, settings)
        seconds = time.perf_counter() - t
        result[f"after_{name}"] = _progress(
            f"after_{name}",
            {
                **measure(trained, test, 250, result["before"]["ann_accuracy"]),
                "train_loss": history.loss,
                "train_accuracy": history.accuracy,
                "finetune_seconds": round(seconds, 1),
            },
        )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
