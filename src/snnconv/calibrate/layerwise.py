"""Layer-wise calibration after thresholds (Li et al. 2021, "A free lunch from ANN").

Rate coding over few timesteps makes each layer's mean output drift from its ANN activation
(quantisation is biased, and the bias compounds with depth). Going layer by layer, in order,
this measures the per-channel mean gap between what the ANN computes (clipped at the threshold:
the most an IF neuron can emit) and the SNN's rate x threshold at the target T, and corrects
the neurons by it. Each layer is measured with every earlier correction in place.

Two corrections, alone or both (bias first, then the potential on what is left):

* ``bias``: the gap becomes a constant input current of the neurons (the same as moving the
  bias of the layer before them, but kept apart so the ANN stays the ANN);
* ``potential``: the gap times T is added to the neurons' initial membrane. With reset by
  subtraction, T steps emit (input + initial membrane - final membrane) / threshold spikes,
  so this adds the same charge as the bias, all of it at the start: the spikes it adds (or
  holds back) come early, where a later layer still sees them.

BackRes blocks are corrected per pass: the pass-r neurons of a body are their own layer here
(the network is unrolled, corrected, and the per-pass parameters stacked back).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from snnconv.calibrate.walk import LayerWalk
from snnconv.graph import Graph, Node, stack_passes, unroll
from snnconv.ops import ann_forward


def _channel_mean(a: torch.Tensor) -> torch.Tensor:
    """Mean over every axis but the channel (axis 1)."""
    dims = [d for d in range(a.dim()) if d != 1]
    return a.mean(dim=dims)


def calibrate_layers(
    snn: Graph,
    ann: Graph,
    x: np.ndarray,
    timesteps: int,
    corrections: tuple[str, ...] = ("bias",),
    *,
    batch_size: int = 128,
    progress: Callable[[int], None] | None = None,
    activations: dict[str, torch.Tensor] | None = None,
) -> Graph:
    """Return ``snn`` with each neuron layer corrected, layer by layer, at ``timesteps`` steps:
    ``corrections`` holds ``"bias"`` and/or ``"potential"`` (see the module docstring).
    ``activations``: the unrolled ANN's activations on ``x`` by neuron name, where the caller
    has them already."""
    flat = unroll(snn)
    args = (unroll(ann), x, timesteps, corrections, batch_size, progress, activations)
    if flat is not snn:
        return stack_passes(snn, _calibrate_flat(flat.copy(), *args))
    return _calibrate_flat(snn.copy(), *args)


def _calibrate_flat(snn: Graph, ann, x, timesteps, corrections, batch_size, progress, acts):
    names = [n.name for n in snn if n.op == "if_neuron"]
    if acts is None:
        _, acts = ann_forward(ann, torch.as_tensor(x), keep=names)
    walk = LayerWalk(snn, x, timesteps, batch_size)
    for neuron in walk.layers():
        theta = torch.as_tensor(neuron.params["threshold"])
        theta_c = theta.reshape((1, -1) + (1,) * (acts[neuron.name].dim() - 2))
        target = _channel_mean(acts[neuron.name].clamp(min=0).minimum(theta_c))
        for kind in corrections:
            gap = target - _snn_mean(walk, neuron, theta_c)
            CORRECTIONS[kind](neuron, gap.numpy().astype(np.float32), timesteps)
        if progress:
            progress(1)
    return snn


def _snn_mean(walk: LayerWalk, neuron: Node, theta_c) -> torch.Tensor:
    """Per-channel mean of the neuron layer's rate x threshold over the walk's T steps."""
    total = 0
    for spikes, size in zip(walk.run_through(neuron), walk.sizes, strict=True):
        total = total + _channel_mean(spikes * theta_c) * size
    return total / sum(walk.sizes)


def _bias(neuron: Node, gap: np.ndarray, timesteps: int) -> None:
    neuron.params["bias"] = neuron.params.get("bias", 0) + gap


def _potential(neuron: Node, gap: np.ndarray, timesteps: int) -> None:
    neuron.params["potential"] = neuron.params.get("potential", 0) + gap * np.float32(timesteps)


#: How each correction moves a layer's neurons by the per-channel gap it measured.
CORRECTIONS: dict[str, Callable[[Node, np.ndarray, int], None]] = {
    "bias": _bias,
    "potential": _potential,
}
