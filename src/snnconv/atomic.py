"""Atomic file writes: a result is either fully written or not there at all.

Every output snnconv writes (models, JSON reports, plots) goes through here: the bytes land in
a temporary file beside the target, are flushed to disk, then renamed over it. An interrupted
run (Ctrl-C, kill, a full disk) leaves the previous file intact and no partial file behind.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from snnconv.errors import InputError


def check_writable(path: str | Path, *, force: bool) -> Path:
    """Refuse an existing output unless ``force``; refuse a missing folder. Call before work."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"output {path} is a directory; give a file path")
    if path.exists() and not force:
        raise InputError(f"output {path} exists; pass --force to overwrite it")
    if not path.parent.exists():
        raise InputError(f"output folder {path.parent} does not exist")
    return path


def write_atomic(path: str | Path, data: bytes, *, force: bool = False) -> None:
    """Write ``data`` to ``path`` atomically; an existing file needs ``force``."""
    path = check_writable(path, force=force)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
