"""Spike-norm thresholds (Sengupta et al. 2019, "Going deeper in spiking neural networks").

Layer by layer, in order, a neuron layer's threshold is the largest input current it receives
in one step while the SNN, with every earlier layer already converted, runs on calibration
data for the target T steps. Unlike the ANN-statistics methods it sees what the spiking layers
before it really deliver (spike trains times thresholds, not their mean), so its thresholds
are large and it needs many steps; snnconv offers it for comparison.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from snnconv.graph import Graph, head, stack_passes, unroll
from snnconv.simulate.engine import Simulator


class _PeakCurrent:
    """The largest input current of one neuron layer, per channel (or over the whole
    layer): a probe for ``Simulator.run``."""

    def __init__(self, per_channel: bool):
        self.per_channel = per_channel
        self.peak: torch.Tensor | None = None

    def __call__(self, current: torch.Tensor) -> None:
        peak = current.transpose(0, 1).flatten(1).amax(1)
        peak = peak if self.per_channel else peak.amax().reshape(1)
        self.peak = peak if self.peak is None else torch.maximum(self.peak, peak)


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
    xt = torch.as_tensor(x)
    for neuron in [n for n in snn if n.op == "if_neuron"]:
        # Only the layers before this one matter, and they hold their final thresholds.
        sim, probe = Simulator(head(snn, neuron.name)), _PeakCurrent(per_channel)
        for start in range(0, len(xt), batch_size):
            xb = xt[start : start + batch_size]
            sim.run(
                xb, torch.zeros(len(xb), dtype=torch.long), timesteps, probes={neuron.name: probe}
            )
        peak = probe.peak.numpy().astype(np.float32)
        # A layer (or channel) that never receives a positive current never fires: 1 will do.
        theta = np.where(peak > 0, peak, np.float32(1.0))
        clip_max = neuron.attrs.get("clip_max")
        if clip_max is not None:
            theta = np.minimum(theta, np.float32(clip_max))
        neuron.params["threshold"] = theta.astype(np.float32)
        if progress:
            progress(1)
    return snn
