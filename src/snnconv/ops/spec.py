"""The op-spec registry: one ``OpSpec`` per IR op, the one table everything dispatches on.

A spec says what an op means in the ANN (its kernel, which also gives its shape rule), how the
engine runs it on spike values (its ``engine`` role and, for wiring, what spike events do
through it), how its synaptic operations are counted, and how it is written to ONNX. The
engine, shape inference, the ANN forward pass, fine-tuning and ``save`` look the op up here;
the ONNX readers stay in ``snnconv.load``'s registry and the NIR mapping in
``snnconv.export``. Adding an op is one module that calls ``register`` (docs/architecture.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from snnconv.graph import OPS, GraphError, Node

#: ``(node, inputs) -> output`` on tensors with a leading batch axis.
Kernel = Callable[[Node, list[torch.Tensor]], torch.Tensor]
#: How the engine runs an op: ``synaptic`` (weights: MACs on analog values, synops on spikes),
#: ``wiring`` (no state; spikes may pass through as events), ``neuron``, ``gate`` (max-pool
#: gate), ``boundary`` (a hybrid net's read-out into its ANN part); ``block`` ops never reach
#: the engine (``graph.unroll`` expands them).
ENGINE_ROLES = ("synaptic", "wiring", "neuron", "gate", "boundary", "block")
STATEFUL_ROLES = frozenset({"neuron", "gate", "boundary"})


@dataclass(frozen=True)
class OpSpec:
    op: str
    #: What the op computes on analog values; None for ops with no ANN meaning (spiking ones).
    ann: Kernel | None
    #: ``(writer, node) -> None``: emit the op's ONNX node (``snnconv.save.Writer``).
    write: Callable[[Any, Node], None]
    #: The shape rule, run on meta tensors; the ANN kernel where not given.
    shape: Kernel | None = None
    engine: str = "wiring"
    # -- synaptic ops --------------------------------------------------------------------
    #: ``(node, x, weight, bias) -> y`` with the engine's prepared weights (bias None: none).
    synapse: Callable[..., torch.Tensor] | None = None
    #: ``(node, weight, per_input) -> weight`` scaled by the amplitude of each input channel.
    scale_weight: Callable[..., torch.Tensor] | None = None
    #: ``(node, in_shape, device) -> per input position, how many synapses a spike reaches``.
    fanout: Callable[..., torch.Tensor] | None = None
    #: ``(node, channel_events) -> (N,) | None``: per row of spike events summed over
    #: channels, how many outputs at least one event reaches (the neurons an event-driven
    #: chip updates); None where channels matter (grouped convolutions): all are counted.
    reach: Callable[..., torch.Tensor | None] | None = None
    #: Whether the engine lays its input and weights out channels-last (convolutions).
    channels_last: bool = False
    #: Whether, on CUDA, the bias is better added by the one IF layer the op feeds, as it
    #: reads the current, than by a pass of its own (convolutions under cuDNN).
    bias_to_neuron: bool = False
    # -- wiring ops on spike values ------------------------------------------------------
    #: ``(node, events) -> events``: where the spike events of the inputs land, so synops are
    #: counted where they are received; None: its output is no longer spikes.
    route: Callable[[Node, list[torch.Tensor]], torch.Tensor] | None = None
    #: ``node -> f(channel_events, rows) | None``: the output's events summed over channels
    #: from the inputs' (all that synops need), or None where the channel axis is lost.
    channel_route: Callable[[Node], Callable | None] | None = None
    #: ``(node, data, is_spikes, scale, in_shape) -> (output, scale)`` for ops that treat
    #: each channel alone, so a per-channel spike amplitude passes through them unapplied.
    pass_scale: Callable[..., tuple[torch.Tensor, torch.Tensor]] | None = None
    #: ``(node, values, steps) -> output``: the op on the engine's values where it can do
    #: better than the ANN kernel on their applied data.
    on_values: Callable[..., torch.Tensor] | None = None

    @property
    def stateful(self) -> bool:
        return self.engine in STATEFUL_ROLES

    def shape_of(self, node: Node, inputs: list[torch.Tensor]) -> torch.Tensor:
        return (self.shape or self.ann)(node, inputs)


SPECS: dict[str, OpSpec] = {}


def register(spec: OpSpec) -> OpSpec:
    if spec.op in SPECS:
        raise ValueError(f"op {spec.op!r} is registered twice")
    if spec.engine not in ENGINE_ROLES:
        raise ValueError(f"op {spec.op!r}: engine role {spec.engine!r} not in {ENGINE_ROLES}")
    SPECS[spec.op] = spec
    OPS.add(spec.op)
    return spec


def unregister(op: str) -> None:
    """Remove an op's spec (for tests that register a toy op)."""
    SPECS.pop(op)
    OPS.discard(op)


def spec_of(node: Node) -> OpSpec:
    try:
        return SPECS[node.op]
    except KeyError:
        raise GraphError(f"node {node.name!r}: op {node.op!r} has no spec") from None
