"""Distillation from an ANN teacher (Hinton et al., 2015) for ``finetune``.

The SNN also learns the teacher's whole output distribution, softened by a temperature τ, not
only its label. The ANN the SNN was converted from is the natural teacher: it is what the SNN
approximates, and its soft targets say which rivals are near, which the label alone does not.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from snnconv.errors import InputError
from snnconv.finetune.trainable_ann import TrainableAnn
from snnconv.graph import Graph


@dataclass(frozen=True)
class Distillation:
    """``(1 - weight) · base + weight · τ² · KL(softmax(teacher / τ) ‖ softmax(student / τ))``;
    the τ² keeps the soft term's gradient on the scale of the base loss's as τ changes."""

    weight: float = 0.5
    temperature: float = 2.0

    def check(self) -> None:
        if not 0.0 <= self.weight <= 1.0:
            raise InputError(f"--teacher-weight must be in [0, 1], got {self.weight}")
        if not self.temperature > 0:
            raise InputError(f"--temperature must be > 0, got {self.temperature}")

    def __call__(
        self, base: torch.Tensor, student: torch.Tensor, teacher: torch.Tensor
    ) -> torch.Tensor:
        tau = self.temperature
        soft = F.kl_div(
            F.log_softmax(student / tau, dim=1),
            F.log_softmax(teacher / tau, dim=1),
            reduction="batchmean",
            log_target=True,
        )
        return (1 - self.weight) * base + self.weight * tau**2 * soft


class Teacher:
    """An ANN graph, fixed, whose outputs on each batch the SNN's loss mixes in."""

    def __init__(self, graph: Graph, distillation: Distillation, device: torch.device):
        self.net = TrainableAnn(graph).to(device).requires_grad_(False)
        self.distillation = distillation

    def __call__(self, base: torch.Tensor, student: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The loss ``base`` of the SNN's outputs ``student`` on the batch ``x``, mixed."""
        with torch.no_grad():
            soft = self.net(x)
        return self.distillation(base, student, soft)
