"""The in-memory dataset record and the checks every loader applies to its arrays."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from snnconv.errors import InputError


@dataclass
class Dataset:
    """Images ``x`` (float32, N×C×H×W) and integer labels ``y`` (int64, N) from spec ``name``."""

    x: np.ndarray
    y: np.ndarray
    name: str

    def __len__(self) -> int:
        return len(self.y)

    @property
    def num_classes(self) -> int:
        """Number of classes, taken as the largest label + 1."""
        return int(self.y.max()) + 1 if len(self.y) else 0

    def batches(self, batch_size: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(x, y)`` slices of at most ``batch_size`` samples, in order."""
        if batch_size < 1:
            raise InputError(f"batch size {batch_size} for dataset {self.name!r}: must be >= 1")
        for start in range(0, len(self.y), batch_size):
            yield self.x[start : start + batch_size], self.y[start : start + batch_size]


def check_images(x: np.ndarray, where: str) -> np.ndarray:
    """Return ``x`` as float32 N×C×H×W (adding C=1 to N×H×W); refuse other shapes and NaN."""
    x = np.asarray(x)
    if x.dtype.kind not in "biuf":
        raise InputError(
            f"{where}: images have dtype {x.dtype}; expected a numeric (integer or float) array"
        )
    if x.ndim == 3:
        x = x[:, None, :, :]
    if x.ndim != 4:
        raise InputError(
            f"{where}: images have shape {x.shape}; expected N×C×H×W (or N×H×W for one channel)"
        )
    if x.shape[0] == 0:
        raise InputError(f"{where}: the dataset is empty (0 images); give at least one sample")
    if min(x.shape[1:]) == 0:
        raise InputError(f"{where}: images have shape {x.shape}; C, H and W must be >= 1")
    x = x.astype(np.float32, copy=False)
    bad = np.isnan(x).reshape(len(x), -1).any(axis=1)
    if bad.any():
        raise InputError(
            f"{where}: image {int(np.argmax(bad))} contains NaN ({int(bad.sum())} image(s) "
            "in all); clean the data or drop those samples"
        )
    return x


def check_labels(y: np.ndarray, num_images: int, where: str) -> np.ndarray:
    """Return ``y`` as int64 of length ``num_images``; refuse non-integer or negative labels."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise InputError(f"{where}: labels have shape {y.shape}; expected one label per image (N,)")
    if len(y) != num_images:
        raise InputError(
            f"{where}: {len(y)} labels for {num_images} images; each image needs one label"
        )
    if y.dtype.kind == "f":
        frac = ~np.isfinite(y) | (y != np.round(y))
        if frac.any():
            i = int(np.argmax(frac))
            raise InputError(
                f"{where}: label {i} is {y[i].item()!r}, not an integer; labels must be "
                "class indices 0, 1, 2, ..."
            )
    elif y.dtype.kind not in "biu":
        raise InputError(
            f"{where}: labels have dtype {y.dtype}; expected integer class indices 0, 1, 2, ..."
        )
    y = y.astype(np.int64)
    if (y < 0).any():
        i = int(np.argmax(y < 0))
        raise InputError(
            f"{where}: label {i} is {int(y[i])}; labels must be non-negative class indices"
        )
    return y


def missing(path) -> str:
    """Why a dataset folder cannot be used: a file stands there, or nothing does."""
    return "is a file, not a folder" if path.exists() else "not found"
