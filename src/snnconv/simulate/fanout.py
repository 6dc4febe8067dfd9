"""Fan-out maps: how many synapses each input position of a conv or linear layer reaches.

A spike at input position p of a conv reaches (out channels / groups) x (the output positions
whose window covers p) targets; at image borders and with strides that number varies, so it is
counted exactly, once per layer, as the gradient of the summed output of an all-ones kernel.
"""

from __future__ import annotations

import torch

from snnconv import ops
from snnconv.graph import Node


def fanout(node: Node, in_shape: tuple[int, ...], device: torch.device) -> torch.Tensor:
    """Per-input-position fan-out of ``node``, flattened (float64 so sums stay exact)."""
    if node.op == "linear":
        out_features = node.params["weight"].shape[0]
        return torch.full(
            (int(torch.Size(in_shape).numel()),),
            float(out_features),
            dtype=torch.float64,
            device=device,
        )
    x = torch.zeros((1,) + tuple(in_shape), dtype=torch.float64, requires_grad=True)
    w = torch.ones(node.params["weight"].shape, dtype=torch.float64)
    with torch.enable_grad():
        ops.conv(node, x, weight=w, bias=None).sum().backward()
    return x.grad.reshape(-1).to(device)
