"""Threshold search: rescale each layer's threshold, in order, to fit the SNN's output at T.

Per-layer methods (max, percentile, mse) judge a threshold by the error it causes in its own
layer, for a constant input. In a deep SNN, each layer's input already carries the errors of
the layers before it, and what counts is the output. Going layer by layer in order, this keeps
for each layer the multiple of its threshold that minimises the mean squared error between
the SNN's output estimate at T and the ANN's output on calibration images, with every earlier
layer's choice in place. On the Fashion-MNIST nets of bench/models.py it lowers the first
layer's threshold and raises the last layers' (docs/latency.md has the measurements).

Each candidate is simulated from the layer it rescales on (``LayerWalk``): the layers before
it do not change, so their spike trains are computed once per layer, not once per candidate.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from snnconv.calibrate.walk import LayerWalk
from snnconv.graph import Graph, stack_passes, unroll
from snnconv.ops import ann_forward

#: First pass: scales a factor √2 apart (extended past an edge while the error falls, within
#: MIN_SCALE..MAX_SCALE); second pass: the two points 2**±¼ around the best. With
#: ``early_stop`` the first pass walks from 1 by √2 only in the direction the error falls, and
#: stops where it stops falling.
COARSE = (0.5, 2**-0.5, 1.0, 2**0.5, 2.0)
STEP = 2**0.5
FINE = 2**0.25
MIN_SCALE, MAX_SCALE = 1 / 8, 8.0
#: Calibration images simulated per candidate: 256 gave no better choices on Fashion-MNIST.
SEARCH_IMAGES = 128
#: The defaults of ``search_thresholds``' savings that change its choices (measured in
#: bench/search_savings.py; off: the choices of the full search).
EARLY_STOP = False
WINDOW: int | None = None


def search_thresholds(
    snn: Graph,
    ann: Graph,
    x: np.ndarray,
    timesteps: int,
    *,
    batch_size: int = 128,
    progress: Callable[[int], None] | None = None,
    target: torch.Tensor | None = None,
    early_stop: bool | None = None,
    window: int | None = None,
) -> tuple[Graph, dict[str, float]]:
    """Return ``snn`` with searched thresholds, and the scale chosen for each neuron layer.

    ``ann`` is the ANN ``snn`` was converted from (batch norm folded); BackRes passes are
    searched as their own layers (``name#r``), like the bias calibration does. ``target``:
    the ANN's output on ``x``, where the caller has it already. ``early_stop``: fewer
    candidates (see COARSE), a different choice where the error has more than one dip.
    ``window`` W: judge a layer's candidates by the error of the neuron layer W layers on
    (its rate x threshold against the ANN's activation, clipped there), or of the output
    where that is nearer, so that a candidate simulates at most W + 1 layers. Both default
    to EARLY_STOP and WINDOW.
    """
    early_stop = EARLY_STOP if early_stop is None else early_stop
    window = WINDOW if window is None else window
    flat = unroll(snn)
    if target is None:
        target = ann_forward(ann, torch.as_tensor(x))[0].flatten(1)
    searched, scales = _search_flat(
        flat.copy(), unroll(ann), x, target, timesteps, batch_size, progress, early_stop, window
    )
    return (stack_passes(snn, searched) if flat is not snn else searched), scales


def output_error(
    snn: Graph, x: torch.Tensor, target: torch.Tensor, timesteps: int, batch_size: int = 128
) -> float:
    """Mean squared error between the SNN's output estimate after ``timesteps`` steps and
    ``target``, the ANN's output on ``x`` (flattened to N x outputs)."""
    return LayerWalk(snn, x, timesteps, batch_size).output_error(target)


def _search_flat(snn: Graph, ann: Graph, x, target, timesteps, batch_size, progress, early, window):
    walk = LayerWalk(snn, x, timesteps, batch_size)
    neurons = [n for n in snn if n.op == "if_neuron"]
    acts = {}
    if window:
        acts = ann_forward(ann, torch.as_tensor(x), keep=[n.name for n in neurons])[1]
    judge = None  # the neuron layer whose error is judged; None: the output

    def error() -> float:
        if judge is None:
            return walk.output_error(target)
        return _layer_error(walk, judge, acts[judge.name], timesteps)

    scales: dict[str, float] = {}
    best_error = error()
    for k, neuron in enumerate(walk.layers()):
        cap = ann.node(neuron.name).attrs.get("max")  # a bounded ReLU clips the ANN there
        if window:
            judge = neurons[k + window] if k + window < len(neurons) else None
            best_error = error()  # the judge moved on
        scales[neuron.name], best_error = _search_layer(neuron, cap, best_error, error, early)
        if progress:
            progress(1)
    return snn, scales


def _layer_error(walk: LayerWalk, neuron, act: torch.Tensor, timesteps: int) -> float:
    """Mean squared error between a neuron layer's rate x threshold over T steps and the
    ANN's activation there, clipped to what the layer can emit (0..threshold)."""
    theta = torch.as_tensor(neuron.params["threshold"])
    theta_c = theta.reshape((1, -1) + (1,) * (act.dim() - 2))
    expected = act.clamp(min=0).minimum(theta_c)
    total, start = 0.0, 0
    for spikes, size in zip(walk.run_through(neuron), walk.sizes, strict=True):
        rate = spikes.view((timesteps, size) + tuple(spikes.shape[1:])).mean(0) * theta_c
        total += float(((rate - expected[start : start + size]) ** 2).sum())
        start += size
    return total / expected.numel()


def _search_layer(
    neuron, cap, current_error: float, error, early_stop: bool = False
) -> tuple[float, float]:
    """Try multiples of one layer's threshold; keep the best. Returns (scale, its error)."""
    base = np.asarray(neuron.params["threshold"], np.float32)
    tried = {1.0: current_error}

    def trial(scale: float) -> float:
        theta = base * np.float32(scale)
        if scale not in tried and (cap is None or float(theta.max()) <= cap):
            neuron.params["threshold"] = theta
            tried[scale] = error()
        return tried.get(scale, np.inf)

    best = 1.0
    if not early_stop:
        for scale in COARSE:
            trial(scale)
        best = min(tried, key=tried.get)
        steps = [STEP] if best == COARSE[-1] else [1 / STEP] if best == COARSE[0] else []
    else:
        steps = [STEP, 1 / STEP]
    for step in steps:  # step on while the error falls
        while MIN_SCALE <= best * step <= MAX_SCALE and trial(best * step) < tried[best]:
            best *= step
        if best != 1.0:  # it fell this way: no need to look the other
            break
    trial(best / FINE)
    trial(best * FINE)
    chosen = min(tried, key=tried.get)
    neuron.params["threshold"] = base * np.float32(chosen)
    return chosen, tried[chosen]
