"""Input encodings: how an image becomes the SNN's input at each timestep."""

from __future__ import annotations

import torch

ENCODINGS = ("direct", "poisson")


def poisson_step(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One step of rate-coded input: a spike of sign(x) with probability |x| (clipped to 1)."""
    u = torch.rand(x.shape, generator=generator, device=generator.device, dtype=x.dtype)
    return torch.sign(x) * (u < x.abs()).to(x.dtype)
