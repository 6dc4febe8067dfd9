"""Synaptic layers in the engine: a conv or linear layer over a chunk's steps, and what it
costs (synops for spikes in, MACs for analog values in, once per image for an ANN part)."""

from __future__ import annotations

import torch

from snnconv.graph import Node
from snnconv.ops import OpSpec
from snnconv.simulate.counts import Counts
from snnconv.simulate.values import Chunk, Value, expand


def kernel(sim, node: Node, spec: OpSpec, x: torch.Tensor, weight, bias) -> torch.Tensor:
    """The op's synapse; ``bias`` None adds none (the IF layer it feeds adds it)."""
    if not (sim.channels_last and spec.channels_last):
        return spec.synapse(node, x, weight, bias)
    # no copies where the input is already channels-last, as the neurons leave it; the
    # output is made so where oneDNN answers NCHW (to a 1-channel input)
    x = x.contiguous(memory_format=torch.channels_last)
    out = spec.synapse(node, x, weight, bias)
    return out.contiguous(memory_format=torch.channels_last)


def run_static(sim, node: Node, spec: OpSpec, args: list[Value], counts: Counts) -> Value:
    """A synaptic layer on the input image alone: computed once per batch, its MACs once per
    image."""
    readout = any(a.readout for a in args)
    table = counts.ann_part_macs if readout else counts.snn_macs
    macs = sim.macs[node.name] * len(args[0].data)
    table[node.name] = table.get(node.name, 0.0) + macs
    p = sim.params[node.name]
    out = kernel(sim, node, spec, args[0].data, p["weight"], p["bias"])
    if not readout and counts.traffic:
        effective = float(effective_macs(sim, node, spec, args[0].data).sum())
        counts.effective_macs[node.name] = counts.effective_macs.get(node.name, 0.0) + effective
    return Value(out, static=True, readout=readout)


def run_synapse(sim, node: Node, spec: OpSpec, args: list[Value], chunk: Chunk) -> Value:
    """A conv or linear layer over the chunk's steps, counting what it costs."""
    arg, steps, t0, counts = args[0], chunk.steps, chunk.t0, chunk.counts
    p = sim.params[node.name]
    weight = p["weight"] if arg.scale is None else scaled_weight(sim, node, spec, arg.scale)
    # added by the IF layer it feeds (never a read-out: those feed the ANN part)
    fused_bias = node.name in sim.bias_to_neuron and not arg.readout
    bias = None if fused_bias else p["bias"]
    data = expand(arg, steps)
    if len(data) == 1:
        # oneDNN and MKL take other kernels for one row, which round differently: a lone
        # image run step by step goes as two rows, so it matches its chunked runs
        out = kernel(sim, node, spec, data.expand(2, *data.shape[1:]), weight, bias)[:1]
    else:
        out = kernel(sim, node, spec, data, weight, bias)
    batch = len(data) // steps
    if arg.readout:
        # The ANN part of a hybrid net: evaluated at every step for the anytime curve, but
        # run once per read-out on hardware, so its MACs count once per image.
        if t0 == 0:
            macs = sim.macs[node.name] * batch
            counts.ann_part_macs[node.name] = counts.ann_part_macs.get(node.name, 0.0) + macs
        return Value(out, static=False, readout=True)
    if counts.kept:
        _count(sim, node, spec, arg, data, out, steps, t0, counts)
    return Value(out, static=False, bias=p["bias"] if fused_bias else None)


def _count(sim, node: Node, spec: OpSpec, arg: Value, data, out, steps: int, t0: int, counts):
    """What a spiking layer's step costs: synops for spikes in, MACs for analog values in."""
    batch = len(data) // steps
    if arg.spiking:
        # float64 for exact counts; the channel events are small, the spikes never copied
        events = arg.channel_events
        per_image = events.reshape(len(data), -1).double() @ sim.fanouts[node.name]
        counts.add("synops", node.name, t0, per_image.view(steps, batch))
        if counts.traffic:
            count_traffic(sim, node, spec, events, out, steps, t0, counts)
    else:
        macs = torch.full((steps, batch), float(sim.macs[node.name]), dtype=torch.float64)
        counts.add("snn_macs", node.name, t0, macs.to(out.device))
        if counts.traffic:
            effective = effective_macs(sim, node, spec, data).view(steps, batch)
            counts.add("effective_macs", node.name, t0, effective)


def count_traffic(sim, node: Node, spec: OpSpec, events, out, steps: int, t0: int, counts):
    """What the energy models need of a spike-fed layer: the events it receives, and how
    many of its outputs at least one of them reaches (``OpSpec.reach``; all where it cannot
    tell)."""
    rows = len(events)
    counts.add("input_events", node.name, t0, events.reshape(steps, rows // steps, -1).sum(2))
    reached = spec.reach(node, events) if spec.reach else None
    if reached is None:
        reached = torch.full((rows,), float(out[0].numel()), device=out.device)
    counts.add("reached", node.name, t0, reached.view(steps, rows // steps))


def effective_macs(sim, node: Node, spec: OpSpec, x: torch.Tensor) -> torch.Tensor:
    """Per row of ``x``, the MACs whose input and weight are both non-zero (NeuroBench's
    effective MACs): the layer on the input's and weight's non-zero masks, bias left out."""
    key = node.name + "#nonzero"
    if key not in sim.scaled_weights:
        # summed over each group's output channels: one output per group gives the same
        # total as all of them (integer sums, exact in float32), at a fraction of the cost
        weight = torch.as_tensor(node.params["weight"], device=x.device) != 0
        groups = int(node.attrs.get("groups", 1))
        per_group = weight.reshape(groups, -1, *weight.shape[1:]).sum(1)
        sim.scaled_weights[key] = per_group.to(torch.float32)
    out = spec.synapse(node, (x != 0).to(torch.float32), sim.scaled_weights[key], None)
    return out.flatten(1).sum(1, dtype=torch.float64)


def scaled_weight(sim, node: Node, spec: OpSpec, scale: torch.Tensor) -> torch.Tensor:
    """The weights times the amplitude of the spikes they receive, per input channel.
    A layer always receives the same neurons' spikes, so this is made once."""
    if node.name not in sim.scaled_weights:
        scaled = spec.scale_weight(node, sim.params[node.name]["weight"], scale.reshape(-1))
        if sim.channels_last and spec.channels_last:
            scaled = scaled.contiguous(memory_format=torch.channels_last)
        sim.scaled_weights[node.name] = scaled
    return sim.scaled_weights[node.name]


def per_position(node: Node, fanout: torch.Tensor, in_shape: tuple[int, ...]) -> torch.Tensor:
    """A layer's fan-out per input position with the channel axis dropped: it is the same
    for every input channel (a conv's output channels per group, a linear's out features)."""
    per_channel = fanout.view(in_shape[0], -1)
    if not torch.equal(per_channel, per_channel[:1].expand_as(per_channel)):
        raise AssertionError(f"node {node.name!r}: fan-out differs between input channels")
    return per_channel[0].double()
