"""Event routing: wiring ops (pooling, flatten, add, concat, ...) on the engine's values.

Spikes that pass a wiring op stay spike events (the op's ``route``), so their synops are
counted where they land; both the events and their sum over channels are made only when a
synaptic layer asks for them. Ops that act on each channel alone (``pass_scale``) keep the
spikes binary and pass their amplitude on."""

from __future__ import annotations

from functools import partial

import torch

from snnconv.graph import Node
from snnconv.ops import OpSpec
from snnconv.simulate.values import Chunk, Value, expand, is_spikes


def run_static(sim, node: Node, spec: OpSpec, args: list[Value], counts) -> Value:
    """A wiring op on the input image alone: computed once per batch."""
    out = spec.ann(node, [a.data for a in args])
    return Value(out, static=True, readout=any(a.readout for a in args))


def run_wiring(sim, node: Node, spec: OpSpec, args: list[Value], chunk: Chunk) -> Value:
    steps = chunk.steps
    readout = any(a.readout for a in args)
    a = args[0]
    if a.scale is not None and spec.pass_scale is not None:
        in_shape = sim.shapes[node.inputs[0]]
        out, scale = spec.pass_scale(node, expand(a, steps), is_spikes(a), a.scale, in_shape)
        return Value(
            out,
            False,
            make_events=partial(_events, node, spec, args, steps),
            scale=scale,
            make_channel_events=_channel_events(node, spec, args),
        )
    if spec.on_values is not None:
        out = spec.on_values(node, args, steps)
    else:
        out = spec.ann(node, [v.value(steps) for v in args])
    if not readout and spec.route is not None and all(v.spiking for v in args):
        return Value(
            out,
            False,
            make_events=partial(_events, node, spec, args, steps),
            make_channel_events=_channel_events(node, spec, args),
        )
    return Value(out, static=False, readout=readout)


def _events(node: Node, spec: OpSpec, args: list[Value], steps: int) -> torch.Tensor:
    return spec.route(node, [expand(Value(a.events, a.static), steps) for a in args])


def _channel_events(node: Node, spec: OpSpec, args: list[Value]):
    """How to get the output's channel events from the inputs' without the full events, or
    None (then they are summed from the events)."""
    route = None if spec.channel_route is None else spec.channel_route(node)
    if route is None:
        return None
    return lambda: route([a.channel_events for a in args], len(args[0].data))
