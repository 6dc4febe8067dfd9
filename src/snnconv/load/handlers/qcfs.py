"""The handler of ``snnconv.ann.QCFS``, what ``snnconv prepare`` writes in place of each ReLU:
a model-local function of standard ops (so onnxruntime runs the prepared ANN as it is),
read back as one ``qcfs`` node with its threshold λ and levels L."""

from __future__ import annotations

import numpy as np

from snnconv.errors import InputError
from snnconv.load.context import Context
from snnconv.load.fold import attrs_of
from snnconv.load.registry import register
from snnconv.ops.qcfs import ANN_DOMAIN, FUNCTION


@register(FUNCTION, domain=ANN_DOMAIN)
def qcfs(ctx: Context, node) -> None:
    x = ctx.act(node.input[0])
    threshold = np.asarray(ctx.const(node.input[1]), np.float32)
    levels = attrs_of(node).get("levels")
    if not isinstance(levels, int) or levels < 1:
        raise InputError(f"levels must be an integer >= 1, got {levels!r}")
    if threshold.size == 0 or not np.all(np.isfinite(threshold)) or not np.all(threshold > 0):
        raise InputError("the threshold (λ) must be finite and positive")
    channels = ctx.shape(x)[0] if ctx.shape(x) else 1
    if threshold.size not in (1, channels):
        raise InputError(
            f"the threshold (λ) has {threshold.size} values; give one or one per channel "
            f"({channels})"
        )
    ctx.add("qcfs", [x], {"levels": levels}, {"threshold": threshold.reshape(-1)})
