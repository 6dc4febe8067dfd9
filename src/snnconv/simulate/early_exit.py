"""Early exit: stop each image once its prediction has held for K steps.

The engine applies the rule after every chunk of steps (``Simulator.run(exit_when_stable=K)``)
and drops the images that have stopped from the batch, so their remaining steps are not
simulated. Steps an image ran past its stop inside its last chunk are not counted: the counts
are exactly those of a run that stopped each image at its own step. An image's dynamics do
not depend on the other images of its batch, so dropping them changes nothing else.
"""

from __future__ import annotations

import numpy as np
import torch


def update_stops(
    predictions: torch.Tensor,
    t0: int,
    timesteps: int,
    stable: int,
    last: torch.Tensor | None,
    held: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Advance the rule over a chunk of predictions (steps x B, starting at step ``t0``).

    ``last`` and ``held`` carry, per image, the latest prediction and for how many steps it
    has held (None before the first chunk). Returns the 1-based step at which each image
    stops (0 while it runs on; T for the images still running at the last step), and the
    new ``last`` and ``held``."""
    stop = torch.zeros(predictions.shape[1], dtype=torch.long, device=predictions.device)
    for t, pred in enumerate(predictions):
        held = torch.ones_like(pred) if last is None else torch.where(pred == last, held + 1, 1)
        last = pred
        stop = torch.where((stop == 0) & (held >= stable), t0 + t + 1, stop)
    if t0 + len(predictions) == timesteps:
        stop = torch.where(stop == 0, timesteps, stop)
    return stop, last, held


def exit_steps(predictions: np.ndarray, stable: int) -> np.ndarray:
    """1-based step at which each image stops (T when it never holds for ``stable`` steps).

    ``predictions`` is T x N: the argmax of every image at every step."""
    T = predictions.shape[0]
    stop, _, _ = update_stops(torch.as_tensor(predictions), 0, T, stable, None, None)
    return stop.numpy()


def charge(per_step: np.ndarray, stop: np.ndarray) -> float:
    """Mean over images of a T x N per-step count summed up to each image's stop step: what
    a full run's per-image counts (``Simulator.run(per_image=True)``) cost under early exit."""
    steps = np.arange(1, per_step.shape[0] + 1)[:, None]
    return float((per_step * (steps <= stop[None, :])).sum() / per_step.shape[1])
