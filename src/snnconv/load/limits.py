"""Size limits checked from declared shapes, before anything is allocated.

A hostile or broken model can declare a 100000×100000 weight or input while holding a few
bytes; numpy would then try to allocate hundreds of GB. Every tensor the loader builds
(initializer, constant attribute, folded constant, per-image activation) is checked first.
The limit is per tensor, ``SNNCONV_MAX_TENSOR_GB`` (default 1) GB.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

from snnconv.errors import InputError

ENV = "SNNCONV_MAX_TENSOR_GB"
DEFAULT_GB = 1.0


def max_tensor_bytes() -> float:
    """The largest single tensor the loader accepts, in bytes."""
    text = os.environ.get(ENV, "")
    try:
        gb = float(text) if text else DEFAULT_GB
    except ValueError:
        raise InputError(f"{ENV}={text!r}: expected a number of GB, e.g. 4") from None
    return gb * 1e9


def check_size(shape: Sequence[int], itemsize: int, what: str) -> None:
    """Refuse a tensor of ``shape`` whose bytes exceed the limit; ``what`` says which."""
    if any(int(d) < 0 for d in shape):
        raise InputError(f"{what} has a negative size in its shape {tuple(shape)}")
    size = math.prod(int(d) for d in shape) * itemsize
    limit = max_tensor_bytes()
    if size > limit:
        raise InputError(
            f"{what} of shape {tuple(int(d) for d in shape)} would take {size / 1e9:.3g} GB, "
            f"above the limit of {limit / 1e9:g} GB per tensor; refusing to allocate it. Check "
            f"the model's declared shapes, or raise the limit with {ENV}=N"
        )
