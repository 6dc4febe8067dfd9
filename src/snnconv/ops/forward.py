"""The ANN forward pass, shape inference and MAC counts, all through the op specs.

The ANN forward pass is the reference the whole pipeline is measured against: calibration
reads activations from it and the loader checks it against onnxruntime.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch

from snnconv.graph import BLOCK_OPS, Graph, GraphError, Node, all_nodes, unroll
from snnconv.ops.spec import SPECS, spec_of


def run_node(node: Node, inputs: list[torch.Tensor]) -> torch.Tensor:
    """Apply one op to analog values; spiking ops have no such meaning and are refused."""
    spec = SPECS.get(node.op)
    if spec is None or spec.ann is None:
        raise GraphError(f"node {node.name!r}: op {node.op!r} has no ANN meaning")
    return spec.ann(node, inputs)


def params_on(graph: Graph, device: str | torch.device) -> Graph:
    """A copy of ``graph`` whose parameters are torch tensors on ``device``. The kernels take
    numpy parameters as they come, which costs nothing on CPU but is an upload of every
    weight per call on a GPU: ``ann_forward`` on such a copy uploads none."""
    g = graph.copy()
    for n in all_nodes(g.nodes):
        n.params = {k: torch.as_tensor(v, device=device) for k, v in n.params.items()}
    return g


@torch.no_grad()
def ann_forward(
    graph: Graph, x: torch.Tensor, keep: Iterable[str] | None = None
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Run the ANN on a batch; return its output and the activations named in ``keep``.

    BackRes blocks run unrolled: ``keep`` may name a pass's node (``name#r``) or a backres
    node (its output after the last pass)."""
    graph = unroll(graph)
    wanted: dict[str, list[str]] = {}
    for k in keep or ():
        wanted.setdefault(graph.aliases.get(k, k), []).append(k)
    values: dict[str, torch.Tensor] = {graph.input_name: x}
    last_use = last_uses(graph)
    kept: dict[str, torch.Tensor] = {}
    for i, node in enumerate(graph.nodes):
        values[node.name] = run_node(node, [values[n] for n in node.inputs])
        for k in wanted.get(node.name, ()):
            kept[k] = values[node.name]
        for name in set(node.inputs):  # a node may read one input twice (x + x)
            if last_use.get(name) == i and name != graph.output:
                del values[name]
    return values[graph.output], kept


def last_uses(graph: Graph) -> dict[str, int]:
    """Per value, the position of the last node that reads it (when it can be freed)."""
    last: dict[str, int] = {}
    for i, node in enumerate(graph.nodes):
        for name in node.inputs:
            last[name] = i
    return last


def shaped(node: Node, inputs: list[torch.Tensor]) -> torch.Tensor:
    """The op's shape rule on (meta) tensors: spiking ops take the shape of their ANN twin."""
    return spec_of(node).shape_of(node, inputs)


def infer_shapes(graph: Graph) -> dict[str, tuple[int, ...]]:
    """Per-sample output shape of every node, computed without allocating data.

    With BackRes blocks: every unrolled node (``name#r``), every backres node and every body
    node (its shape in pass 1) has an entry."""
    top = graph
    graph = unroll(graph)
    x = torch.zeros((1,) + tuple(graph.input_shape), device="meta")
    shapes = {graph.input_name: tuple(graph.input_shape)}
    values = {graph.input_name: x}
    for node in graph.nodes:
        inputs = [values[n] for n in node.inputs]
        try:
            out = shaped(node, inputs)
        except (RuntimeError, ValueError) as e:
            shapes_in = [tuple(v.shape[1:]) for v in inputs]
            raise GraphError(
                f"node {node.name!r} ({node.op}): cannot apply to input shape(s) {shapes_in}: {e}"
            ) from None
        values[node.name] = out
        shapes[node.name] = tuple(out.shape[1:])
    for node in top.nodes:
        if node.op in BLOCK_OPS:  # its value is that of its last pass
            _block_shapes(node, graph, shapes)
    return shapes


def _block_shapes(node: Node, graph: Graph, shapes: dict) -> None:
    shapes[node.name] = shapes[graph.aliases[node.name]]
    if shapes[node.name] != shapes[node.inputs[0]]:
        raise GraphError(
            f"node {node.name!r} (backres): its block maps shape "
            f"{shapes[node.inputs[0]]} to {shapes[node.name]}; a block run repeatedly "
            "must keep its input shape"
        )
    for b in node.attrs["body"]:
        shapes[b.name] = shapes[f"{b.name}#1"]


def macs(graph: Graph, shapes: dict[str, tuple[int, ...]] | None = None) -> dict[str, int]:
    """Multiply-accumulates per image of each synaptic node (conv, linear).

    BackRes bodies count once per pass: keys are the unrolled names (``name#r``)."""
    shapes = shapes or infer_shapes(graph)
    out: dict[str, int] = {}
    for node in unroll(graph).nodes:
        if spec_of(node).engine == "synaptic":
            fan_in = int(np.prod(node.params["weight"].shape[1:]))
            out[node.name] = fan_in * int(np.prod(shapes[node.name]))
    return out
