"""Max pooling in an SNN: put it after the neurons, then gate it, replace it by averaging, or
build it from relus (``max(a, b) = a + relu(b - a)``), which become IF neurons NIR expresses."""

from __future__ import annotations

import numpy as np

from snnconv.graph import ACTIVATION_OPS, Graph, Node


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
            _to_avg(n)
    return g


def _to_avg(n: Node) -> None:
    if any(d != 1 for d in n.attrs.get("dilation", (1, 1))):
        return
    n.op = "avgpool"
    n.attrs = {
        "kernel": n.attrs["kernel"],
        "stride": n.attrs["stride"],
        "padding": n.attrs["padding"],
        "ceil_mode": n.attrs.get("ceil_mode", False),
        "count_include_pad": False,
    }


def maxpool_to_relu(graph: Graph) -> Graph:
    """Replace every unpadded 2x2, stride-2 max pool by the same function built from depthwise
    convs, adds and relus: ``max(p0, p1, p2, p3) = m01 + relu(m23 - m01)`` with
    ``m01 = p0 + relu(p1 - p0)``, ``m23 = p2 + relu(p3 - p2)``. Conversion turns the three
    relus into IF neurons, so the SNN computes the max of rates with nodes NIR has. Other max
    pools become average pools."""
    g = graph.copy()
    nodes: list[Node] = []
    for n in g.nodes:
        if n.op == "maxpool" and not _relu_tree_fits(n):
            _to_avg(n)
        nodes += _relu_tree(n, g) if n.op == "maxpool" else [n]
    g.nodes = nodes
    return g


def _relu_tree_fits(n: Node) -> bool:
    a = n.attrs
    return (
        tuple(a["kernel"]) == (2, 2)
        and tuple(a["stride"]) == (2, 2)
        and not any(a["padding"])
        and not a.get("ceil_mode")
        and all(d == 1 for d in a.get("dilation", (1, 1)))
    )


def _relu_tree(pool: Node, g: Graph) -> list[Node]:
    from snnconv import ops

    channels = ops.infer_shapes(g)[pool.inputs[0]][0]
    x, name = pool.inputs[0], pool.name

    def tap(*pairs: tuple[int, float]) -> np.ndarray:  # a 2x2 kernel from (position, weight)
        k = np.zeros(4, np.float32)
        for pos, w in pairs:
            k[pos] = w
        return k.reshape(2, 2)

    def depthwise(suffix: str, src: str, kernels: list[np.ndarray], stride: int) -> Node:
        per = np.stack(kernels)[:, None]  # [outputs per channel, 1, kh, kw]
        weight = np.tile(per, (channels, 1, 1, 1))
        attrs = {
            "stride": (stride, stride),
            "padding": (0, 0, 0, 0),
            "dilation": (1, 1),
            "groups": channels,
        }
        params = {"weight": weight, "bias": np.zeros(len(weight), np.float32)}
        return Node(f"{name}/{suffix}", "conv", [src], attrs, params)

    def pairwise(suffix: str, src: str, pick: tuple[float, float]) -> Node:
        """A 1x1 depthwise conv from the 2C relu outputs (two per channel) to C."""
        weight = np.tile(np.array(pick, np.float32).reshape(1, 2, 1, 1), (channels, 1, 1, 1))
        attrs = {"stride": (1, 1), "padding": (0, 0, 0, 0), "dilation": (1, 1), "groups": channels}
        params = {"weight": weight, "bias": np.zeros(channels, np.float32)}
        return Node(f"{name}/{suffix}", "conv", [src], attrs, params)

    diffs = depthwise("diffs", x, [tap((0, -1), (1, 1)), tap((2, -1), (3, 1))], 2)
    relu1 = Node(f"{name}/relu_pairs", "relu", [diffs.name])
    across = depthwise("across", x, [tap((0, -1), (2, 1))], 2)
    gap = pairwise("gap", relu1.name, (-1.0, 1.0))
    between = Node(f"{name}/between", "add", [across.name, gap.name])
    relu2 = Node(f"{name}/relu_max", "relu", [between.name])
    first = depthwise("first", x, [tap((0, 1))], 2)
    lift = pairwise("lift", relu1.name, (1.0, 0.0))
    out = Node(name, "add", [first.name, lift.name, relu2.name])
    return [diffs, relu1, across, gap, between, relu2, first, lift, out]


def gated(rule: str):
    """The pass that keeps the max pools, marked with the rule of the gates they become
    (``snnconv.simulate.gate_rules``)."""

    def mark(graph: Graph) -> Graph:
        g = graph.copy()
        for n in g.nodes:
            if n.op == "maxpool":
                n.attrs = {**n.attrs, "rule": rule}
        return g

    return mark


#: --maxpool modes: the ANN pass each applies before neurons are placed ("gate" and "winner"
#: keep the max pools, which become gates with that rule).
MAXPOOL_PASSES = {
    "gate": gated("max_count"),
    "winner": gated("winner"),
    "avg": maxpool_to_avg,
    "relu": maxpool_to_relu,
}
MAXPOOL_MODES = tuple(MAXPOOL_PASSES)
