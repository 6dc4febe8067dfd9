"""Write src/snnconv/assets/digits.npz: scikit-learn's 8x8 digits with a fixed train/test split.

The runtime package must not depend on scikit-learn, so the data ships as a bundled copy.
Images are stored as uint8 in 0..16 (the loader scales them to [0, 1]); run once, commit the file.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "src" / "snnconv" / "assets" / "digits.npz"
TEST_SIZE = 500
SEED = 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()

    digits = load_digits()
    images = digits.images.astype(np.uint8)[:, None, :, :]  # N x 1 x 8 x 8, values 0..16
    labels = digits.target.astype(np.int64)
    order = np.random.default_rng(SEED).permutation(len(labels))
    test, train = order[:TEST_SIZE], order[TEST_SIZE:]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        args.out,
        x_train=images[train],
        y_train=labels[train],
        x_test=images[test],
        y_test=labels[test],
    )
    print(f"wrote {args.out}: {len(train)} train, {len(test)} test")


if __name__ == "__main__":
    main()
