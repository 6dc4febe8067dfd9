"""Access to files bundled with the package (the digits data, the demo model)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from snnconv.errors import InputError


def asset_path(name: str) -> Path:
    """Path of the bundled asset ``name`` (e.g. ``"digits_cnn.onnx"``) inside ``snnconv/assets``."""
    path = Path(str(resources.files("snnconv").joinpath("assets", name)))
    if not path.is_file():
        raise InputError(
            f"bundled asset {name!r} not found at {path}; reinstall snnconv "
            "(pip install -e .) so its package data is present"
        )
    return path
