"""Model loading: ONNX files and native PyTorch models become an snnconv ``Graph``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from snnconv.errors import InputError
from snnconv.graph import Graph
from snnconv.load.onnx_loader import load_onnx
from snnconv.load.torch_input import load_torch
from snnconv.load.verify import Verification

__all__ = [
    "Verification",
    "load_input_model",
    "load_model",
    "load_onnx",
    "load_snn",
    "load_torch",
]

_TORCHSCRIPT = {".pt", ".pth", ".ts"}


def load_model(
    path: str | Path,
    *,
    verify: bool = True,
    input_shape: Sequence[int] | None = None,
    weights: str | Path | None = None,
    trust_pickle: bool = False,
) -> Graph:
    """Load a model by its suffix: ``.onnx``, ``.nir`` (an SNN), ``.pt2`` (torch.export),
    TorchScript (``.pt``/``.pth``/``.ts``) or a ``module:factory`` string.

    ``input_shape``, ``weights`` and ``trust_pickle`` matter for PyTorch models only; an ONNX
    file carries its own input shape.
    """
    text = str(path)
    suffix = Path(text).suffix.lower()
    if suffix == ".onnx":
        return load_onnx(path, verify=verify)
    if suffix == ".nir":  # an SNN made elsewhere, read as snnconv's graph
        from snnconv.export.nir_reader import read_nir

        return read_nir(path)
    is_factory = ":" in text and not suffix and not Path(text).exists()
    if suffix == ".pt2" or suffix in _TORCHSCRIPT or is_factory:
        return load_torch(
            path, input_shape=input_shape, weights=weights, trust_pickle=trust_pickle, verify=verify
        )
    raise InputError(
        f"{path}: unknown model format {suffix!r}; expected .onnx, .nir (NIR SNN), "
        ".pt2 (torch.export), .pt/.pth/.ts (TorchScript), or a 'module:factory' PyTorch model"
    )


def load_input_model(
    model: str | Path | None = None,
    *,
    torch_factory: str | None = None,
    weights: str | Path | None = None,
    input_shape: Sequence[int] | None = None,
    trust_pickle: bool = False,
) -> Graph:
    """The model a verb was given: a ``model`` file or a ``torch_factory`` ("module:factory"),
    exactly one of them."""
    if bool(model) == bool(torch_factory):
        raise InputError("give either a MODEL file or --torch MODULE:FACTORY (exactly one)")
    if torch_factory:
        return load_torch(
            torch_factory, input_shape=input_shape, weights=weights, trust_pickle=trust_pickle
        )
    if not Path(model).exists():
        raise InputError(f"model file {model} does not exist")
    if Path(model).suffix.lower() == ".onnx":
        return load_model(model)
    return load_model(model, input_shape=input_shape, weights=weights, trust_pickle=trust_pickle)


def load_snn(path: str | Path) -> Graph:
    """A converted SNN file; an ANN is refused with the command that converts it."""
    graph = load_model(path)
    if not graph.is_snn:
        raise InputError(
            f"{path} holds no spiking neurons: it is an ANN. Convert it first: "
            f"snnconv convert {path} --calib-data SPEC"
        )
    return graph
