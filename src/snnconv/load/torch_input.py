"""Native PyTorch input: export to ONNX in memory, then take the one ONNX loader path.

Accepted: an ExportedProgram (``.pt2``), a TorchScript file, a ``module:factory`` string
(optionally with a state-dict ``weights`` file), or an ``nn.Module``. Pickled whole modules
run arbitrary code when loaded, so they are read only with ``trust_pickle=True``.
"""

from __future__ import annotations

import hashlib
import importlib
import io
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch

from snnconv.errors import InputError
from snnconv.graph import Graph
from snnconv.load.onnx_loader import load_onnx

OPSET = 18


def load_torch(
    source: str | Path | torch.nn.Module,
    *,
    input_shape: Sequence[int] | None = None,
    weights: str | Path | None = None,
    trust_pickle: bool = False,
    verify: bool = True,
) -> Graph:
    """Load a PyTorch model as a ``Graph``; ``input_shape`` is per sample, e.g. (1, 28, 28)."""
    if not input_shape:
        raise InputError(
            f"{source}: a PyTorch model needs the per-sample input shape (e.g. 1,28,28) to be "
            "exported; pass input_shape / --input-shape"
        )
    module, name, digest = _module(source, weights, trust_pickle)
    onnx_bytes = _export(module, tuple(int(d) for d in input_shape), name)
    graph = load_onnx(onnx_bytes, verify=verify)
    graph.metadata["source_name"] = name
    graph.metadata["source_sha256"] = digest
    return graph


def _module(source, weights, trust_pickle) -> tuple[torch.nn.Module, str, str]:
    if isinstance(source, torch.nn.Module):
        return source, type(source).__name__, ""
    text = str(source)
    path = Path(text)
    if not path.exists() and ":" in text and not path.suffix:
        module = _from_factory(text)
        digest = ""
        if weights is not None:
            digest = _load_weights(module, Path(weights))
        return module, text, digest
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if path.suffix.lower() == ".pt2":
        return _exported_program(path), path.name, digest
    return _torchscript_or_pickle(path, trust_pickle), path.name, digest


def _from_factory(spec: str) -> torch.nn.Module:
    mod_name, _, attr = spec.partition(":")
    try:
        factory = getattr(importlib.import_module(mod_name), attr)
    except (ImportError, AttributeError) as e:
        raise InputError(f"{spec}: cannot import the model factory: {e}") from None
    module = factory()
    if not isinstance(module, torch.nn.Module):
        raise InputError(f"{spec}: the factory returned {type(module).__name__}, not nn.Module")
    return module


def _load_weights(module: torch.nn.Module, path: Path) -> str:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except Exception as e:  # torch raises many types for a bad or unsafe file
        raise InputError(f"{path}: not a state dict that can be loaded safely: {e}") from None
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    try:
        module.load_state_dict(state)
    except (RuntimeError, TypeError) as e:
        raise InputError(f"{path}: the weights do not fit the model: {e}") from None
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _exported_program(path: Path) -> torch.nn.Module:
    try:
        return torch.export.load(str(path)).module()
    except Exception as e:  # noqa: BLE001
        raise InputError(f"{path}: not a torch.export program (.pt2): {e}") from None


def _torchscript_or_pickle(path: Path, trust_pickle: bool) -> torch.nn.Module:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return torch.jit.load(str(path), map_location="cpu")
    except Exception:  # noqa: BLE001  (not TorchScript: try the other forms below)
        pass
    if trust_pickle:
        try:
            obj = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as e:  # noqa: BLE001
            raise InputError(f"{path}: cannot load this file with torch.load: {e}") from None
        if isinstance(obj, torch.nn.Module):
            return obj
        raise InputError(f"{path}: holds a {type(obj).__name__}, not an nn.Module")
    raise InputError(
        f"{path}: not TorchScript. If it is a pickled nn.Module you trust (loading it runs "
        "code from the file), pass --trust-pickle; if it is a state dict, pass the model as "
        "'module:factory' with --weights; or export it with torch.jit.save / torch.export."
    )


def _export(module: torch.nn.Module, input_shape: tuple[int, ...], name: str) -> bytes:
    """ONNX bytes of ``module``, dynamo exporter first, the TorchScript exporter as fallback."""
    try:
        module.eval()
    except NotImplementedError:
        pass  # a torch.export program's module is already in inference form
    example = (torch.rand(2, *input_shape),)
    errors = []
    for export in (_export_dynamo, _export_legacy):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return export(module, example)
        except Exception as e:  # noqa: BLE001  (each exporter fails in its own ways)
            errors.append(f"{export.__name__.removeprefix('_export_')}: {str(e).splitlines()[0]}")
    raise InputError(f"{name}: torch.onnx.export failed ({'; '.join(errors)})")


def _export_dynamo(module: torch.nn.Module, example: tuple) -> bytes:
    if isinstance(module, torch.jit.ScriptModule):
        raise TypeError("TorchScript modules need the TorchScript exporter")
    batch = torch.export.Dim("batch")
    program = torch.onnx.export(
        module,
        example,
        dynamo=True,
        opset_version=OPSET,
        dynamic_shapes=({0: batch},),
        input_names=["input"],
        output_names=["output"],
        verbose=False,
    )
    return program.model_proto.SerializeToString()


def _export_legacy(module: torch.nn.Module, example: tuple) -> bytes:
    buf = io.BytesIO()
    torch.onnx.export(
        module,
        example,
        buf,
        dynamo=False,
        opset_version=17,
        input_names=["input"],
        output_names=["output"],
        dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
    )
    return buf.getvalue()
