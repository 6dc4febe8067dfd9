"""NIR's conv and pool geometry (int or pair fields, padding by name) as snnconv reads it."""

from __future__ import annotations

import numpy as np

from snnconv.errors import InputError


def pair(v) -> tuple[int, int]:
    """An int or a pair as a pair."""
    a = np.ravel(np.asarray(v)).astype(int).tolist()
    return (a[0], a[0]) if len(a) == 1 else (a[0], a[1])


def padding(value, kernel, dilation, stride, nid: str) -> tuple[int, int]:
    """A Conv2d's padding as (top/bottom, left/right); "same" only where it is symmetric."""
    if isinstance(value, str):
        if value == "valid":
            return (0, 0)
        reach = [d * (k - 1) for k, d in zip(kernel, dilation, strict=True)]
        if stride == (1, 1) and all(r % 2 == 0 for r in reach):
            return (reach[0] // 2, reach[1] // 2)
        raise InputError(f"NIR node {nid!r}: padding 'same' that is not symmetric")
    return pair(value)


def conv_shape(x_shape, w_shape, stride, pad, dilation) -> tuple[int, int, int]:
    """A conv's output shape (C, H, W)."""
    hw = tuple(
        (x_shape[1 + i] + 2 * pad[i] - dilation[i] * (w_shape[2 + i] - 1) - 1) // stride[i] + 1
        for i in (0, 1)
    )
    return (w_shape[0], *hw)
