"""Fold per-channel affine ops (batch norm) into the conv or linear layer before them."""

from __future__ import annotations

import numpy as np

from snnconv.graph import BLOCK_OPS, SYNAPTIC_OPS, Graph, Node


def fold_affine(graph: Graph) -> Graph:
    """Return a graph where every affine that directly follows a conv/linear with no other
    consumer is merged into that layer's weights and bias. Other affines stay as they are.

    A BackRes body is folded as its own graph, once: its weights are shared by every pass, so
    folding per pass would scale them R times."""
    g = graph.copy()
    g.nodes, g.output = _fold_nodes(g.nodes, g.output)
    return g


def _fold_nodes(nodes: list[Node], output: str) -> tuple[list[Node], str]:
    by_name = {n.name: n for n in nodes}
    removed: dict[str, str] = {}  # folded affine name -> the layer that absorbed it
    for node in nodes:
        node.inputs = [removed.get(i, i) for i in node.inputs]
        if node.op in BLOCK_OPS:
            node.attrs["body"] = _fold_body(node.attrs["body"], removed)
            continue
        if node.op != "affine":
            continue
        producer = by_name.get(node.inputs[0])
        if producer is None or producer.op not in SYNAPTIC_OPS:
            continue
        consumers = [n for n in nodes if producer.name in n.inputs]
        if len(consumers) != 1 or producer.name == output:
            continue
        _absorb(producer, node)
        removed[node.name] = producer.name
    return [n for n in nodes if n.name not in removed], removed.get(output, output)


def _fold_body(body: list[Node], outer_removed: dict[str, str]) -> list[Node]:
    """A body folded on its own; its output (the last node) stays last."""
    for b in body:
        b.inputs = [outer_removed.get(i, i) for i in b.inputs]
    folded, out = _fold_nodes(body, body[-1].name)
    last = next(n for n in folded if n.name == out)
    # The absorbing layer fed only the removed output affine, so nothing after it reads it.
    return [n for n in folded if n is not last] + [last]


def _absorb(layer: Node, affine: Node) -> None:
    scale = affine.params["scale"].astype(np.float64)
    shift = affine.params["shift"].astype(np.float64)
    w = layer.params["weight"].astype(np.float64)
    b = layer.params["bias"].astype(np.float64)
    shape = (-1,) + (1,) * (w.ndim - 1)
    layer.params["weight"] = (w * scale.reshape(shape)).astype(np.float32)
    layer.params["bias"] = (b * scale + shift).astype(np.float32)
