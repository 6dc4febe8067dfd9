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
        to_snn = _TO_SNN.get(n.op)
        if to_snn is not None:
            nodes[i] = to_snn(n, threshold, neuron_attrs)


def _neuron(n: Node, threshold, neuron_attrs: dict) -> Node:
    attrs = dict(neuron_attrs)
    if n.attrs.get("max") is not None:  # a clip's bound, which the ANN twin gets back
        attrs["clip_max"] = float(n.attrs["max"])
    return Node(n.name, "if_neuron", n.inputs, attrs, {"threshold": threshold(n.name)})


def _qcfs_neuron(n: Node, threshold, neuron_attrs: dict) -> Node:
    """A prepared layer's neuron keeps L and λ, so its ANN twin is the QCFS layer again
    (whatever calibration does to the threshold afterwards)."""
    neuron = _neuron(n, threshold, neuron_attrs)
    neuron.attrs["qcfs_levels"] = int(n.attrs["levels"])
    neuron.attrs["qcfs_threshold"] = tuple(float(v) for v in np.ravel(n.params["threshold"]))
    return neuron


def _gate(n: Node, threshold, neuron_attrs: dict) -> Node:
    return Node(n.name, "maxpool_gate", n.inputs, dict(n.attrs))


def _block(n: Node, threshold, neuron_attrs: dict) -> Node:
    repeats = n.attrs["repeats"]

    def per_pass(name: str) -> np.ndarray:
        rows = [np.ravel(threshold(f"{name}#{r}")) for r in range(1, repeats + 1)]
        width = max(len(row) for row in rows)
        return np.stack([np.broadcast_to(row, (width,)) for row in rows]).astype(np.float32)

    _place(n.attrs["body"], per_pass, neuron_attrs)
    return n


#: What each ANN op becomes in the SNN (ops not named stay as they are).
_TO_SNN = {
    **dict.fromkeys(ACTIVATION_OPS, _neuron),
    "qcfs": _qcfs_neuron,
    "maxpool": _gate,
    "backres": _block,
}


def to_ann(snn: Graph) -> Graph:
    """The ANN an SNN was converted from (after batch-norm folding): neurons become the
    activations they replaced, gates become max pools, hybrid boundaries vanish."""
    g = snn.copy()
    _drop_boundaries(g)
    _unplace(g.nodes)
    return g


def _unplace(nodes: list[Node]) -> None:
    for i, n in enumerate(nodes):
        to_ann = _TO_ANN.get(n.op)
        if to_ann is not None:
            nodes[i] = to_ann(n)


def _activation(n: Node) -> Node:
    levels = n.attrs.get("qcfs_levels")
    if levels is not None:
        lam = np.asarray(n.attrs["qcfs_threshold"], np.float32)
        return Node(n.name, "qcfs", n.inputs, {"levels": levels}, {"threshold": lam})
    clip_max = n.attrs.get("clip_max")
    if clip_max is None:
        return Node(n.name, "relu", n.inputs)
    return Node(n.name, "clip", n.inputs, {"min": 0.0, "max": clip_max})


def _unplace_block(n: Node) -> Node:
    _unplace(n.attrs["body"])
    return n


#: What each SNN op was in the ANN.
_TO_ANN = {
    "if_neuron": _activation,
    "maxpool_gate": lambda n: Node(n.name, "maxpool", n.inputs, dict(n.attrs)),
    "backres": _unplace_block,
}


def _drop_boundaries(g: Graph) -> None:
    """A hybrid net's boundary is the identity in the ANN: its consumers read its input."""
    for b in [n for n in g.nodes if n.op == "hybrid_boundary"]:
        for n in g.nodes:
            n.inputs = [b.inputs[0] if i == b.name else i for i in n.inputs]
        if g.output == b.name:
            g.output = b.inputs[0]
    g.nodes = [n for n in g.nodes if n.op != "hybrid_boundary"]
