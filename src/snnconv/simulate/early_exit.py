"""Early exit: stop each image once its prediction has held for K steps.

An image's dynamics do not depend on the other images in its batch, so the engine runs the
batch to T and this charges every image exactly the steps it would have run had it stopped:
its accuracy, synops, spikes and energy are those of a run that really stopped there.
"""

from __future__ import annotations

import numpy as np


def exit_steps(predictions: np.ndarray, stable: int) -> np.ndarray:
    """1-based step at which each image stops (T when it never holds for ``stable`` steps).

    ``predictions`` is T x N: the argmax of every image at every step."""
    T, n = predictions.shape
    held = np.zeros(n, np.int64)  # how many consecutive steps the prediction has held
    stop = np.full(n, T, np.int64)
    done = np.zeros(n, bool)
    for t in range(T):
        same = predictions[t] == predictions[t - 1] if t else np.zeros(n, bool)
        held = np.where(same, held + 1, 1)
        newly = (held >= stable) & ~done
        stop[newly] = t + 1
        done |= newly
    return stop


def charge(per_step: np.ndarray, stop: np.ndarray) -> float:
    """Mean over images of a T x N per-step count summed up to each image's stop step."""
    steps = np.arange(1, per_step.shape[0] + 1)[:, None]
    return float((per_step * (steps <= stop[None, :])).sum() / per_step.shape[1])
