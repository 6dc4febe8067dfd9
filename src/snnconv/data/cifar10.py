"""``cifar10:DIR`` datasets: the CIFAR-10 "python version" pickle batches."""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from snnconv.errors import InputError

from .dataset import check_images, check_labels, missing

BATCHES = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}
IMAGE_SIZE = 3 * 32 * 32

# Pickles can run arbitrary code on load. The batches only hold dicts, lists, bytes, str and
# ints (built by pickle opcodes, no lookup needed) and numpy arrays, so find_class allows just
# the callables numpy's array pickling uses and refuses everything else.
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),  # bytes pickled with protocol 2
}


class _RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that only reconstructs numpy arrays besides builtin containers."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(
            f"refusing to load {module}.{name}: only numpy arrays and builtin containers "
            "are allowed in CIFAR-10 batches"
        )


def load_cifar10(dir_text: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Images N×3×32×32 scaled to [0, 1] and labels of ``split`` from the batch files."""
    directory = Path(dir_text)
    names = BATCHES[split]
    if not directory.is_dir():
        raise InputError(
            f"CIFAR-10 folder {directory} {missing(directory)}; it should hold the python-version "
            f"batches {', '.join(BATCHES['train'] + BATCHES['test'])}"
        )
    absent = [n for n in names if not (directory / n).is_file()]
    if absent:
        raise InputError(
            f"{directory}: missing CIFAR-10 batch file(s) {', '.join(absent)} for the "
            f"{split} split; download the python version (cifar-10-python.tar.gz) and unpack it"
        )
    xs, ys = [], []
    for name in names:
        x, y = _read_batch(directory / name)
        xs.append(x)
        ys.append(y)
    x, y = np.concatenate(xs), np.concatenate(ys)
    return check_images(x, str(directory)) / np.float32(255.0), y


def _read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One batch file's images (N×3×32×32 uint8) and checked labels."""
    try:
        batch = _RestrictedUnpickler(io.BytesIO(path.read_bytes()), encoding="bytes").load()
    except Exception as exc:  # any failure to unpickle means a bad or hostile file
        raise InputError(f"{path}: not a readable CIFAR-10 batch ({exc})") from None
    if not isinstance(batch, dict):
        raise InputError(f"{path}: expected a pickled dict, found {type(batch).__name__}")
    data, labels = _get(batch, "data", path), _get(batch, "labels", path)
    data = np.asarray(data)
    if data.ndim != 2 or data.shape[1] != IMAGE_SIZE or data.dtype != np.uint8:
        raise InputError(
            f"{path}, array 'data': shape {data.shape} dtype {data.dtype}; expected N×{IMAGE_SIZE} "
            "uint8 (rows of 3×32×32 pixels)"
        )
    x = data.reshape(-1, 3, 32, 32)
    y = check_labels(np.asarray(labels), len(x), f"{path}, 'labels'")
    return x, y


def _get(batch: dict, key: str, path: Path) -> Any:
    """``batch[key]`` whether the pickle stored str or bytes keys."""
    for k in (key, key.encode()):
        if k in batch:
            return batch[k]
    found = ", ".join(repr(k) for k in batch) or "none"
    raise InputError(f"{path}: no {key!r} entry in the batch (found: {found})")
