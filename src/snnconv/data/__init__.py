"""Datasets from specs: ``digits`` (bundled), ``npz:PATH``, ``mnist:DIR``, ``cifar10:DIR``
(:data:`SCHEMES`).

Every loader returns float32 N×C×H×W images in [0, 1] (before ``normalize``) and int64 labels,
and refuses malformed data with an :class:`~snnconv.errors.InputError` that names the file.
"""

from __future__ import annotations

import numpy as np

from snnconv.errors import InputError

from .assets import asset_path
from .dataset import Dataset
from .schemes import FORMS, SCHEMES
from .specs import SPLITS, check_normalize, parse_normalize, parse_spec

__all__ = [
    "FORMS",
    "SCHEMES",
    "SPLITS",
    "Dataset",
    "asset_path",
    "load_dataset",
    "parse_normalize",
]


def load_dataset(
    spec: str,
    *,
    split: str = "test",
    normalize: str | tuple[float, float] | None = None,
    limit: int | None = None,
) -> Dataset:
    """Load the dataset ``spec`` names (see :data:`SCHEMES`).

    ``split`` picks 'train' or 'test' where the format has both; a ``:train``/``:test``
    suffix on the spec overrides it. ``limit`` keeps the first N samples; ``normalize``
    ``(mean, std)`` (or ``"MEAN,STD"``, as ``--normalize`` takes it) then applies
    ``(x - mean) / std``.
    """
    parsed = parse_spec(spec, split)
    if limit is not None and limit < 1:
        raise InputError(f"limit {limit} for dataset {spec!r}: must be >= 1 (or omitted for all)")
    if isinstance(normalize, str):
        normalize = parse_normalize(normalize)
    if normalize is not None:
        check_normalize(normalize)
    x, y = SCHEMES[parsed.scheme].load(parsed.arg, parsed.split)
    if limit is not None:
        x, y = x[:limit], y[:limit]
    if len(x) == 0:
        raise InputError(f"dataset {spec!r} holds no images")
    x = np.ascontiguousarray(x, dtype=np.float32)
    if normalize is not None:
        mean, std = normalize
        x = (x - np.float32(mean)) / np.float32(std)
    return Dataset(x=x, y=y, name=spec)
