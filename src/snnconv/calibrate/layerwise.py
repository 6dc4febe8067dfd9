"""Layer-wise calibration after thresholds (Li et al. 2021, "A free lunch from ANN").

Rate coding over few timesteps makes each layer's mean output drift from its ANN activation
(quantisation is biased, and the bias compounds with depth). Going layer by layer, in order,
this measures the per-channel mean gap between what the ANN computes (clipped at the threshold:
the most an IF neuron can emit) and the SNN's rate x threshold at the target T, and adds that
gap to the neurons as a constant input current (their ``bias``: the same as moving the bias of
the layer before them, but kept apart so the ANN stays the ANN). Each layer is measured with
every earlier correction in place.

BackRes blocks are corrected per pass: the pass-r neurons of a body are their own layer here
(the network is unrolled, corrected, and the per-pass biases stacked back).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from snnconv.graph import Graph, stack_passes, unroll
from snnconv.ops import ann_forward
from snnconv.simulate.engine import Simulator


def _channel_mean(a: torch.Tensor) -> torch.Tensor:
    """Mean over every axis but the channel (axis 1)."""
    dims = [d for d in range(a.dim()) if d != 1]
    return a.mean(dim=dims)


def calibrate_bias(
    snn: Graph,
    ann: Graph,
    x: np.ndarray,
    timesteps: int,
    *,
    batch_size: int = 128,
    progress: Callable[[int], None] | None = None,
) -> Graph:
    """Return ``snn`` with neuron biases calibrated layer by layer at ``timesteps`` steps."""
    flat = unroll(snn)
    if flat is not snn:
        flat = _calibrate_flat(flat.copy(), unroll(ann), x, timesteps, batch_size, progress)
        return stack_passes(snn, flat)
    return _calibrate_flat(snn.copy(), ann, x, timesteps, batch_size, progress)


def _calibrate_flat(snn: Graph, ann: Graph, x, timesteps, batch_size, progress) -> Graph:
    xt = torch.as_tensor(x)
    neurons = [n for n in snn if n.op == "if_neuron"]
    _, ann_acts = ann_forward(ann, xt, keep=[n.name for n in neurons])
    for neuron in neurons:
        theta = torch.as_tensor(neuron.params["threshold"])
        theta_c = theta.reshape((1, -1) + (1,) * (ann_acts[neuron.name].dim() - 2))
        target = _channel_mean(ann_acts[neuron.name].clamp(min=0).minimum(theta_c))
        sim = Simulator(snn)
        total = torch.zeros_like(target)
        for start in range(0, len(xt), batch_size):
            xb = xt[start : start + batch_size]
            _, spikes = sim.run(
                xb, torch.zeros(len(xb), dtype=torch.long), timesteps, record=[neuron.name]
            )
            total += _channel_mean(spikes[neuron.name] * theta_c) * len(xb)
        gap = (target - total / len(xt)).numpy().astype(np.float32)
        neuron.params["bias"] = neuron.params.get("bias", 0) + gap
        if progress:
            progress(1)
    return snn
