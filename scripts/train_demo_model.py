"""Train the embedded demo model (a small residual CNN on the bundled 8×8 digits) and export it.

The result, ``src/snnconv/assets/digits_cnn.onnx``, is what ``snnconv demo`` and the tests
convert: small, deterministic, with BatchNormalization nodes kept (the converter folds them)
and a residual ``Add`` so the conversion of skip connections is exercised.
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from torch import nn

from snnconv.data import load_dataset

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "src" / "snnconv" / "assets" / "digits_cnn.onnx"
SEED = 0


def conv_bn(cin: int, cout: int) -> list[nn.Module]:
    """A 3×3 same-padding convolution followed by batch norm."""
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout)]


class ResidualBlock(nn.Module):
    """Two conv-BN layers whose output is added to the block input, then ReLU."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            *conv_bn(channels, channels), nn.ReLU(), *conv_bn(channels, channels)
        )
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.body(x) + x)


def build_model() -> nn.Module:
    """conv(16) → residual block(16) → avgpool 2 → conv(32) → global avg pool → linear(10)."""
    return nn.Sequential(
        *conv_bn(1, 16),
        nn.ReLU(),
        ResidualBlock(16),
        nn.AvgPool2d(2),
        *conv_bn(16, 32),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(32, 10),
    )


def train(model: nn.Module, x: np.ndarray, y: np.ndarray, epochs: int, lr: float) -> None:
    """Adam on shuffled mini-batches (seeded shuffles)."""
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    gen = torch.Generator().manual_seed(SEED)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(yt), generator=gen).split(64):
            opt.zero_grad()
            loss_fn(model(xt[idx]), yt[idx]).backward()
            opt.step()
        sched.step()


def accuracy(logits: np.ndarray, y: np.ndarray) -> float:
    """Fraction of argmax predictions equal to the labels."""
    return float((logits.argmax(axis=1) == y).mean())


def export(model: nn.Module, out: Path) -> None:
    """ONNX opset 17 with a dynamic batch axis; TrainingMode.PRESERVE keeps BN nodes unfused."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        # The legacy exporter is deprecated, and it warns about constant folding under
        # PRESERVE even though the model is in eval mode (so no parameter is mutated).
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*constant folding.*", category=UserWarning)
        _export(model, out)


def _export(model: nn.Module, out: Path) -> None:
    torch.onnx.export(
        model.eval(),
        (torch.zeros(1, 1, 8, 8),),
        str(out),
        dynamo=False,
        opset_version=17,
        input_names=["image"],
        output_names=["logits"],
        dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}},
        do_constant_folding=True,
        training=torch.onnx.TrainingMode.PRESERVE,
    )


def train_and_export(build, out: Path, epochs: int, lr: float, threads: int) -> None:
    """Train ``build()`` on the digits train split, seeded, export it and report its test
    accuracy in torch and in onnxruntime (shared by the demo and BackRes example scripts)."""
    torch.set_num_threads(threads)
    torch.manual_seed(SEED)
    torch.use_deterministic_algorithms(True)
    train_set, test_set = load_dataset("digits:train"), load_dataset("digits:test")
    model = build()
    start = time.perf_counter()
    train(model, train_set.x, train_set.y, epochs, lr)
    seconds = time.perf_counter() - start
    with torch.no_grad():
        torch_acc = accuracy(model.eval()(torch.from_numpy(test_set.x)).numpy(), test_set.y)
    print(f"trained {epochs} epochs in {seconds:.1f} s; torch test accuracy {torch_acc:.2%}")

    export(model, out)
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    (logits,) = session.run(["logits"], {"image": test_set.x})
    print(f"wrote {out} ({out.stat().st_size / 1024:.1f} KiB)")
    print(f"onnxruntime test accuracy on digits test split: {accuracy(logits, test_set.y):.2%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where to write the .onnx")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--lr", type=float, default=3e-3)
    args = parser.parse_args()
    train_and_export(build_model, args.out, args.epochs, args.lr, threads=2)


if __name__ == "__main__":
    main()
