"""Run the ANN over calibration data and set one threshold per activation layer (or channel)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import torch

from snnconv.calibrate.observers import SAMPLE_SIZE, ActivationSample
from snnconv.errors import InputError
from snnconv.graph import ACTIVATION_OPS, Graph, unroll
from snnconv.ops import ann_forward

if TYPE_CHECKING:
    from snnconv.calibrate.thresholds import ObservedMethod


def observe_thresholds(
    graph: Graph,
    x: np.ndarray,
    method: ObservedMethod,
    *,
    per_channel: bool = False,
    timesteps: int = 32,
    v0: float = 0.5,
    batch_size: int = 128,
    seed: int = 0,
    progress: Callable[[int], None] | None = None,
) -> dict[str, np.ndarray]:
    """Thresholds (float32 arrays of shape [1] or [C]) keyed by activation node name, chosen
    by ``method`` from samples of the ANN's activations on ``x``.

    ``timesteps`` and ``v0`` matter only to ``mse``, which fits the rate quantisation of the
    neuron that will replace the layer.

    BackRes blocks are calibrated per pass: the ANN activation of pass r of body activation
    ``n`` gives the threshold keyed ``n#r`` (``to_neurons`` stacks them).
    """
    graph = unroll(graph)
    if len(x) == 0:
        raise InputError("calibration data is empty: give --calib-data with at least one image")
    names = [n.name for n in graph if n.op in ACTIVATION_OPS]
    n_batches = -(-len(x) // batch_size)
    quota = max(1, SAMPLE_SIZE // n_batches)
    samples = {name: ActivationSample(per_channel, quota) for name in names}
    rng = np.random.default_rng(seed)
    for start in range(0, len(x), batch_size):
        batch = torch.as_tensor(x[start : start + batch_size])
        _, acts = ann_forward(graph, batch, keep=names)
        for name in names:
            samples[name].add(acts[name], rng)
        if progress:
            progress(len(batch))
    thresholds = {}
    for name in names:
        s = samples[name]
        theta = np.array(
            [
                # a layer (or channel) that never fired gets the threshold 1
                1.0 if m <= 0 or v.size == 0 else method.choose(v, float(m), timesteps, v0)
                for v, m in zip(s.values, s.maximum, strict=True)
            ],
            dtype=np.float32,
        )
        clip_max = graph.node(name).attrs.get("max")
        if clip_max is not None:
            theta = np.minimum(theta, np.float32(clip_max))
        thresholds[name] = theta
    return thresholds
