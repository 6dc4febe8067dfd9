"""Torch kernels of the IR's ops on analog values: what each op means in the ANN.

The op specs (``snnconv.ops``) name them as their ANN kernels; the simulator reuses them for
its synapses, so the ANN and the SNN cannot disagree on what a layer means.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch
import torch.nn.functional as F

from snnconv.graph import Node


def _t(a: np.ndarray, like: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(a, device=like.device, dtype=like.dtype)


def _pad(x: torch.Tensor, padding: Iterable[int], value: float = 0.0) -> torch.Tensor:
    top, left, bottom, right = padding
    if top == left == bottom == right == 0:
        return x
    return F.pad(x, (left, right, top, bottom), value=value)


def _symmetric(padding) -> tuple[int, int] | None:
    top, left, bottom, right = padding
    return (top, left) if (top, left) == (bottom, right) else None


def conv(node: Node, x: torch.Tensor, weight=None, bias=None, *, with_bias=True) -> torch.Tensor:
    """``weight``, ``bias``: the node's own unless given; ``with_bias=False`` adds none."""
    a = node.attrs
    w = _t(node.params["weight"], x) if weight is None else weight
    b = None if not with_bias else _t(node.params["bias"], x) if bias is None else bias
    sym = _symmetric(a["padding"])
    if sym is None:
        x, sym = _pad(x, a["padding"]), (0, 0)
    return F.conv2d(x, w, b, a["stride"], sym, a["dilation"], a["groups"])


def linear(node: Node, x: torch.Tensor, weight=None, bias=None) -> torch.Tensor:
    w = _t(node.params["weight"], x) if weight is None else weight
    b = _t(node.params["bias"], x) if bias is None else bias
    return F.linear(x, w, b)


def _channel_view(p: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return p.reshape((1, -1) + (1,) * (x.dim() - 2))


def affine(node: Node, x: torch.Tensor) -> torch.Tensor:
    scale = _channel_view(_t(node.params["scale"], x), x)
    shift = _channel_view(_t(node.params["shift"], x), x)
    return x * scale + shift


def _sum_pool(x: torch.Tensor, a: dict) -> torch.Tensor:
    return F.avg_pool2d(
        x, a["kernel"], a["stride"], 0, a["ceil_mode"], count_include_pad=False, divisor_override=1
    )


def sum_pool(x: torch.Tensor, attrs: dict) -> torch.Tensor:
    """Window sums with an avgpool's geometry (zero padding)."""
    return _sum_pool(_pad(x, attrs["padding"]), attrs)


def avgpool(node: Node, x: torch.Tensor) -> torch.Tensor:
    return sum_pool(x, node.attrs) / avgpool_divisor(node.attrs, x)


def avgpool_divisor(attrs: dict, x: torch.Tensor) -> torch.Tensor:
    """Per output position, what an avgpool divides its window sum by."""
    # The divisor counts the window's cells inside the padded (or the unpadded) input, which is
    # what ONNX defines for both count_include_pad settings, with ceil_mode's overhang excluded.
    ones = torch.ones((1, 1) + tuple(x.shape[2:]), device=x.device, dtype=x.dtype)
    if attrs.get("count_include_pad", False):
        mask = _pad(ones, attrs["padding"], 1.0)
    else:
        mask = _pad(ones, attrs["padding"], 0.0)
    return _sum_pool(mask, attrs)


def maxpool(node: Node, x: torch.Tensor) -> torch.Tensor:
    a = node.attrs
    x = _pad(x, a["padding"], float("-inf"))
    return F.max_pool2d(x, a["kernel"], a["stride"], 0, a["dilation"], a["ceil_mode"])


def maxpool_indices(node: Node, score: torch.Tensor) -> torch.Tensor:
    """Flat indices (into the padded input) of each window's largest ``score``."""
    a = node.attrs
    score = _pad(score, a["padding"], float("-inf"))
    _, idx = F.max_pool2d(
        score, a["kernel"], a["stride"], 0, a["dilation"], a["ceil_mode"], return_indices=True
    )
    return idx


def gather_windows(node: Node, x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Pick from ``x`` the entries ``maxpool_indices`` chose."""
    x = _pad(x, node.attrs["padding"], 0.0)
    flat = x.flatten(2)
    return flat.gather(2, idx.flatten(2)).view(idx.shape)


def clip(node: Node, x: torch.Tensor) -> torch.Tensor:
    return x.clamp(min=node.attrs.get("min", 0.0), max=node.attrs.get("max"))


def add(xs: list[torch.Tensor]) -> torch.Tensor:
    out = xs[0]
    for x in xs[1:]:
        out = out + x
    return out
