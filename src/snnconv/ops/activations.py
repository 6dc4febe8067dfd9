"""Element-wise ops: ``affine`` (batch norm before folding), ``relu`` and ``clip`` (what
conversion turns into neurons), and the ANN-only ``sigmoid``, ``softmax`` and ``lrn``, which
may sit only in a hybrid net's ANN part. None of them passes spikes on as events."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from snnconv.graph import Node
from snnconv.ops import kernels
from snnconv.ops.spec import OpSpec, register


def _write_affine(w, n: Node) -> None:
    # Batch norm with mean 0, variance 1, epsilon 0 is exactly x * scale + shift.
    c = n.params["scale"].shape[0]
    ins = [
        n.inputs[0],
        w.param(n, "scale"),
        w.param(n, "shift"),
        w.param(n, "mean", np.zeros(c)),
        w.param(n, "var", np.ones(c)),
    ]
    w.emit(n, "BatchNormalization", ins, epsilon=0.0)


def _write_clip(w, n: Node) -> None:
    lo = w.param(n, "min", np.asarray(n.attrs.get("min", 0.0)))
    hi = w.param(n, "max", np.asarray(n.attrs["max"]))
    w.emit(n, "Clip", [n.inputs[0], lo, hi])


def _write_lrn(w, n: Node) -> None:
    a = n.attrs
    w.emit(
        n,
        "LRN",
        [n.inputs[0]],
        size=int(a["size"]),
        alpha=float(a["alpha"]),
        beta=float(a["beta"]),
        bias=float(a["bias"]),
    )


def _lrn(n: Node, xs: list[torch.Tensor]) -> torch.Tensor:
    a = n.attrs
    return F.local_response_norm(xs[0], a["size"], a["alpha"], a["beta"], a["bias"])


register(OpSpec("affine", ann=lambda n, xs: kernels.affine(n, xs[0]), write=_write_affine))
register(
    OpSpec(
        "relu", ann=lambda n, xs: F.relu(xs[0]), write=lambda w, n: w.emit(n, "Relu", [n.inputs[0]])
    )
)
register(OpSpec("clip", ann=lambda n, xs: kernels.clip(n, xs[0]), write=_write_clip))
register(
    OpSpec(
        "sigmoid",
        ann=lambda n, xs: torch.sigmoid(xs[0]),
        write=lambda w, n: w.emit(n, "Sigmoid", [n.inputs[0]]),
    )
)
register(
    OpSpec(
        "softmax",
        ann=lambda n, xs: torch.softmax(xs[0], dim=n.attrs["axis"]),
        write=lambda w, n: w.emit(n, "Softmax", [n.inputs[0]], axis=int(n.attrs["axis"])),
    )
)
register(OpSpec("lrn", ann=_lrn, write=_write_lrn))
