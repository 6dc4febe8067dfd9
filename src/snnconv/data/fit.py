"""Checks that a dataset fits a model: image shape and label range, named in the error."""

from __future__ import annotations

import numpy as np

from snnconv.errors import InputError


def check_images(x: np.ndarray, input_shape: tuple[int, ...], data_name: str) -> None:
    """Raise ``InputError`` unless ``x`` holds images of the model's input shape."""
    if tuple(x.shape[1:]) != tuple(input_shape):
        raise InputError(
            f"{data_name}: images have shape {tuple(x.shape[1:])} but the model takes "
            f"{tuple(input_shape)} (C×H×W); give data of the model's input shape"
        )


def check_labels(y: np.ndarray, num_classes: int, data_name: str) -> None:
    """Raise ``InputError`` unless ``y`` holds integer labels below ``num_classes``."""
    bad = np.flatnonzero((y < 0) | (y >= num_classes))
    if bad.size:
        raise InputError(
            f"{data_name}: label {int(y[bad[0]])} at index {int(bad[0])} is outside the model's "
            f"{num_classes} classes (0..{num_classes - 1})"
        )
