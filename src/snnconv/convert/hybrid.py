"""Hybrid ANN-SNN networks: a spiking front, an ANN back (Panda, Aketi & Roy 2020).

The cut goes after one node of a converted SNN. Everything after it becomes the ANN again
(neurons back to their activations, gates back to max pools) and reads, through a
``hybrid_boundary`` node, the running mean of what crosses the cut: the rate x threshold of
spikes (mode "rate"), or the mean input current of a boundary layer that does not fire
(mode "membrane", the activation then applied by the ANN part).
"""

from __future__ import annotations

import json

from snnconv.convert.neurons import to_ann
from snnconv.errors import InputError, UnsupportedOpsError
from snnconv.graph import ANN_ONLY_OPS, SYNAPTIC_OPS, Graph, Node

BOUNDARIES = ("rate", "membrane")


def cut_points(snn: Graph) -> list[str]:
    """Names after which exactly one tensor crosses to the rest of the graph (the graph input
    first: cutting there makes the whole network an ANN)."""
    producers = [snn.input_name] + [n.name for n in snn.nodes]
    last_use: dict[str, int] = {}
    for i, node in enumerate(snn.nodes):
        for name in node.inputs:
            last_use[name] = i
    points = []
    for i, name in enumerate(producers[:-1]):
        # node i-1 in snn.nodes is producers[i]; live tensors: produced at <= i, used after
        live = [p for p in producers[: i + 1] if last_use.get(p, -1) >= i]
        if live == [name]:
            points.append(name)
    return points


def cut_for_ann_layers(snn: Graph, ann_layers: int, boundary: str = "rate") -> str:
    """The latest cut that leaves the last ``ann_layers`` weighted layers in the ANN part
    (for a membrane boundary: the latest such cut right after a neuron layer)."""
    synaptic = [n for n in snn if n.op in SYNAPTIC_OPS]
    if not 1 <= ann_layers <= len(synaptic):
        raise InputError(
            f"--ann-layers {ann_layers}: the model has {len(synaptic)} weighted layers; "
            f"give 1..{len(synaptic)}"
        )
    first_ann = synaptic[-ann_layers]
    index = snn.nodes.index(first_ann)
    points = cut_points(snn)
    candidates = [p for p in points if p == snn.input_name or _index(snn, p) < index]
    if boundary == "membrane":
        candidates = [
            p for p in candidates if p != snn.input_name and snn.node(p).op == "if_neuron"
        ]
        if not candidates:
            raise InputError(
                f"--ann-layers {ann_layers} --boundary membrane: no neuron layer "
                "before those layers to use as the boundary"
            )
    return candidates[-1]


def _index(snn: Graph, name: str) -> int:
    return next(i for i, n in enumerate(snn.nodes) if n.name == name)


def make_hybrid(snn: Graph, after: str, boundary: str = "rate") -> Graph:
    """The hybrid network that spikes up to ``after`` (a node name, or the graph input) and is
    an ANN from there on."""
    if boundary not in BOUNDARIES:
        raise InputError(f"--boundary must be one of {', '.join(BOUNDARIES)}, got {boundary!r}")
    points = cut_points(snn)
    if after not in points:
        raise InputError(
            f"cannot cut the network after {after!r}: "
            + (
                "no such node. "
                if after not in {n.name for n in snn}
                else "more than one tensor crosses there (inside a residual block?). "
            )
            + f"Valid cuts: {', '.join(points)}"
        )
    cut = -1 if after == snn.input_name else _index(snn, after)
    head = snn.nodes[: cut + 1]
    tail_graph = to_ann(Graph(snn.nodes[cut + 1 :], snn.input_name, snn.input_shape, snn.output))
    tail = tail_graph.nodes
    if boundary == "membrane":
        neuron = head[-1] if head else None
        if neuron is None or neuron.op != "if_neuron":
            raise InputError(
                f"--boundary membrane needs the cut right after a neuron layer; {after!r} is "
                f"{'the input' if neuron is None else 'a ' + neuron.op}"
            )
        relu = to_ann(Graph([neuron], snn.input_name, snn.input_shape, neuron.name)).nodes[0]
        gate = Node(
            f"{neuron.name}/boundary", "hybrid_boundary", list(neuron.inputs), {"mode": "membrane"}
        )
        relu.inputs = [gate.name]
        nodes = head[:-1] + [gate, relu] + tail
    else:
        gate = Node(f"{after}/boundary", "hybrid_boundary", [after], {"mode": "rate"})
        for node in tail:
            node.inputs = [gate.name if i == after else i for i in node.inputs]
        nodes = head + [gate] + tail
    output = gate.name if snn.output == after and boundary == "rate" else snn.output
    meta = {**snn.metadata, "snnconv.hybrid": json.dumps({"after": after, "boundary": boundary})}
    hybrid = Graph(nodes, snn.input_name, snn.input_shape, output, meta)
    hybrid.validate()
    return hybrid


def refuse_ann_only_ops(snn: Graph) -> None:
    """Ops with no spiking meaning (sigmoid, softmax, LRN) must sit in the ANN part; name
    each one left in the spiking part and the cut that would keep them all in the ANN."""
    boundary = next(
        (i for i, n in enumerate(snn.nodes) if n.op == "hybrid_boundary"), len(snn.nodes)
    )
    bad = [n for n in snn.nodes[:boundary] if n.op in ANN_ONLY_OPS]
    if not bad:
        return
    first = snn.nodes.index(bad[0])
    cuts = [p for p in cut_points(snn) if p == snn.input_name or _index(snn, p) < first]
    raise UnsupportedOpsError(
        [(n.name, n.op) for n in bad],
        hint=f"These ops have no spiking form. Keep them in the ANN part of a hybrid network: "
        f"--hybrid-after {cuts[-1]!r} (the latest cut before them), or replace them in the "
        "model before export.",
    )
