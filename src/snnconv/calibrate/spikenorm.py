"""Spike-norm thresholds (Sengupta et al. 2019, "Going deeper in spiking neural networks").

Layer by layer, in order, a neuron layer's threshold is the largest input current it receives
in one step while the SNN, with every earlier layer already converted, runs on calibration
data for the target T steps. Unlike the ANN-statistics methods it sees what the spiking layers
before it really deliver (spike trains times thresholds, not their mean), so its thresholds
are large and it needs many steps; snnconv offers it for comparison.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from snnconv.calibrate.thresholds import CalibrationContext, Placement, ThresholdMethod, register
from snnconv.calibrate.walk import LayerWalk
from snnconv.graph import Graph, stack_passes, unroll


@register
@dataclass(frozen=True)
class SpikeNormMethod(ThresholdMethod):
    name: ClassVar[str] = "spikenorm"
    progress_unit: ClassVar[str] = "layers"

    def fit(self, ann: Graph, x: np.ndarray, ctx: CalibrationContext) -> Placement:
        """Nothing to measure on the ANN: each neuron kind's SNN is simulated in the loop."""

        def place(neuron: str) -> Graph:
            # placeholders first: spikenorm sets the thresholds in order, simulating the SNN
            ones = defaultdict(lambda: np.ones(1, np.float32))
            snn = ctx.to_neurons(ann, ones, ctx.reset, ctx.v0, neuron)
            return spikenorm_thresholds(
                snn,
                x[: ctx.calibration_images],
                ctx.timesteps,
                per_channel=ctx.per_channel,
                batch_size=ctx.batch_size,
                progress=ctx.progress,
            )

        return place


def spikenorm_thresholds(
    snn: Graph,
    x: np.ndarray,
    timesteps: int,
    *,
    per_channel: bool = False,
    batch_size: int = 128,
    progress: Callable[[int], None] | None = None,
) -> Graph:
    """Return ``snn`` (its thresholds are placeholders) with spike-norm thresholds."""
    flat = unroll(snn)
    if flat is not snn:
        flat = _spikenorm_flat(flat.copy(), x, timesteps, per_channel, batch_size, progress)
        return stack_passes(snn, flat)
    return _spikenorm_flat(snn.copy(), x, timesteps, per_channel, batch_size, progress)


def _spikenorm_flat(snn: Graph, x, timesteps, per_channel, batch_size, progress) -> Graph:
    walk = LayerWalk(snn, x, timesteps, batch_size)
    for neuron in walk.layers():
        # only the layers before this one matter, and they hold their final thresholds
        peaks: list[torch.Tensor] = []

        def keep_peak(current: torch.Tensor, peaks: list = peaks) -> None:
            peak = current.transpose(0, 1).flatten(1).amax(1)  # per channel
            peaks.append(peak if per_channel else peak.amax().reshape(1))

        for _ in walk.run_through(neuron, probe=keep_peak):
            pass
        peak = torch.stack(peaks).amax(0).numpy().astype(np.float32)
        # a layer (or channel) that never receives a positive current never fires: 1 will do
        theta = np.where(peak > 0, peak, np.float32(1.0))
        clip_max = neuron.attrs.get("clip_max")
        if clip_max is not None:
            theta = np.minimum(theta, np.float32(clip_max))
        neuron.params["threshold"] = theta.astype(np.float32)
        if progress:
            progress(1)
    return snn
