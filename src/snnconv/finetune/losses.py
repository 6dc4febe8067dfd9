"""Losses on the SNN's read-out ``V(T)/T``: cross-entropy and stochastic softmax (stochmax).

Stochmax (fixed form, after DropMax; see TECHNIQUES.md): every non-target class is kept in the
softmax normalisation with probability ρ and dropped otherwise, the target always kept:
``loss = -log(e^{o_t} / Σ_k z_k e^{o_k})``. Dropping rivals at random pushes the target above
each of them separately, which widens the margin the spiking read-out needs to settle early.
It is cross-entropy on logits where dropped classes are set to -inf, so ρ = 1 is exactly
cross-entropy. Inference is plain argmax either way.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from snnconv.errors import InputError

LOSSES = ("ce", "stochmax")


@dataclass(frozen=True)
class Loss:
    """A named loss; ``rho`` is stochmax's keep probability of each non-target class."""

    name: str = "ce"
    rho: float = 0.5

    def __call__(
        self, logits: torch.Tensor, target: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        if self.name == "ce":
            return F.cross_entropy(logits, target)
        return stochmax(logits, target, self.rho, generator)

    def __str__(self) -> str:
        return self.name if self.name == "ce" else f"stochmax:{self.rho:g}"


def stochmax(
    logits: torch.Tensor,
    target: torch.Tensor,
    rho: float = 0.5,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Mean stochmax loss over the batch; ``logits`` (B, K), ``target`` (B,) class indices."""
    keep = torch.rand(logits.shape, generator=generator, device=logits.device) < rho
    keep[torch.arange(len(target), device=logits.device), target] = True
    # 0 for kept classes (logits unchanged bit for bit), -inf for dropped ones.
    log_z = torch.zeros_like(logits).masked_fill(~keep, float("-inf"))
    return F.cross_entropy(logits + log_z, target)


def parse_loss(text: str) -> Loss:
    """``ce``, ``stochmax`` or ``stochmax:RHO`` with 0 < RHO <= 1."""
    name, _, arg = text.partition(":")
    if name not in LOSSES or (name == "ce" and arg):
        raise InputError(f"--loss {text!r}: expected 'ce', 'stochmax' or 'stochmax:RHO'")
    if not arg:
        return Loss(name)
    try:
        rho = float(arg)
    except ValueError:
        rho = float("nan")
    if not 0.0 < rho <= 1.0:
        raise InputError(f"--loss {text!r}: RHO is a keep probability in (0, 1], e.g. 0.5")
    return Loss(name, rho)
