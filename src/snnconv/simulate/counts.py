"""What a simulation counts: spikes per neuron layer and step, synaptic operations per
synaptic layer and step (spike events x exact fan-out), and the MACs of layers that receive
analog values (``snn_macs``) or belong to a hybrid net's ANN part (``ann_part_macs``).

For the energy models and NeuroBench's metrics it also counts, per step: the spike events
each synaptic layer receives (``input_events``), how many of its outputs at least one of them
reaches (``reached``: the neurons an event-driven chip must update), and how many membranes
of each neuron layer change (``membrane_updates``); and the MACs of analog-input layers whose
input and weight are both non-zero (``effective_macs``, NeuroBench's "effective" MACs)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch


@dataclass
class Counts:
    """Totals over the images of one or more batches; per-step arrays have length T.

    With ``per_image``, the per-step counts are also kept for every image (arrays T x N).
    With early exit, ``stop`` holds the 1-based step at which each image stopped, and every
    count covers the steps run up to it; an image that has stopped keeps its last prediction
    in ``correct_per_step``.

    Layers queue their counts for a chunk with ``add``; ``commit`` counts them once the
    chunk's stops are known."""

    timesteps: int
    images: int = 0
    correct_per_step: np.ndarray | None = None
    spikes: dict[str, np.ndarray] = field(default_factory=dict)  # per neuron layer, per step
    synops: dict[str, np.ndarray] = field(default_factory=dict)  # per synaptic layer, per step
    snn_macs: dict[str, float] = field(default_factory=dict)  # per layer fed analog values
    ann_part_macs: dict[str, float] = field(default_factory=dict)  # per layer of an ANN part
    input_events: dict[str, np.ndarray] = field(default_factory=dict)  # per synaptic layer, step
    reached: dict[str, np.ndarray] = field(default_factory=dict)  # per synaptic layer, per step
    membrane_updates: dict[str, np.ndarray] = field(default_factory=dict)  # per neuron layer
    # per analog-input layer: each computation of it (once per image where its input is static)
    effective_macs: dict[str, float] = field(default_factory=dict)
    per_image: bool = False
    # whether to count what only the energy models need (input events, reached outputs,
    # membrane updates, effective MACs)
    traffic: bool = True
    # whether layers count at all: not in calibration's runs, which read no counts
    kept: bool = True
    predictions: np.ndarray | None = None  # T x N, the argmax at each step
    image_synops: np.ndarray | None = None  # T x N, all layers
    image_spikes: np.ndarray | None = None  # T x N, all layers
    image_macs: np.ndarray | None = None  # T x N, layers fed analog values step by step
    labels: np.ndarray | None = None  # N
    stop: np.ndarray | None = None  # N, with early exit
    _pending: list = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        if self.correct_per_step is None:
            self.correct_per_step = np.zeros(self.timesteps, np.int64)
        if self.per_image and self.predictions is None:
            shape = (self.timesteps, self.images)
            self.predictions = np.zeros(shape, np.int64)
            self.image_synops, self.image_spikes, self.image_macs = (
                np.zeros(shape) for _ in range(3)
            )
            self.labels = np.zeros(self.images, np.int64)

    def merge(self, other: Counts) -> None:
        self.images += other.images
        self.correct_per_step += other.correct_per_step
        for table in STEP_TABLES:
            mine, theirs = getattr(self, table), getattr(other, table)
            for k, v in theirs.items():
                mine[k] = mine.get(k, 0) + v
        for mine, theirs in (
            (self.snn_macs, other.snn_macs),
            (self.ann_part_macs, other.ann_part_macs),
            (self.effective_macs, other.effective_macs),
        ):
            for k, v in theirs.items():
                mine[k] = mine.get(k, 0.0) + v
        if self.stop is not None:
            self.stop = np.concatenate([self.stop, other.stop])
        if self.per_image:
            self.labels = np.concatenate([self.labels, other.labels])
            for name in ("predictions", "image_synops", "image_spikes", "image_macs"):
                setattr(
                    self, name, np.concatenate([getattr(self, name), getattr(other, name)], axis=1)
                )

    def add(self, table: str, name: str, t0: int, per_image: torch.Tensor) -> None:
        """Queue a layer's counts over a chunk, per step and image (steps x B): ``table`` is
        one of ``STEP_TABLES``, or ``snn_macs`` / ``effective_macs`` (kept as totals)."""
        self._pending.append((table, name, t0, per_image))

    def discard(self) -> None:
        """Drop the queued chunk's counts uncounted (a calibration span keeps none)."""
        self._pending.clear()

    def commit(self, ran: torch.Tensor | None = None, images: np.ndarray | None = None) -> None:
        """Count the queued chunk. ``ran`` (steps x B, 0/1) leaves out the steps an image ran
        past its stop; ``images`` are the chunk's images' positions in the batch (default all).
        Per-image counts are exact in float32 (< 2**24); totals are summed in float64."""
        columns = slice(None) if images is None else images
        for table, name, t0, per_image in self._pending:
            if ran is not None:
                per_image = per_image * ran
            if table in TOTAL_TABLES:
                total = float(per_image.sum(dtype=torch.float64))
                totals = getattr(self, table)
                totals[name] = totals.get(name, 0.0) + total
            else:
                per_step = per_image.sum(1, dtype=torch.float64).cpu().numpy()
                _add_steps(getattr(self, table), name, per_step, self.timesteps, t0)
            if self.per_image and table in _PER_IMAGE:
                rows = getattr(self, _PER_IMAGE[table])
                rows[t0 : t0 + len(per_image), columns] += per_image.cpu().numpy()
        self._pending.clear()


#: Counts kept per layer and step (arrays of length T).
STEP_TABLES = ("spikes", "synops", "input_events", "reached", "membrane_updates")
TOTAL_TABLES = frozenset({"snn_macs", "effective_macs"})
_PER_IMAGE = {"spikes": "image_spikes", "synops": "image_synops", "snn_macs": "image_macs"}


def _add_steps(table: dict, name: str, per_step: np.ndarray, timesteps: int, t0: int) -> None:
    row = table.setdefault(name, np.zeros(timesteps))
    row[t0 : t0 + len(per_step)] += per_step
