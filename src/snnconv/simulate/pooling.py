"""Pooling of spike tensors over non-overlapping windows, by whole-tensor ops on strided views.

torch's CPU pooling kernels visit each window element by element; when windows tile the input
(kernel = stride, no padding, no dilation: the pooling of almost every CNN) a few adds or
compares over strided views do the same work several times faster (a 2x2 sum over
128x16x28x28 spikes: 1.0 ms against 6.4 ms for ``avg_pool2d``, 1 thread). Other geometries
return None and the caller uses the general kernels in ``snnconv.ops``.

The engine uses these only where they are bit-identical to the general kernels: window sums
of integer-valued tensors (spikes, spike counts: exact in any order), and the window maxima
of the max-pool gate, which pick, like ``max_pool2d``, the first largest entry in row-major
window order.
"""

from __future__ import annotations

import torch


def _tiles(x: torch.Tensor, attrs: dict) -> list[torch.Tensor] | None:
    """One strided view per offset in the window, in row-major order, or None when the
    windows do not tile the input."""
    kh, kw = attrs["kernel"]
    if (kh, kw) != tuple(attrs["stride"]) or any(attrs["padding"]):
        return None
    if tuple(attrs.get("dilation", (1, 1))) != (1, 1):
        return None
    h, w = x.shape[-2:]
    if attrs["ceil_mode"] and (h % kh or w % kw):
        return None  # ceil mode adds a partial window at the border
    x = x[..., : h // kh * kh, : w // kw * kw]
    return [x[..., i::kh, j::kw] for i in range(kh) for j in range(kw)]


def window_sum(x: torch.Tensor, attrs: dict) -> torch.Tensor | None:
    """Per-window sums, or None for windows that do not tile the input."""
    tiles = _tiles(x, attrs)
    if tiles is None:
        return None
    total = tiles[0] + tiles[1] if len(tiles) > 1 else tiles[0].clone()
    for tile in tiles[2:]:
        total += tile
    return total


def gated_select(score: torch.Tensor, x: torch.Tensor, attrs: dict) -> torch.Tensor | None:
    """From each window of ``x``, the entry where ``score`` is largest (the first one on a
    tie), or None for windows that do not tile the input."""
    scores, tiles = _tiles(score, attrs), _tiles(x, attrs)
    if scores is None:
        return None
    best, out = scores[0].clone(), tiles[0].clone()
    for s, t in zip(scores[1:], tiles[1:], strict=True):
        higher = s > best  # strict: an earlier entry keeps a tie
        torch.where(higher, s, best, out=best)
        torch.where(higher, t, out, out=out)
    return out
