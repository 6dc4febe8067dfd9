"""What a verb that re-simulates a converted model needs: the SNN, its data, its T."""

from __future__ import annotations

import json
from pathlib import Path

from snnconv.data import Dataset, load_dataset
from snnconv.graph import Graph
from snnconv.load import load_snn

#: T for a model that records no target (made by hand, or by an older snnconv).
DEFAULT_TIMESTEPS = 32


def target_timesteps(snn: Graph) -> int:
    """The T the model was converted for (``snnconv.conversion`` → ``target_timesteps``)."""
    try:
        recorded = json.loads(snn.metadata.get("snnconv.conversion", "{}"))["target_timesteps"]
    except (ValueError, KeyError, TypeError):
        return DEFAULT_TIMESTEPS
    return recorded if isinstance(recorded, int) and recorded >= 1 else DEFAULT_TIMESTEPS


def choose_timesteps(snn: Graph, asked: int | None) -> tuple[int, str | None]:
    """``asked``, or the model's target T when None; with a warning when they differ (its
    thresholds were fitted at the target T, so another T is a different operating point)."""
    target = target_timesteps(snn)
    if asked is None:
        return target, None
    if asked != target and "snnconv.conversion" in snn.metadata:
        return asked, (
            f"simulating at T = {asked}, but the model was converted for T = {target}: "
            f"accuracy and spike counts differ from those it was calibrated for"
        )
    return asked, None


def load_evaluation(
    model: str | Path,
    data_spec: str,
    *,
    normalize: str | tuple[float, float] | None = None,
    limit: int | None = None,
) -> tuple[Graph, Dataset]:
    """The SNN file and its test data, normalised as recorded at conversion unless
    ``normalize`` ("MEAN,STD" or a pair) says otherwise."""
    snn = load_snn(model)
    if normalize is None:
        normalize = snn.metadata.get("snnconv.normalize")
    return snn, load_dataset(data_spec, normalize=normalize, limit=limit)
