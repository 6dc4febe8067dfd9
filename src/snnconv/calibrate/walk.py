"""The mechanism every simulate-in-the-loop calibration step shares: a walk through an SNN's
neuron layers, in order, that simulates each part of the net once.

A step that sets layer k (its threshold, bias or initial membrane) leaves every layer before
k as it was, so the walk keeps, per batch of calibration images, the values that cross into
layer k over all T steps (a ``Cut``: the spike trains of the layers before it, the skip path
of a residual block among them). Whatever the step tries on layer k runs from that cut: only
layer k and what follows it. Moving on to layer k + 1 runs once the nodes in between, with
layer k's final parameters. Without it every trial re-ran the whole net from the image, and a
conversion cost layers x trials x the whole net.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import torch

from snnconv.graph import Graph, Node
from snnconv.simulate.engine import OUTPUT, Simulator


class LayerWalk:
    """Walks the neuron layers of a flat SNN graph (no BackRes blocks; ``unroll`` first) on
    images ``x``, ``batch_size`` at a time, simulating ``timesteps`` steps. The graph's
    parameters may change between calls: each call simulates with those in place."""

    def __init__(self, snn: Graph, x: np.ndarray, timesteps: int, batch_size: int = 128):
        self.snn, self.timesteps = snn, timesteps
        xt = torch.as_tensor(x)
        self.sizes = [len(xt[s : s + batch_size]) for s in range(0, len(xt), batch_size)]
        # per batch: the images, until the walk reaches its first layer; then that layer's cut
        self._starts: list = [xt[s : s + batch_size] for s in range(0, len(xt), batch_size)]
        self._names = [n.name for n in snn.nodes]

    def layers(self) -> Iterator[Node]:
        """Each neuron layer in order, the walk standing before it."""
        for neuron in [n for n in self.snn if n.op == "if_neuron"]:
            self._advance(neuron.name)
            yield neuron

    def _advance(self, name: str) -> None:
        sim = Simulator(self.snn)
        self._starts = [sim.run_span(s, self.timesteps, stop=name)[0] for s in self._starts]

    def run_through(
        self, neuron: Node, probe: Callable[[torch.Tensor], None] | None = None
    ) -> Iterator[torch.Tensor]:
        """Simulate from where the walk stands up to neuron layer ``neuron`` (the next one,
        or a later one): its spikes, batch after batch (T*B, ...); ``probe`` is given its
        input current (see ``Simulator.run``'s ``probes``)."""
        end = self._names.index(neuron.name) + 1
        stop = self._names[end] if end < len(self._names) else None
        sim = Simulator(self.snn)
        probes = None if probe is None else {neuron.name: probe}
        for s in self._starts:
            _, rec = sim.run_span(s, self.timesteps, stop, record=[neuron.name], probes=probes)
            yield rec[neuron.name]

    def output_error(self, target: torch.Tensor) -> float:
        """Mean squared error between the SNN's output estimate after T steps and ``target``,
        the ANN's output on the walk's images (N x outputs), with the parameters now in
        place; simulates from the walk's position on."""
        sim, output = Simulator(self.snn), OUTPUT
        total, start = 0.0, 0
        for s, size in zip(self._starts, self.sizes, strict=True):
            _, rec = sim.run_span(s, self.timesteps, record=[output])
            estimate = rec[output][-size:]  # the last step's
            total += float(((estimate - target[start : start + size]) ** 2).sum())
            start += size
        return total / target.numel()
