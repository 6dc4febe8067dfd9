"""Synaptic ops, ``conv`` and ``linear``: weights; MACs on analog values, synops on spikes.

A spike at an input position reaches ``fanout`` targets; the engine counts synops as spike
events times that fan-out, exactly, border effects included.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from snnconv.graph import Node
from snnconv.ops import kernels
from snnconv.ops.spec import OpSpec, register


def _ints(v) -> list[int]:
    return [int(x) for x in v]


def _conv_synapse(node: Node, x, weight, bias) -> torch.Tensor:
    return kernels.conv(node, x, weight, bias, with_bias=bias is not None)


def _conv_scale(node: Node, w: torch.Tensor, per_input: torch.Tensor) -> torch.Tensor:
    groups, co, ci = node.attrs["groups"], w.shape[0], w.shape[1]
    per_input = per_input.expand(groups * ci) if per_input.numel() == 1 else per_input
    grouped = w.view(groups, co // groups, ci, *w.shape[2:])
    return (grouped * per_input.view(groups, 1, ci, 1, 1)).view(w.shape)


def _conv_fanout(node: Node, in_shape: tuple[int, ...], device) -> torch.Tensor:
    """Counted as the gradient of the summed output of an all-ones kernel: a spike at input
    position p reaches (out channels / groups) x (the output positions whose window covers p)
    targets, fewer at borders and with strides."""
    x = torch.zeros((1,) + tuple(in_shape), dtype=torch.float64, requires_grad=True)
    w = torch.ones(node.params["weight"].shape, dtype=torch.float64)
    with torch.enable_grad():
        kernels.conv(node, x, weight=w, bias=None).sum().backward()
    return x.grad.reshape(-1).to(device)


def _conv_reach(node: Node, channel_events: torch.Tensor) -> torch.Tensor | None:
    """With one group, an output position is reached when an event falls in its window, and
    then all its output channels are: a max over each window of the event mask."""
    a = node.attrs
    if int(a["groups"]) != 1:
        return None
    w = node.params["weight"]
    top, left, bottom, right = (int(p) for p in a["padding"])
    hit = F.pad((channel_events > 0).to(torch.float32).unsqueeze(1), (left, right, top, bottom))
    covered = F.max_pool2d(hit, tuple(w.shape[2:]), a["stride"], 0, a["dilation"]) > 0
    return covered.flatten(1).sum(1, dtype=torch.float64) * w.shape[0]


def _linear_reach(node: Node, channel_events: torch.Tensor) -> torch.Tensor:
    out_features = node.params["weight"].shape[0]
    return (channel_events.reshape(len(channel_events), -1).sum(1) > 0).double() * out_features


def _write_conv(w, n: Node) -> None:
    a = n.attrs
    w.emit(
        n,
        "Conv",
        [n.inputs[0], w.param(n, "weight"), w.param(n, "bias")],
        kernel_shape=_ints(n.params["weight"].shape[2:]),
        strides=_ints(a["stride"]),
        pads=_ints(a["padding"]),
        dilations=_ints(a["dilation"]),
        group=int(a["groups"]),
    )


def _linear_fanout(node: Node, in_shape: tuple[int, ...], device) -> torch.Tensor:
    out_features = node.params["weight"].shape[0]
    size = int(torch.Size(in_shape).numel())
    return torch.full((size,), float(out_features), dtype=torch.float64, device=device)


def _write_linear(w, n: Node) -> None:
    w.emit(n, "Gemm", [n.inputs[0], w.param(n, "weight"), w.param(n, "bias")], transB=1)


register(
    OpSpec(
        "conv",
        ann=lambda n, xs: kernels.conv(n, xs[0]),
        write=_write_conv,
        engine="synaptic",
        synapse=_conv_synapse,
        scale_weight=_conv_scale,
        fanout=_conv_fanout,
        reach=_conv_reach,
        channels_last=True,
        bias_to_neuron=True,
    )
)
register(
    OpSpec(
        "linear",
        ann=lambda n, xs: kernels.linear(n, xs[0]),
        write=_write_linear,
        engine="synaptic",
        synapse=lambda n, x, weight, bias: F.linear(x, weight, bias),
        scale_weight=lambda n, w, per_input: w * per_input.reshape(1, -1),
        fanout=_linear_fanout,
        reach=_linear_reach,
    )
)
