"""Replace activations by integrate-and-fire neurons, and back (the SNN's ANN twin)."""

from __future__ import annotations

import numpy as np

from snnconv import neurons
from snnconv.graph import ACTIVATION_OPS, Graph, Node

RESETS = ("subtract", "zero")
#: The neuron kinds (``snnconv.neurons``): ``if``, spikes 0/1; ``signed``, a neuron may also
#: emit -1, to take back a spike it has emitted.
NEURONS = neurons.names()


def to_neurons(
    graph: Graph,
    thresholds: dict[str, np.ndarray],
    reset: str = "subtract",
    v0: float = 0.5,
    neuron: str = "if",
) -> Graph:
    """Every relu/clip becomes an ``if_neuron`` with its calibrated threshold; every max pool
    becomes a ``maxpool_gate``. The output layer stays non-spiking: it accumulates.

    In a BackRes body, activation ``n`` gets one threshold per pass, ``thresholds["n#r"]``
    (what ``calibrate`` measures on the unrolled ANN), stacked as [R, 1] or [R, C]."""
    g = graph.copy()
    attrs = {"reset": reset, "v0": float(v0)} | neurons.marks(neuron)
    _place(g.nodes, lambda name: thresholds[name], attrs)
    return g


def _place(nodes: list[Node], threshold, neuron_attrs: dict) -> None:
    for i, n in enumerate(nodes):
        if n.op in ACTIVATION_OPS:
            attrs = dict(neuron_attrs)
            if n.op == "clip" and n.attrs.get("max") is not None:
                attrs["clip_max"] = float(n.attrs["max"])
            nodes[i] = Node(n.name, "if_neuron", n.inputs, attrs, {"threshold": threshold(n.name)})
        elif n.op == "maxpool":
            nodes[i] = Node(n.name, "maxpool_gate", n.inputs, dict(n.attrs))
        elif n.op == "backres":
            repeats = n.attrs["repeats"]

            def per_pass(name: str, repeats: int = repeats) -> np.ndarray:
                rows = [np.ravel(threshold(f"{name}#{r}")) for r in range(1, repeats + 1)]
                width = max(len(row) for row in rows)
                return np.stack([np.broadcast_to(row, (width,)) for row in rows]).astype(np.float32)

            _place(n.attrs["body"], per_pass, neuron_attrs)


def to_ann(snn: Graph) -> Graph:
    """The ANN an SNN was converted from (after batch-norm folding): neurons become the
    activations they replaced, gates become max pools, hybrid boundaries vanish."""
    g = snn.copy()
    _drop_boundaries(g)
    _unplace(g.nodes)
    return g


def _unplace(nodes: list[Node]) -> None:
    for i, n in enumerate(nodes):
        if n.op == "backres":
            _unplace(n.attrs["body"])
        elif n.op == "if_neuron":
            clip_max = n.attrs.get("clip_max")
            if clip_max is None:
                nodes[i] = Node(n.name, "relu", n.inputs)
            else:
                nodes[i] = Node(n.name, "clip", n.inputs, {"min": 0.0, "max": clip_max})
        elif n.op == "maxpool_gate":
            nodes[i] = Node(n.name, "maxpool", n.inputs, dict(n.attrs))


def _drop_boundaries(g: Graph) -> None:
    """A hybrid net's boundary is the identity in the ANN: its consumers read its input."""
    for b in [n for n in g.nodes if n.op == "hybrid_boundary"]:
        for n in g.nodes:
            n.inputs = [b.inputs[0] if i == b.name else i for i in n.inputs]
        if g.output == b.name:
            g.output = b.inputs[0]
    g.nodes = [n for n in g.nodes if n.op != "hybrid_boundary"]
