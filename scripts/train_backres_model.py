"""Train the bundled BackRes example (a small CNN whose middle block runs 3 times with shared
weights) on the bundled 8×8 digits and export it.

The result, ``src/snnconv/assets/digits_backres.onnx``, exports as three unrolled copies of
the block reading the same weights; ``snnconv`` loads it back as one ``backres`` node
(``snnconv inspect`` shows physical vs logical depth). Trains in well under a minute.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from torch import nn
from train_demo_model import train_and_export  # same folder

from snnconv.nn import BackRes

ASSETS = Path(__file__).resolve().parents[1] / "src" / "snnconv" / "assets"
DEFAULT_OUT = ASSETS / "digits_backres.onnx"
REPEATS = 3


def build_model(repeats: int = REPEATS) -> nn.Module:
    """conv(16) → BackRes[conv(16)-BN-ReLU] ×R (mode add) → avgpool 2 → linear(10)."""
    block = nn.Sequential(
        nn.Conv2d(16, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU()
    )
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1, bias=False),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        BackRes(block, repeats=repeats, mode="add"),
        nn.AvgPool2d(2),
        nn.Flatten(),
        nn.Linear(16 * 4 * 4, 10),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where to write the .onnx")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--lr", type=float, default=3e-3)
    args = parser.parse_args()
    train_and_export(build_model, args.out, args.epochs, args.lr, threads=1)


if __name__ == "__main__":
    main()
