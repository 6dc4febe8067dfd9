"""A toy neuron kind, leaky IF: ``v = leak * v + I; s = v >= theta``, reset by subtraction.
The worked example of docs/architecture.md: one ``NeuronKind``, registered at run time, and
the engine, fine-tuning and conversion's ``marks`` know it."""

from __future__ import annotations

import torch

from snnconv.neurons import NeuronKind
from snnconv.neurons.surrogate import spike


def _steps(v, current, static, theta, threshold, spikes, attrs, state, key) -> None:
    leak = attrs["leak"]
    for t in range(len(spikes)):
        v.mul_(leak).add_(current if static else current[t])
        torch.ge(v, theta, out=spikes[t])
        v.addcmul_(spikes[t], theta, value=-1.0)


def _train_step(v, current, theta, attrs):
    v = v * attrs["leak"] + current
    out = spike(v, theta) * theta
    return v - out, out


LEAKY = NeuronKind(
    name="leaky",
    label="leaky IF",
    spikes="binary",
    steps=_steps,
    marks={"kind": "leaky"},
    train_step=_train_step,
    resets=("subtract",),
    reset_needs="--neuron leaky needs --reset subtract",
)
