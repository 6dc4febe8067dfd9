"""Collect activation samples from the ANN on calibration data.

Thresholds are statistics of each activation layer's output. Holding every activation of a
calibration set would cost gigabytes on real nets, so each layer keeps a bounded, seeded,
uniform sample of its positive values (per channel when asked), plus the exact maximum.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

#: Values kept per layer (or per channel): enough for a 99.99th percentile to be stable.
SAMPLE_SIZE = 400_000


@dataclass
class ActivationSample:
    """Positive activation values of one layer: ``values[c]`` per channel, or ``values[0]``."""

    per_channel: bool
    quota: int  # values kept from each batch, so every batch weighs the same
    chunks: list[list[np.ndarray]] = field(default_factory=list)
    maximum: np.ndarray | None = None

    def add(self, act: torch.Tensor, rng: np.random.Generator) -> None:
        a = act.detach().float()
        if self.per_channel:
            rows = a.transpose(0, 1).reshape(a.shape[1], -1)
        else:
            rows = a.reshape(1, -1)
        batch_max = rows.amax(dim=1).cpu().numpy()
        self.maximum = batch_max if self.maximum is None else np.maximum(self.maximum, batch_max)
        if not self.chunks:
            self.chunks = [[] for _ in range(rows.shape[0])]
        quota = max(1, self.quota // rows.shape[0]) if not self.per_channel else self.quota
        for c, row in enumerate(rows):
            pos = row[row > 0].cpu().numpy()
            if pos.size > quota:
                pos = rng.choice(pos, quota, replace=False)
            self.chunks[c].append(pos)

    @property
    def values(self) -> list[np.ndarray]:
        return [np.concatenate(c) if c else np.empty(0, np.float32) for c in self.chunks]
