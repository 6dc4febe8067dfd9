"""Replace activations by integrate-and-fire neurons, and back (the SNN's ANN twin)."""

from __future__ import annotations

import numpy as np

from snnconv.graph import ACTIVATION_OPS, Graph, Node

RESETS = ("subtract", "zero")


def to_neurons(
    graph: Graph, thresholds: dict[str, np.ndarray], reset: str = "subtract", v0: float = 0.5
) -> Graph:
    """Every relu/clip becomes an ``if_neuron`` with its calibrated threshold; every max pool
    becomes a ``maxpool_gate``. The output layer stays non-spiking: it accumulates."""
    g = graph.copy()
    for i, n in enumerate(g.nodes):
        if n.op in ACTIVATION_OPS:
            attrs = {"reset": reset, "v0": float(v0)}
            if n.op == "clip" and n.attrs.get("max") is not None:
                attrs["clip_max"] = float(n.attrs["max"])
            g.nodes[i] = Node(
                n.name, "if_neuron", n.inputs, attrs, {"threshold": thresholds[n.name]}
            )
        elif n.op == "maxpool":
            g.nodes[i] = Node(n.name, "maxpool_gate", n.inputs, dict(n.attrs))
    return g


def to_ann(snn: Graph) -> Graph:
    """The ANN an SNN was converted from (after batch-norm folding): neurons become the
    activations they replaced, gates become max pools, hybrid boundaries vanish."""
    g = snn.copy()
    _drop_boundaries(g)
    for i, n in enumerate(g.nodes):
        if n.op == "if_neuron":
            clip_max = n.attrs.get("clip_max")
            if clip_max is None:
                g.nodes[i] = Node(n.name, "relu", n.inputs)
            else:
                g.nodes[i] = Node(n.name, "clip", n.inputs, {"min": 0.0, "max": clip_max})
        elif n.op == "maxpool_gate":
            g.nodes[i] = Node(n.name, "maxpool", n.inputs, dict(n.attrs))
    return g


def _drop_boundaries(g: Graph) -> None:
    """A hybrid net's boundary is the identity in the ANN: its consumers read its input."""
    for b in [n for n in g.nodes if n.op == "hybrid_boundary"]:
        for n in g.nodes:
            n.inputs = [b.inputs[0] if i == b.name else i for i in n.inputs]
        if g.output == b.name:
            g.output = b.inputs[0]
    g.nodes = [n for n in g.nodes if n.op != "hybrid_boundary"]
