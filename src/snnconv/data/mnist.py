"""``mnist:DIR`` datasets: MNIST-format IDX files (raw or .gz), e.g. MNIST or Fashion-MNIST."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from snnconv.errors import InputError

from .dataset import check_images, check_labels, missing

PREFIX = {"train": "train", "test": "t10k"}
IMAGES_MAGIC = 0x00000803  # unsigned bytes, 3 dimensions
LABELS_MAGIC = 0x00000801  # unsigned bytes, 1 dimension


def load_mnist(dir_text: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Images N×1×H×W scaled to [0, 1] and labels of ``split`` from the IDX files in a folder."""
    directory = Path(dir_text)
    images_name = f"{PREFIX[split]}-images-idx3-ubyte"
    labels_name = f"{PREFIX[split]}-labels-idx1-ubyte"
    if not directory.is_dir():
        raise InputError(
            f"MNIST-format folder {directory} {missing(directory)}; it should hold "
            f"{images_name}[.gz] and {labels_name}[.gz]"
        )
    images_path = _find(directory, images_name)
    labels_path = _find(directory, labels_name)
    x = read_idx(images_path, IMAGES_MAGIC)
    y = read_idx(labels_path, LABELS_MAGIC)
    x = check_images(x, str(images_path)) / np.float32(255.0)
    return x, check_labels(y, len(x), f"{labels_path} (for {images_path.name})")


def _find(directory: Path, name: str) -> Path:
    """The raw or gzipped file ``name`` in ``directory``."""
    for candidate in (name, name + ".gz"):
        path = directory / candidate
        if path.is_file():
            return path
    raise InputError(f"{directory}: missing {name} (or {name}.gz), an MNIST-format IDX file")


def read_idx(path: Path, magic: int) -> np.ndarray:
    """Read an unsigned-byte IDX file, checking its magic number and declared size."""
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                raw = f.read()
        else:
            raw = path.read_bytes()
    except (OSError, EOFError, zlib.error) as exc:
        raise InputError(f"{path}: cannot read the file ({exc}); re-download it") from None
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    found = int.from_bytes(raw[:4], "big") if len(raw) >= 4 else None
    if found != magic:
        shown = f"0x{found:08x}" if found is not None else "none (file shorter than 4 bytes)"
        raise InputError(
            f"{path}: corrupt IDX header: magic number {shown}, expected 0x{magic:08x}; "
            "the file is damaged or not this kind of IDX file (images vs labels)"
        )
    if len(raw) < header:
        raise InputError(f"{path}: corrupt IDX header: truncated ({len(raw)} bytes)")
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    expected = header + int(np.prod(dims))
    if len(raw) != expected:
        raise InputError(
            f"{path}: header declares shape {tuple(dims)} ({expected} bytes) but the file "
            f"has {len(raw)} bytes; the file is truncated or damaged, re-download it"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)
