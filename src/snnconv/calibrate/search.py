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

#: Candidate scales are powers of 2**(1/4), named by their exponent in quarters. First pass:
#: scales a factor sqrt(2) apart (extended past an edge while the error falls, within
#: LOWEST..HIGHEST); second pass: the two points 2**(±1/4) around the best. With
#: ``early_stop`` the first pass walks from 1 by sqrt(2) only in the direction the error falls,
#: and stops where it stops falling; with ``one_fine`` the second pass tries only the point
#: toward the better neighbour of the best (where a parabola through the three has its
#: minimum).
COARSE = (-4, -2, 0, 2, 4)  # 0.5, 2**-0.5, 1, 2**0.5, 2
STEP, FINE = 2, 1
LOWEST, HIGHEST = -12, 12  # 1/8 .. 8
#: Calibration images simulated per candidate. 64 cost binary-IF conversions accuracy: the
#: VGG-style bench net with --target nir at T = 8 lost 1.3 points over three calibration
#: draws, with ONE_FINE (docs/speed.md).
SEARCH_IMAGES = 128
#: The search's savings (measured in bench/search_savings.py, docs/speed.md). On by default:
#: candidates of a layer judged WINDOW neuron layers on, or at the output where that is
#: nearer, so that a candidate simulates at most WINDOW + 1 neuron layers and the search's
#: cost grows linearly with depth (the bench nets have at most 7 neuron layers: judged at the
#: output). Off: early stop, which misses second dips in the error (the 15-layer vgg16 bench
#: net with binary neurons: 83.1 against 87.3 % at T = 8), and one second-pass point, which
#: with 64 search images cost the binary-IF conversions above.
EARLY_STOP = False
ONE_FINE = False
WINDOW: int | None = 8


def search_thresholds(
    snn: Graph,
    ann: Graph,
    x: np.ndarray,
    timesteps: int,
    *,
    batch_size: int = 128,
    progress: Callable[[int], None] | None = None,
    target: torch.Tensor | None = None,
    start_error: float | None = None,
    early_stop: bool | None = None,
    window: int | None = None,
    one_fine: bool | None = None,
) -> tuple[Graph, dict[str, float]]:
    """Return ``snn`` with searched thresholds, and the scale chosen for each neuron layer.

    ``ann`` is the ANN ``snn`` was converted from (batch norm folded); BackRes passes are
    searched as their own layers (``name#r``), like the bias calibration does. ``target``: the
    ANN's output on ``x``, where the caller has it already; ``start_error``: ``snn``'s output
    error against it (``output_error``), where the caller has measured it. ``early_stop``:
    fewer candidates (see COARSE), a different choice where the error has more than one dip.
    ``window`` W: judge a layer's candidates by the error of the neuron layer W layers on (its
    rate x threshold against the ANN's activation, clipped there), or of the output where that
    is nearer, so that a candidate simulates at most W + 1 layers (0: always the output).
    ``one_fine``: one second-pass candidate (see COARSE). They default to EARLY_STOP, WINDOW
    and ONE_FINE.
    """
    early_stop = EARLY_STOP if early_stop is None else early_stop
    window = WINDOW if window is None else window
    one_fine = ONE_FINE if one_fine is None else one_fine
    flat = unroll(snn)
    if target is None:
        target = ann_forward(ann, torch.as_tensor(x))[0].flatten(1)
    searched, scales = _search_flat(
        flat.copy(), unroll(ann), x, target, timesteps, batch_size, progress,
        (early_stop, one_fine), window, start_error,
    )  # fmt: skip
    return (stack_passes(snn, searched) if flat is not snn else searched), scales


def output_error(
    snn: Graph, x: torch.Tensor, target: torch.Tensor, timesteps: int, batch_size: int = 128
) -> float:
    """Mean squared error between the SNN's output estimate after ``timesteps`` steps and
    ``target``, the ANN's output on ``x`` (flattened to N x outputs)."""
    return LayerWalk(snn, x, timesteps, batch_size).output_error(target)


def _search_flat(
    snn: Graph, ann: Graph, x, target, timesteps, batch_size, progress, how, window, start_error
):
    walk = LayerWalk(snn, x, timesteps, batch_size)
    neurons = [n for n in snn if n.op == "if_neuron"]
    acts = {}
    window = window if window and window < len(neurons) else None  # else: all at the output
    if window:
        acts = ann_forward(ann, torch.as_tensor(x), keep=[n.name for n in neurons])[1]
    judge = None  # the neuron layer whose error is judged; None: the output

    def error() -> float:
        if judge is None:
            return walk.output_error(target)
        return _layer_error(walk, judge, acts[judge.name], timesteps)

    scales: dict[str, float] = {}
    best_error = None if window else start_error  # the error of the thresholds in place
    for k, neuron in enumerate(walk.layers()):
        cap = ann.node(neuron.name).attrs.get("max")  # a bounded ReLU clips the ANN there
        if window:
            judge_was, judge = judge, neurons[k + window] if k + window < len(neurons) else None
            if judge is not judge_was:  # the judge moved on
                best_error = None
        if best_error is None:
            best_error = error()
        scales[neuron.name], best_error = _search_layer(neuron, cap, best_error, error, *how)
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
    neuron, cap, current_error: float, error, early_stop: bool = False, one_fine: bool = False
) -> tuple[float, float]:
    """Try multiples of one layer's threshold; keep the best. Returns (scale, its error)."""
    base = np.asarray(neuron.params["threshold"], np.float32)
    tried = {0: current_error}  # quarters -> error

    def trial(q: int) -> float:
        theta = base * np.float32(_scale(q))
        if q not in tried and (cap is None or float(theta.max()) <= cap):
            neuron.params["threshold"] = theta
            tried[q] = error()
        return tried.get(q, np.inf)

    best = 0
    if not early_stop:
        for q in COARSE:
            trial(q)
        best = min(tried, key=tried.get)
        steps = [STEP] if best == COARSE[-1] else [-STEP] if best == COARSE[0] else []
    else:
        steps = [STEP, -STEP]
    for step in steps:  # step on while the error falls
        while LOWEST <= best + step <= HIGHEST and trial(best + step) < tried[best]:
            best += step
        if best != 0:  # it fell this way: no need to look the other
            break
    if one_fine:  # np.inf for a neighbour out of bounds
        below, above = tried.get(best - STEP, np.inf), tried.get(best + STEP, np.inf)
        trial(best + FINE if above < below else best - FINE)
    else:
        trial(best - FINE)
        trial(best + FINE)
    chosen = min(tried, key=tried.get)
    neuron.params["threshold"] = base * np.float32(_scale(chosen))
    return _scale(chosen), tried[chosen]


def _scale(quarters: int) -> float:
    return 2.0 ** (quarters / 4)
