"""Pooling ops: ``avgpool``, ``global_avgpool``, ``maxpool`` and the SNN's ``maxpool_gate``
(per window, spikes by a rule on the inputs' running counts; see
``snnconv.simulate.gate_rules``). Average pools treat each channel alone,
so a per-channel spike amplitude passes through them, and each spike reaches every pooled
output whose window holds it."""

from __future__ import annotations

import torch

from snnconv.graph import Node
from snnconv.ops import kernels
from snnconv.ops.spec import OpSpec, register
from snnconv.simulate.pooling import window_sum


def _ints(v) -> list[int]:
    return [int(x) for x in v]


def _write_gate(w, n: Node) -> None:
    """A gate's rule (``snnconv.simulate.gate_rules``) is written where it has one."""
    rule = {"rule": n.attrs["rule"]} if "rule" in n.attrs else {}
    w.emit_snn(n, "MaxPoolGate", [n.inputs[0]], **pool_attrs(n.attrs, True), **rule)


def pool_attrs(a: dict, dilation: bool) -> dict:
    """A pooling node's ONNX attributes."""
    out = dict(
        kernel_shape=_ints(a["kernel"]),
        strides=_ints(a["stride"]),
        pads=_ints(a["padding"]),
        ceil_mode=int(bool(a.get("ceil_mode", False))),
    )
    if dilation:
        out["dilations"] = _ints(a.get("dilation", (1, 1)))
    return out


def _event_sum_pool(events: torch.Tensor, attrs: dict) -> torch.Tensor:
    """Window sums of event counts: integers, so the fast tiling sum is exact."""
    total = window_sum(events, attrs)
    return kernels.sum_pool(events, attrs) if total is None else total


def _avgpool_scale(node: Node, data, is_spikes: bool, scale, in_shape):
    total = window_sum(data, node.attrs) if is_spikes else None
    if total is None:
        return kernels.avgpool(node, data), scale
    return total / kernels.avgpool_divisor(node.attrs, data), scale


def _avgpool_channels(node: Node):
    attrs = node.attrs
    return lambda ce, rows: _event_sum_pool(ce[0].unsqueeze(1), attrs).squeeze(1)


def _write_avgpool(w, n: Node) -> None:
    w.emit(
        n,
        "AveragePool",
        [n.inputs[0]],
        **pool_attrs(n.attrs, False),
        count_include_pad=int(bool(n.attrs.get("count_include_pad", False))),
    )


def _global_avgpool(n: Node, xs: list[torch.Tensor]) -> torch.Tensor:
    return xs[0].mean(dim=(2, 3), keepdim=True)


register(
    OpSpec(
        "avgpool",
        ann=lambda n, xs: kernels.avgpool(n, xs[0]),
        write=_write_avgpool,
        route=lambda n, ev: _event_sum_pool(ev[0], n.attrs),
        channel_route=_avgpool_channels,
        pass_scale=_avgpool_scale,
    )
)
register(
    OpSpec(
        "global_avgpool",
        ann=_global_avgpool,
        write=lambda w, n: w.emit(n, "GlobalAveragePool", [n.inputs[0]]),
        route=lambda n, ev: ev[0].sum(dim=(2, 3), keepdim=True),
        channel_route=lambda n: lambda ce, rows: ce[0].sum(dim=(1, 2), keepdim=True),
        pass_scale=lambda n, data, is_spikes, scale, in_shape: (_global_avgpool(n, [data]), scale),
    )
)
register(
    OpSpec(
        "maxpool",
        ann=lambda n, xs: kernels.maxpool(n, xs[0]),
        write=lambda w, n: w.emit(n, "MaxPool", [n.inputs[0]], **pool_attrs(n.attrs, True)),
    )
)
register(
    OpSpec(
        "maxpool_gate",
        ann=None,
        write=_write_gate,
        shape=lambda n, xs: kernels.maxpool(n, xs[0]),
        engine="gate",
    )
)
