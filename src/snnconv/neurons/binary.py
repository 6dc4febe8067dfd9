"""Binary integrate-and-fire: ``v += I; s = v >= theta``; reset by subtracting theta or to
zero. Spikes are 0/1, which every neuromorphic chip and NIR carry."""

from __future__ import annotations

import torch

from snnconv.neurons.kind import NeuronKind, register
from snnconv.neurons.surrogate import spike


def binary_steps(v, current, static: bool, theta, spikes, reset: str) -> None:
    """IF over a chunk in place. ``theta``: a float, or a tensor that broadcasts against
    ``v``."""
    scalar = theta if isinstance(theta, float) else None
    for t in range(len(spikes)):
        v.add_(current if static else current[t])
        torch.ge(v, theta, out=spikes[t])  # written as 0/1 floats: no bool round trip
        if reset != "subtract":
            v.mul_(1.0 - spikes[t])
        elif scalar is not None:
            v.sub_(spikes[t], alpha=scalar)
        else:
            v.addcmul_(spikes[t], theta, value=-1.0)


def _steps(v, current, static, theta, threshold, spikes, attrs, state, key) -> None:
    binary_steps(v, current, static, threshold, spikes, attrs["reset"])


def _fused(v, current, static, threshold, biases, spikes, attrs) -> bool:
    # imported here: the Triton kernels live with the engine, which imports this table
    from snnconv.simulate import fused_steps

    if not fused_steps.applies(v, current, static, spikes):
        return False
    fused_steps.binary_steps(v, current, static, threshold, biases, spikes, attrs["reset"])
    return True


def train_step(v, current, theta, attrs: dict):
    """One step as ``binary_steps`` computes it, differentiable through a surrogate."""
    v = v + current
    s = spike(v, theta)
    out = s * theta
    return (v - out if attrs["reset"] == "subtract" else v * (1.0 - s)), out


BINARY_IF = register(
    NeuronKind(
        name="if",
        label="IF",
        spikes="binary",
        steps=_steps,
        fused=_fused,
        train_step=train_step,
        nir=True,
    )
)
