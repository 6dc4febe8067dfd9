"""``NeuronKind`` and the table of kinds (see ``snnconv.neurons``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from snnconv.graph import Node

#: ``steps(v, current, static, theta, threshold, spikes, attrs, state, key)``: integrate and
#: fire over a chunk in place. ``v`` (B, ...) the membranes; ``current`` the input current,
#: (B, ...) if ``static`` (the same at every step) else (steps, B, ...); ``theta`` the
#: threshold as a tensor that broadcasts against ``v``, ``threshold`` the same as a float where
#: it is one value; ``spikes`` (steps, B, ...) to fill; ``attrs`` the node's attributes
#: (``reset``, and any of the kind's own); ``state[key]`` holds any state of the kind's own
#: that lives across chunks.
Steps = Callable[..., None]
#: ``fused(v, current, static, threshold, biases, spikes, attrs) -> bool``: the steps in one
#: kernel, the ``biases`` added to each step's current in order; False where it cannot run on
#: these tensors (the engine then adds the biases and runs ``steps``).
Fused = Callable[..., bool]
#: ``train_step(v, current, theta, attrs) -> (v, out)``: one differentiable step, ``out`` the
#: spikes times their threshold (surrogate gradient at the spike).
TrainStep = Callable[..., tuple[torch.Tensor, torch.Tensor]]


@dataclass(frozen=True)
class NeuronKind:
    """What a kind of neuron does and what it can be deployed on."""

    name: str  # as ``--neuron`` takes it
    label: str  # in sentences: "IF neurons", "signed IF neurons"
    #: "binary": spikes are 0/1; "signed": a spike may also be -1.
    spikes: str
    steps: Steps
    #: The attributes an ``if_neuron`` node of this kind carries that mark it as this kind
    #: (saved as they are: ``snnconv.IF`` keeps them).
    marks: dict[str, Any] = field(default_factory=dict)
    fused: Fused | None = None
    #: Spike events per position from the spikes: binary spikes are their own events (the same
    #: tensor, which the engine's fast pooling of spikes relies on).
    events: Callable[[torch.Tensor], torch.Tensor] = lambda spikes: spikes
    train_step: TrainStep | None = None
    #: Why fine-tuning refuses the kind, where it has no differentiable step.
    no_training: str = ""
    #: The resets the kind works with.
    resets: tuple[str, ...] = ("subtract", "zero")
    #: Why a reset outside ``resets`` is refused.
    reset_needs: str = ""
    #: Whether NIR expresses the kind exactly.
    nir: bool = False


KINDS: dict[str, NeuronKind] = {}


def register(kind: NeuronKind) -> NeuronKind:
    """Add ``kind`` to the table; its name and its marks must be new."""
    if kind.name in KINDS:
        raise ValueError(f"neuron kind {kind.name!r} is registered twice")
    if any(k.marks == kind.marks for k in KINDS.values()):
        raise ValueError(f"neuron kind {kind.name!r}: its marks {kind.marks} are taken")
    KINDS[kind.name] = kind
    return kind


def unregister(name: str) -> None:
    """Remove a kind (for tests that register a toy kind)."""
    KINDS.pop(name)


def names() -> tuple[str, ...]:
    return tuple(KINDS)


def kind(name: str) -> NeuronKind:
    return KINDS[name]


def kind_of(node: Node) -> NeuronKind:
    """The kind of an ``if_neuron`` node: the kind whose marks its attributes carry (the one
    with the most marks where several fit; the kind with none is binary IF)."""
    fits = [k for k in KINDS.values() if all(node.attrs.get(a) == v for a, v in k.marks.items())]
    if not fits:
        raise ValueError(f"node {node.name!r}: attributes {node.attrs} name no neuron kind")
    return max(fits, key=lambda k: len(k.marks))


def marks(name: str) -> dict[str, Any]:
    """The attributes that make an ``if_neuron`` node of kind ``name``."""
    return dict(KINDS[name].marks)
