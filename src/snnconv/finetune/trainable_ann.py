"""An ANN graph as a differentiable torch module, for ``snnconv prepare``.

The forward pass runs each op's own ANN kernel (``snnconv.ops``), as ``ann_forward`` does, on
the graph unrolled (BackRes passes share their parameters, so a body's weights get the
gradient of every pass) but with every parameter (weights, biases, batch-norm affines left
unfolded, QCFS thresholds) an ``nn.Parameter``; ``to_graph`` hands the trained values back.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from snnconv.graph import Graph, Node, all_nodes, unroll
from snnconv.ops import last_uses, run_node

#: Thresholds are kept at or above this (training could push them to zero or below).
MIN_THRESHOLD = 1e-3


class TrainableAnn(nn.Module):
    """``forward(x)`` is the ANN's output; every parameter of every node trains."""

    def __init__(self, graph: Graph):
        super().__init__()
        graph.validate()
        self.graph = graph.copy()
        self.params = nn.ParameterDict()
        self._keys: dict[tuple[str, str], str] = {}
        by_array: dict[int, str] = {}
        for i, node in enumerate(all_nodes(self.graph.nodes)):
            for k, v in node.params.items():
                key = f"n{i}_{k}"
                self.params[key] = nn.Parameter(torch.tensor(np.asarray(v), dtype=torch.float32))
                self._keys[(node.name, k)] = key
                by_array[id(v)] = key
        flat = unroll(self.graph)  # shares the parameter arrays of the body nodes
        self._flat = flat
        self._param_keys = [{k: by_array[id(v)] for k, v in n.params.items()} for n in flat.nodes]
        self._last_use = last_uses(flat)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = self._flat
        values = {flat.input_name: x}
        for i, (node, keys) in enumerate(zip(flat.nodes, self._param_keys, strict=True)):
            trained = Node(
                node.name,
                node.op,
                node.inputs,
                node.attrs,
                {k: self.params[v] for k, v in keys.items()},
            )
            values[node.name] = run_node(trained, [values[n] for n in node.inputs])
            for name in set(node.inputs):
                if self._last_use.get(name) == i and name != flat.output:
                    del values[name]
        return values[flat.output].flatten(1)

    @torch.no_grad()
    def clamp_thresholds(self) -> None:
        for (_, k), key in self._keys.items():
            if k == "threshold":
                self.params[key].clamp_(min=MIN_THRESHOLD)

    def to_graph(self) -> Graph:
        """The graph with the trained parameters."""
        g = self.graph.copy()
        nodes = {n.name: n for n in all_nodes(g.nodes)}
        for (name, k), key in self._keys.items():
            nodes[name].params[k] = self.params[key].detach().cpu().numpy().astype(np.float32)
        return g
