"""``--threshold qcfs``: the thresholds a prepared ANN already holds.

``snnconv prepare`` trains each activation's λ as a quantisation clip-floor-shift layer
(``snnconv.ops.qcfs``); an IF neuron with threshold λ and initial membrane λ/2 reproduces that
layer at T = L (Bu et al. 2022), so conversion takes λ as it is: nothing to observe.
Relus that conversion adds itself (max pools built from relus, for ``--target nir``) get
``mse`` thresholds, as they would by default."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from snnconv.calibrate.observe import observe_thresholds
from snnconv.calibrate.thresholds import (
    CalibrationContext,
    MseMethod,
    Placement,
    ThresholdMethod,
    register,
)
from snnconv.errors import InputError
from snnconv.graph import ACTIVATION_OPS, Graph, unroll


def qcfs_thresholds(ann: Graph) -> dict[str, np.ndarray]:
    """λ of every QCFS layer, [1] or [C], keyed as ``observe_thresholds`` keys them (a BackRes
    pass ``n#r``); a model without any is refused."""
    out = {
        n.name: np.ravel(n.params["threshold"]).astype(np.float32)
        for n in unroll(ann)
        if n.op in ACTIVATION_OPS and "levels" in n.attrs
    }
    if not out:
        raise InputError(
            "--threshold qcfs: the model has no QCFS layers; prepare it first (snnconv prepare) "
            "or choose another --threshold"
        )
    return out


def prepared_levels(ann: Graph) -> int | None:
    """The quantisation levels L of a prepared ANN (the largest, if layers differ); None for
    a model that was not prepared."""
    levels = [
        n.attrs["levels"] for n in unroll(ann) if n.op in ACTIVATION_OPS and "levels" in n.attrs
    ]
    return max(levels) if levels else None


@register
@dataclass(frozen=True)
class QcfsMethod(ThresholdMethod):
    name: ClassVar[str] = "qcfs"
    progress_unit: ClassVar[str] = "layers"

    def fit(self, ann: Graph, x: np.ndarray, ctx: CalibrationContext) -> Placement:
        thresholds = qcfs_thresholds(ann)
        others = [
            n.name for n in unroll(ann) if n.op in ACTIVATION_OPS and n.name not in thresholds
        ]
        if others:  # relus conversion added (max pools built from relus): mse, as by default
            observed = observe_thresholds(
                ann,
                x,
                MseMethod(),
                per_channel=ctx.per_channel,
                timesteps=ctx.timesteps,
                v0=ctx.v0,
                batch_size=ctx.batch_size,
                seed=ctx.seed,
            )
            thresholds = {**observed, **thresholds}
        return lambda neuron: ctx.to_neurons(ann, thresholds, ctx.reset, ctx.v0, neuron)
