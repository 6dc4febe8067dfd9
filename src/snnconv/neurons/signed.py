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
    """Signed IF over a chunk in place; ``state[key]`` holds the net spike counts."""
    net = state.get(key)
    if net is None:
        net = torch.zeros_like(v)
    # step buffers in v's layout (channels-last after a conv): no allocation per step
    fell = torch.empty_like(v, dtype=torch.bool)
    owes = torch.empty_like(v, dtype=torch.bool)
    for t in range(len(spikes)):
        s = spikes[t]
        v.add_(current if static else current[t])
        torch.ge(v, theta, out=s)
        torch.lt(v, 0, out=fell).logical_and_(torch.gt(net, 0, out=owes))
        s.sub_(fell.to(s.dtype))
        net.add_(s)
        v.addcmul_(s, theta, value=-1.0)
    state[key] = net


def _steps(v, current, static, theta, threshold, spikes, attrs, state, key) -> None:
    signed_steps(v, current, static, theta, spikes, state, f"{key}:net")


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
