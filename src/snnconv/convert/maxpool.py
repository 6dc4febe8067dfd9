"""Max pooling in an SNN: put it after the neurons, then gate it or replace it by averaging."""

from __future__ import annotations

from snnconv.graph import ACTIVATION_OPS, Graph, Node

MAXPOOL_MODES = ("gate", "avg")


def pool_after_activation(graph: Graph) -> Graph:
    """Swap ``maxpool -> relu`` into ``relu -> maxpool``.

    Both orders compute the same function (max commutes with a monotone activation), but only
    the second lets the pool act on spikes, which is what the gate needs.
    """
    g = graph.copy()
    index = {n.name: i for i, n in enumerate(g.nodes)}
    for act in list(g.nodes):
        if act.op not in ACTIVATION_OPS:
            continue
        pool = g.node(act.inputs[0]) if act.inputs[0] in index else None
        if pool is None or pool.op != "maxpool" or len(g.consumers(pool.name)) != 1:
            continue
        i, j = index[pool.name], index[act.name]
        new_act = Node(act.name, act.op, list(pool.inputs), dict(act.attrs), dict(act.params))
        new_pool = Node(pool.name, "maxpool", [act.name], dict(pool.attrs))
        for consumer in g.consumers(act.name):
            consumer.inputs = [pool.name if x == act.name else x for x in consumer.inputs]
        g.nodes[i], g.nodes[j] = new_act, new_pool
        if g.output == act.name:
            g.output = pool.name
    return g


def maxpool_to_avg(graph: Graph) -> Graph:
    """Replace every max pool by an average pool of the same window: a different network,
    whose ANN accuracy the report must show instead of the original's."""
    g = graph.copy()
    for n in g.nodes:
        if n.op == "maxpool":
            if any(d != 1 for d in n.attrs.get("dilation", (1, 1))):
                continue
            n.op = "avgpool"
            n.attrs = {
                "kernel": n.attrs["kernel"],
                "stride": n.attrs["stride"],
                "padding": n.attrs["padding"],
                "ceil_mode": n.attrs.get("ceil_mode", False),
                "count_include_pad": False,
            }
    return g
