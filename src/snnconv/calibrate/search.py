"""Threshold search: rescale each layer's threshold, in order, to fit the SNN's output at T.

Per-layer methods (max, percentile, mse) judge a threshold by the error it causes in its own
layer, for a constant input. In a deep SNN, each layer's input already carries the errors of
the layers before it, and what counts is the output. Going layer by layer in order, this keeps
for each layer the multiple of its threshold that minimises the mean squared error between
the SNN's output estimate at T and the ANN's output on calibration images, with every earlier
layer's choice in place. On the Fashion-MNIST nets of bench/models.py it lowers the first
layer's threshold and raises the last layers' (docs/latency.md has the measurements).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from snnconv.graph import Graph, stack_passes, unroll
from snnconv.ops import ann_forward
from snnconv.simulate.engine import OUTPUT, Simulator

#: First pass: scales a factor √2 apart (extended past an edge while the error falls, within
#: MIN_SCALE..MAX_SCALE); second pass: the two points 2**±¼ around the best.
COARSE = (0.5, 2**-0.5, 1.0, 2**0.5, 2.0)
FINE = 2**0.25
MIN_SCALE, MAX_SCALE = 1 / 8, 8.0
#: Calibration images simulated per candidate: 256 gave no better choices on Fashion-MNIST.
SEARCH_IMAGES = 128


def search_thresholds(
    snn: Graph,
    ann: Graph,
    x: np.ndarray,
    timesteps: int,
    *,
    batch_size: int = 128,
    progress: Callable[[int], None] | None = None,
) -> tuple[Graph, dict[str, float]]:
    """Return ``snn`` with searched thresholds, and the scale chosen for each neuron layer.

    ``ann`` is the ANN ``snn`` was converted from (batch norm folded); BackRes passes are
    searched as their own layers (``name#r``), like the bias calibration does.
    """
    flat = unroll(snn)
    searched, scales = _search_flat(flat.copy(), unroll(ann), x, timesteps, batch_size, progress)
    return (stack_passes(snn, searched) if flat is not snn else searched), scales


def output_error(
    snn: Graph, x: torch.Tensor, target: torch.Tensor, timesteps: int, batch_size: int = 128
) -> float:
    """Mean squared error between the SNN's output estimate after ``timesteps`` steps and
    ``target``, the ANN's output on ``x`` (flattened to N x outputs)."""
    sim = Simulator(snn)
    total = 0.0
    for start in range(0, len(x), batch_size):
        xb = x[start : start + batch_size]
        _, rec = sim.run(xb, torch.zeros(len(xb), dtype=torch.long), timesteps, record=[OUTPUT])
        estimate = rec[OUTPUT][-len(xb) :]  # the last step's
        total += float(((estimate - target[start : start + len(xb)]) ** 2).sum())
    return total / target.numel()


def _search_flat(snn: Graph, ann: Graph, x, timesteps, batch_size, progress):
    xt = torch.as_tensor(x)
    target = ann_forward(ann, xt)[0].flatten(1)

    def error() -> float:
        return output_error(snn, xt, target, timesteps, batch_size)

    scales: dict[str, float] = {}
    best_error = error()
    for neuron in [n for n in snn if n.op == "if_neuron"]:
        cap = ann.node(neuron.name).attrs.get("max")  # a bounded ReLU clips the ANN there
        scales[neuron.name], best_error = _search_layer(neuron, cap, best_error, error)
        if progress:
            progress(1)
    return snn, scales


def _search_layer(neuron, cap, current_error: float, error) -> tuple[float, float]:
    """Try multiples of one layer's threshold; keep the best. Returns (scale, its error)."""
    base = np.asarray(neuron.params["threshold"], np.float32)
    tried = {1.0: current_error}

    def trial(scale: float) -> None:
        theta = base * np.float32(scale)
        if scale in tried or (cap is not None and float(theta.max()) > cap):
            return
        neuron.params["threshold"] = theta
        tried[scale] = error()

    for scale in COARSE:
        trial(scale)
    coarse_best = min(tried, key=tried.get)
    if coarse_best in (COARSE[0], COARSE[-1]):  # at an edge: step on while the error falls
        step = 2**0.5 if coarse_best == COARSE[-1] else 2**-0.5
        while MIN_SCALE <= coarse_best * step <= MAX_SCALE:
            trial(coarse_best * step)
            if tried.get(coarse_best * step, np.inf) >= tried[coarse_best]:
                break
            coarse_best *= step
    trial(coarse_best / FINE)
    trial(coarse_best * FINE)
    chosen = min(tried, key=tried.get)
    neuron.params["threshold"] = base * np.float32(chosen)
    return chosen, tried[chosen]
