"""Torch modules for training ANNs that convert well (import needs torch)."""

from __future__ import annotations

import torch
from torch import nn

BACKRES_MODES = ("replace", "add")


class BackRes(nn.Module):
    """A backward residual connection: ``block`` runs ``repeats`` times with the same weights.

    ``x = x0; for r in 1..R: y = block(x); x = y`` (``mode="replace"``) or ``x = y + x0``
    (``mode="add"``). The block must keep its input shape and hold no pooling. Exported to
    ONNX it unrolls into R copies reading the same weights; ``snnconv`` folds them back into
    one ``backres`` node, which converts with one set of thresholds per pass.
    """

    def __init__(self, block: nn.Module, repeats: int = 2, mode: str = "replace"):
        super().__init__()
        if repeats < 1:
            raise ValueError(f"repeats must be >= 1, got {repeats}")
        if mode not in BACKRES_MODES:
            raise ValueError(f"mode must be one of {', '.join(BACKRES_MODES)}, got {mode!r}")
        self.block = block
        self.repeats = repeats
        self.mode = mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x0 = x
        for _ in range(self.repeats):
            y = self.block(x)
            if not torch.jit.is_tracing() and y.shape != x0.shape:
                raise ValueError(
                    f"BackRes block maps shape {tuple(x0.shape)} to {tuple(y.shape)}; "
                    "it must keep its input shape"
                )
            x = y + x0 if self.mode == "add" else y
        return x

    def extra_repr(self) -> str:
        return f"repeats={self.repeats}, mode={self.mode!r}"
