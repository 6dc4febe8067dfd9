"""What a model holds, as plain data: layers, shapes, parameters, MACs, depth (``inspect``)."""

from __future__ import annotations

import numpy as np

from snnconv import ops
from snnconv.deployment import recorded
from snnconv.graph import SYNAPTIC_OPS, Graph, all_nodes, unroll


def _params(n) -> int:
    return int(sum(p.size for k, p in n.params.items() if k != "threshold"))


def depth(graph: Graph) -> dict:
    """Weighted (conv, linear) layers stored vs executed, and the parameters BackRes saves
    against the unrolled network."""
    flat = unroll(graph)
    stored = sum(n.op in SYNAPTIC_OPS for n in all_nodes(graph.nodes))
    executed = sum(n.op in SYNAPTIC_OPS for n in flat.nodes)
    params, unrolled = graph.param_count(), sum(_params(n) for n in flat.nodes)
    return {
        "physical_depth": stored,
        "logical_depth": executed,
        "params_unrolled": unrolled,
        "params_saved": unrolled - params,
    }


def describe(graph: Graph) -> dict:
    """The facts ``inspect`` prints, as plain data (also its JSON)."""
    shapes = ops.infer_shapes(graph)
    macs = ops.macs(graph, shapes)
    nodes = []
    for n in graph:
        row = {
            "name": n.name,
            "op": n.op,
            "inputs": n.inputs,
            "shape": list(shapes[n.name]),
            "params": _params(n),
            "macs": macs.get(n.name, 0),
        }
        if n.op == "backres":
            body = n.attrs["body"]
            passes = [f"{b.name}#{r}" for b in body for r in range(1, n.attrs["repeats"] + 1)]
            row["params"] = sum(_params(b) for b in body)
            row["macs"] = sum(macs.get(p, 0) for p in passes)
            row["repeats"] = n.attrs["repeats"]
            row["mode"] = n.attrs["mode"]
            row["body"] = [{"name": b.name, "op": b.op, "inputs": b.inputs} for b in body]
        if "threshold" in n.params:
            row["threshold"] = [float(v) for v in np.ravel(n.params["threshold"])]
        nodes.append(row)
    meta = graph.metadata
    facts = {"deployment": recorded(graph)} if graph.is_snn else {}
    return {
        "kind": "snn" if graph.is_snn else "ann",
        "input_shape": list(graph.input_shape),
        "output": graph.output,
        "nodes": nodes,
        "params": graph.param_count(),
        "macs_per_image": int(sum(macs.values())),
        **depth(graph),
        "verification": {k: v for k, v in meta.items() if k.startswith("verify_")},
        "metadata": dict(meta),
        **facts,
    }
