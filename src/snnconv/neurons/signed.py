"""Signed IF with memory (Wang et al. 2022): as IF, and a neuron whose membrane has fallen
below 0 emits -1 (and gains theta back) if it has emitted more 1s than -1s so far.

The net count after t steps is then the rounded integral of the input over theta, clipped at
0 (and at t): what the ANN computes from the mean input so far, quantised. Binary IF fixes
its spikes as the input arrives, so a layer whose input comes late or uneven (a residual add,
a deep layer at few steps) over- or under-fires for good. Marked on the node as ``signed: 1``.
"""

from __future__ import annotations

import torch

from snnconv.neurons.kind import NeuronKind, register


def signed_steps(v, current, static: bool, theta, spikes, state, key: str) -> None:
    """Signed IF over a chunk in place; ``state[key]`` holds minus the net spike counts.
    ``theta``: a float, or a tensor that broadcasts against ``v``.

    A neuron falls (emits -1) where its membrane is below 0 and its net count above 0, i.e.
    where ``max(v, -net) < 0``: one comparison, on one float buffer, nothing allocated per
    step.
    """
    neg_net = state.get(key)
    if neg_net is None:
        neg_net = torch.zeros_like(v)
    fell = torch.empty_like(v)  # in v's layout (channels-last after a conv)
    scalar = isinstance(theta, float)
    for t in range(len(spikes)):
        s = spikes[t]
        v.add_(current if static else current[t])
        torch.ge(v, theta, out=s)  # written as 0/1 floats
        torch.lt(torch.maximum(v, neg_net, out=fell), 0, out=fell)
        s.sub_(fell)
        neg_net.sub_(s)
        if scalar:
            v.sub_(s, alpha=theta)
        else:
            v.addcmul_(s, theta, value=-1.0)
    state[key] = neg_net


def _steps(v, current, static, theta, threshold, spikes, attrs, state, key) -> None:
    signed_steps(v, current, static, threshold, spikes, state, f"{key}:neg_net")


SIGNED_IF = register(
    NeuronKind(
        name="signed",
        label="signed IF",
        spikes="signed",
        steps=_steps,
        marks={"signed": 1},
        events=torch.abs,  # a -1 costs what a 1 does
        no_training=(
            "fine-tuning trains IF neurons with 0/1 spikes, not signed ones; convert with "
            "`--neuron if` to fine-tune"
        ),
        resets=("subtract",),
        reset_needs="--neuron signed needs --reset subtract (a -1 gives back a threshold)",
    )
)
