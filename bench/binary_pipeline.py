"""Binary-IF SNNs made by chains of snnconv commands, as a user runs them: one JSON line per
chain.

Each chain starts from a Fashion-MNIST bench net of bench/models.py and runs ``snnconv
prepare`` / ``convert`` / ``finetune`` in turn, each in a fresh process at one torch thread,
then ``snnconv simulate`` of the last SNN up to the chain's T on the first ``--test-limit``
test images. The line gives the chain's commands, the CPU seconds of each (user time of the
child process), the original ANN's accuracy on the same images and the SNN's at each T.

Usage: ``python bench/binary_pipeline.py --chains vgg-defaults,...``
``[--test-limit N] [--out DIR]``; ``--list`` prints the chains.
"""

from __future__ import annotations

import argparse
import json
import resource
import shlex
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from models import FASHION_MNIST, onnx_accuracy, train_or_load  # noqa: E402

from snnconv.data import load_dataset  # noqa: E402

TRAIN, TEST = f"{FASHION_MNIST}:train", f"{FASHION_MNIST}:test"

# Data options each verb gets: training images (the first 1,000 for calibration).
DATA = {
    "prepare": ["--data", TRAIN],
    "convert": ["--calib-data", TRAIN, "--calib-limit", "1000"],
    "finetune": ["--data", TRAIN],
}
SUFFIX = {"prepare": ".prepared.onnx", "convert": ".snn.onnx", "finetune": ".ft.snn.onnx"}

# A chain: the bench net, its steps (an snnconv verb and its options; the input is the
# previous step's output) and the T to simulate the result up to (the anytime curve gives the
# accuracy at every T before it). The settings the defaults replaced are spelt out; ``{ann}``
# in a step stands for the original ANN's file (a teacher to distil from).
CONSTANT = "--lr 1e-4 --lr-schedule constant"
CHAINS: dict[str, tuple[str, list[str], int]] = {
    "vgg-defaults": ("vgg", ["prepare", "convert", "finetune --epochs 2 -T 4 --teacher {ann}"], 8),
    "resnet-defaults": (
        "resnet",
        ["prepare", "convert", "finetune --epochs 2 -T 4 --teacher {ann}"],
        8,
    ),
    # The defaults chains before prepare's lr was 4e-3 and finetune had a teacher.
    "vgg-prepare-1e-3": ("vgg", ["prepare --lr 1e-3", "convert", "finetune --epochs 2 -T 4"], 8),
    "resnet-prepare-1e-3": (
        "resnet",
        ["prepare --lr 1e-3", "convert", "finetune --epochs 2 -T 4"],
        8,
    ),
    "resnet-prepare-constant": (
        "resnet",
        [
            "prepare --lr 1e-3 --lr-schedule constant",
            "convert",
            f"finetune --epochs 2 -T 4 {CONSTANT}",
        ],
        8,
    ),
    "vgg16-if-finetune": (
        "vgg16",
        [
            "convert --neuron if --per-channel --search-passes 2 --target-timesteps 8",
            "finetune -T 8",
        ],
        16,
    ),
    "vgg16-prepare1-finetune": (
        "vgg16",
        [
            f"prepare --epochs 1 {CONSTANT}",
            "convert --target-timesteps 8",
            f"finetune --limit 20000 -T 8 {CONSTANT}",
        ],
        16,
    ),
}


def _snnconv(args: list[str]) -> float:
    """Run ``snnconv ARGS`` at one thread; the child's CPU seconds (user)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime
    subprocess.run(
        [sys.executable, "-m", "snnconv", "--threads", "1", *args],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime - before, 1)


def run_chain(name: str, out: Path, test_limit: int) -> dict:
    net, steps, timesteps = CHAINS[name]
    ann_path = train_or_load(net)
    model = str(ann_path)
    commands, seconds = [], []
    for i, step in enumerate(steps):
        verb, *options = shlex.split(step.format(ann=ann_path))
        target = str(out / f"{name}.{i}{SUFFIX[verb]}")
        args = [verb, model, *DATA[verb], *options, "-o", target, "--force"]
        seconds.append(_snnconv(args))
        commands.append("snnconv " + " ".join(args))
        model = target
    report = out / f"{name}.json"
    _snnconv(["simulate", model, "--data", TEST, "--limit", str(test_limit), "-T",
              str(timesteps), "--json", str(report), "--force"])  # fmt: skip
    curve = json.loads(report.read_text())["accuracy_per_step"]
    accuracy = {f"T{t}": round(curve[t - 1], 4) for t in (1, 2, 4, 8, 16) if t <= timesteps}
    ann = onnx_accuracy(ann_path, load_dataset(TEST, limit=test_limit))
    return {
        "bench": "binary_pipeline",
        "chain": name,
        "net": net,
        "commands": commands,
        "cpu_seconds": seconds,
        "test_images": test_limit,
        "ann_accuracy": ann,
        "snn_accuracy": accuracy,
        "drop_points": {t: round(100 * (ann - a), 2) for t, a in accuracy.items()},
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--chains", default=",".join(CHAINS))
    p.add_argument("--test-limit", type=int, default=10000)
    p.add_argument("--out", type=Path, default=Path("out/binary_pipeline"))
    p.add_argument("--list", action="store_true")
    a = p.parse_args()
    if a.list:
        for name, (net, steps, timesteps) in CHAINS.items():
            print(name, net, " → ".join(steps), "T ≤", timesteps)
        return
    a.out.mkdir(parents=True, exist_ok=True)
    for name in a.chains.split(","):
        if name not in CHAINS:
            sys.exit(f"unknown chain {name!r}; --list shows them")
        print(json.dumps(run_chain(name, a.out, a.test_limit)), flush=True)


if __name__ == "__main__":
    main()
