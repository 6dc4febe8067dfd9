"""Model loading: ONNX files and native PyTorch models become an snnconv ``Graph``."""

from __future__ import annotations

from pathlib import Path

from snnconv.errors import InputError
from snnconv.graph import Graph
from snnconv.load.onnx_loader import load_onnx
from snnconv.load.torch_input import load_torch
from snnconv.load.verify import Verification

__all__ = ["Verification", "load_model", "load_onnx", "load_torch"]

_TORCHSCRIPT = {".pt", ".pth", ".ts"}


def load_model(path: str | Path, **kw) -> Graph:
    """Load a model file by its suffix: ``.onnx``, ``.pt2`` (torch.export) or TorchScript.

    Keyword arguments go to ``load_onnx`` (``verify``) or ``load_torch`` (``input_shape``,
    ``trust_pickle``, ``verify``).
    """
    suffix = Path(path).suffix.lower()
    if suffix == ".onnx":
        return load_onnx(path, **kw)
    if suffix == ".pt2" or suffix in _TORCHSCRIPT:
        return load_torch(path, **kw)
    raise InputError(
        f"{path}: unknown model format {suffix!r}; expected .onnx, .pt2 (torch.export), "
        ".pt/.pth/.ts (TorchScript), or a 'module:factory' PyTorch model"
    )
