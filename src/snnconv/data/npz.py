"""``npz:PATH`` datasets: arrays ``x`` (N×C×H×W or N×H×W) and ``y`` (N integer labels)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from snnconv.errors import InputError

from .dataset import check_images, check_labels


def load_npz(path_text: str) -> tuple[np.ndarray, np.ndarray]:
    """Images (float32, as stored) and labels from an ``.npz`` holding arrays ``x`` and ``y``."""
    path = Path(path_text)
    if not path.is_file():
        raise InputError(
            f"npz dataset file {path} {'is a folder' if path.is_dir() else 'not found'}; "
            "expected an .npz holding arrays 'x' "
            "(N×C×H×W) and 'y' (N labels)"
        )
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in ("x", "y") if k not in data.files]
            if missing:
                raise InputError(
                    f"{path}: missing array(s) {', '.join(missing)} (found: "
                    f"{', '.join(data.files) or 'none'}); save with np.savez(path, x=..., y=...)"
                )
            x, y = data["x"], data["y"]
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        if isinstance(exc, InputError):
            raise
        raise InputError(f"{path}: not a readable .npz file ({exc})") from None
    x = check_images(x, f"{path}, array 'x'")
    return x, check_labels(y, len(x), f"{path}, array 'y'")
