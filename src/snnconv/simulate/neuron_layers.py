"""Neuron layers in the engine: membranes over a chunk's steps, updated by the layer's
neuron kind (``snnconv.neurons``), and the spikes they emit counted."""

from __future__ import annotations

import torch

from snnconv.graph import Node
from snnconv.ops import OpSpec
from snnconv.simulate.values import Chunk, Value, channel, channels_last, empty


def membrane_changes(current, spikes, t0: int):
    """Per step and image (steps x B), NeuroBench's membrane updates: every membrane at the
    first step, then those that change, i.e. that integrate a non-zero current or fire.
    Where every membrane integrates a non-zero current (a layer with biases, the usual case)
    one count over the current settles it; only otherwise are the spikes looked at."""
    steps, batch = spikes.shape[:2]
    size = spikes[0, 0].numel()
    if int(torch.count_nonzero(current)) == current.numel():
        changed = torch.full((steps, batch), float(size), dtype=torch.float64)
    else:
        nonzero = current != 0
        if nonzero.dim() < spikes.dim():  # a static current, the same every step
            nonzero = nonzero.unsqueeze(0)
        changed = (nonzero | (spikes != 0)).reshape(steps, batch, -1).sum(2, dtype=torch.float64)
    if t0 == 0:
        changed[0] = size
    return changed.to(spikes.device)


def run_neuron(sim, node: Node, spec: OpSpec, args: list[Value], chunk: Chunk) -> Value:
    """Integrate and fire over the chunk's steps, in place. The output is spikes (0/1, or
    -1/0/1 for signed neurons) whose amplitude, the threshold, travels as the value's
    scale."""
    arg, steps, t0, state = args[0], chunk.steps, chunk.t0, chunk.state
    params = sim.params[node.name]
    theta = channel(params["threshold"], arg.data)
    current = arg.data if arg.scale is None else arg.data * arg.scale
    # the conv's bias where it was left to this layer, then the layer's own, in that order
    biases = tuple(channel(b, arg.data) for b in (arg.bias, params.get("bias")) if b is not None)
    probe = chunk.probes.get(node.name)
    if probe is not None:  # calibration reads the current the layer integrates
        probe(sum(biases, current) if biases else current)
    shape = tuple(arg.data.shape[1:])
    batch = current.shape[0] if arg.static else current.shape[0] // steps
    if not arg.static:
        current = current.view((steps, batch) + shape)
    # membranes and spikes in the layout of the current (channels-last after a conv)
    nhwc = channels_last(arg.data)
    v = state.get(node.name)
    if v is None:
        v = empty((batch,) + shape, nhwc, arg.data)
        v.copy_((node.attrs["v0"] * theta).expand((batch,) + shape))
        if "potential" in params:
            v.add_(channel(params["potential"], arg.data))
    spikes = empty((steps, batch) + shape, nhwc, v)
    kind, attrs = sim.kinds[node.name], node.attrs
    threshold = sim.scalar_threshold.get(node.name, theta)  # a float: no wait for the GPU
    fused = sim.fused and kind.fused is not None
    ran_fused = fused and kind.fused(v, current, arg.static, threshold, biases, spikes, attrs)
    if not ran_fused:
        for b in biases:
            current = current + b
        kind.steps(v, current, arg.static, theta, threshold, spikes, attrs, state, node.name)
    if chunk.counts.traffic:
        if ran_fused and biases:  # the kernel added them; the count needs the whole current
            current = sum(biases, current)
        changes = membrane_changes(current, spikes, t0)
        chunk.counts.add("membrane_updates", node.name, t0, changes)
    state[node.name] = v
    if node.name in chunk.recorded:
        chunk.recorded[node.name].append(spikes)
    flat = spikes.flatten(0, 1)
    # binary spikes are their own events (the same tensor: what is_spikes checks)
    binary = kind.spikes == "binary"
    if not chunk.counts.kept:  # signed spikes' events only where a later op asks for them
        if binary:
            return Value(flat, False, events=flat, scale=theta)
        return Value(flat, False, make_events=lambda: kind.events(flat), scale=theta)
    events = kind.events(spikes)
    # The sum over channels comes first and is kept: it is what the layers receiving these
    # spikes need to count their synops.
    per_position = events.sum(2)
    chunk.counts.add("spikes", node.name, t0, per_position.view(steps, batch, -1).sum(2))
    return Value(
        flat,
        False,
        events=flat if binary else events.flatten(0, 1),
        scale=theta,
        channel_events=per_position.flatten(0, 1),
    )
