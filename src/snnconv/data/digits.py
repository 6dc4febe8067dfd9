"""The bundled 8×8 digits: a copy of scikit-learn's set with a fixed train/test split."""

from __future__ import annotations

import numpy as np

from .assets import asset_path
from .dataset import check_images, check_labels

DIGITS_MAX = 16.0  # stored as uint8 0..16


def load_digits(split: str) -> tuple[np.ndarray, np.ndarray]:
    """Images N×1×8×8 scaled to [0, 1] and labels for ``split`` ('train' or 'test')."""
    path = asset_path("digits.npz")
    with np.load(path) as data:
        x, y = data[f"x_{split}"], data[f"y_{split}"]
    where = f"{path} ({split})"
    x = check_images(x, where) / np.float32(DIGITS_MAX)
    return x, check_labels(y, len(x), where)
