"""The neuron-kind table: one entry per kind of spiking neuron an ``if_neuron`` node can be.

A kind is registered once (``register``) and everything that depends on how a neuron behaves
asks it: the engine for its step over a chunk, its fused kernel and its event count;
fine-tuning for its differentiable step; conversion for which kinds exist and what they need;
reports and export for what its spikes are and where they can run. ``kind_of`` is the one
place that reads which kind a node is from its attributes.

Adding a kind is one module that builds a ``NeuronKind`` and calls ``register`` (see
docs/architecture.md).
"""

from snnconv.neurons import binary, signed  # noqa: F401  (the built-in kinds register)
from snnconv.neurons.kind import (
    KINDS,
    NeuronKind,
    kind,
    kind_of,
    marks,
    names,
    register,
    unregister,
)

__all__ = [
    "KINDS",
    "NeuronKind",
    "kind",
    "kind_of",
    "marks",
    "names",
    "register",
    "unregister",
]
