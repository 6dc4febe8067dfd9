"""Fold per-channel affine ops (batch norm) into the conv or linear layer before them."""

from __future__ import annotations

import numpy as np

from snnconv.graph import Graph, Node


def fold_affine(graph: Graph) -> Graph:
    """Return a graph where every affine that directly follows a conv/linear with no other
    consumer is merged into that layer's weights and bias. Other affines stay as they are."""
    g = graph.copy()
    by_name = {n.name: n for n in g.nodes}
    removed: dict[str, str] = {}  # folded affine name -> the layer that absorbed it
    for node in g.nodes:
        node.inputs = [removed.get(i, i) for i in node.inputs]
        if node.op != "affine":
            continue
        producer = by_name.get(node.inputs[0])
        if producer is None or producer.op not in ("conv", "linear"):
            continue
        if len(g.consumers(producer.name)) != 1 or producer.name == g.output:
            continue
        _absorb(producer, node)
        removed[node.name] = producer.name
    g.nodes = [n for n in g.nodes if n.name not in removed]
    g.output = removed.get(g.output, g.output)
    return g


def _absorb(layer: Node, affine: Node) -> None:
    scale = affine.params["scale"].astype(np.float64)
    shift = affine.params["shift"].astype(np.float64)
    w = layer.params["weight"].astype(np.float64)
    b = layer.params["bias"].astype(np.float64)
    shape = (-1,) + (1,) * (w.ndim - 1)
    layer.params["weight"] = (w * scale.reshape(shape)).astype(np.float32)
    layer.params["bias"] = (b * scale + shift).astype(np.float32)
