"""Wiring ops: ``add``, ``concat``, ``flatten``, ``reshape``. Spikes pass through them as
spike events, so synops are counted where they land; ``flatten`` treats each channel alone,
so a per-channel spike amplitude passes through it unapplied."""

from __future__ import annotations

import numpy as np
import torch

from snnconv.graph import Node
from snnconv.ops import kernels
from snnconv.ops.spec import OpSpec, register
from snnconv.simulate.values import Value, expand


def _add_values(node: Node, args: list[Value], steps: int) -> torch.Tensor:
    """``add`` of values in order, each spike tensor's scalar amplitude applied inside the add
    (a + theta * s, one kernel instead of two; theta * s is exact, so the sum is the same)."""

    def term(v: Value) -> tuple[torch.Tensor, float]:
        if v.scale is not None and v.scale.dim() == 0:
            return expand(v, steps), float(v.scale)
        return v.value(steps), 1.0

    (first, a), (second, b) = term(args[0]), term(args[1])
    if a != 1.0 and b != 1.0:
        out = torch.add(first * a, second, alpha=b)
    elif a != 1.0:
        out = torch.add(second, first, alpha=a)  # b + a * s == a * s + b exactly
    else:
        out = torch.add(first, second, alpha=b)
    for v in args[2:]:
        data, c = term(v)
        out.add_(data, alpha=c)
    return out


def _sum_channels(channel_events: list[torch.Tensor], rows: int) -> torch.Tensor:
    return sum(channel_events[1:], channel_events[0])


def _concat_channels(node: Node):
    axis = node.attrs["axis"]
    if axis == 1:  # concatenated channels: their events add up
        return _sum_channels
    # along a spatial axis, one fewer once channels are summed
    return lambda channel_events, rows: torch.cat(channel_events, dim=axis - 1)


def _image_total(channel_events: list[torch.Tensor], rows: int) -> torch.Tensor:
    # one axis left, so it is the channel axis: the sum is the image's total
    return channel_events[0].reshape(rows, -1).sum(1)


def _flatten_scale(node: Node, data, is_spikes: bool, scale, in_shape):
    if scale.numel() > 1:  # one amplitude per channel becomes one per position
        scale = scale.expand((1,) + tuple(in_shape)).reshape(1, -1)
    return data.flatten(1), scale


def _reshape(n: Node, xs: list[torch.Tensor]) -> torch.Tensor:
    return xs[0].reshape((xs[0].shape[0],) + tuple(n.attrs["shape"]))


def _write_reshape(w, n: Node) -> None:
    shape = w.constant(f"{n.name}.shape", np.asarray([0, *n.attrs["shape"]], np.int64))
    w.emit(n, "Reshape", [n.inputs[0], shape])


register(
    OpSpec(
        "add",
        ann=lambda n, xs: kernels.add(xs),
        write=lambda w, n: w.emit(n, "Add" if len(n.inputs) == 2 else "Sum", list(n.inputs)),
        route=lambda n, ev: sum(ev[1:], ev[0]),
        channel_route=lambda n: _sum_channels,
        on_values=_add_values,
    )
)
register(
    OpSpec(
        "concat",
        ann=lambda n, xs: torch.cat(xs, dim=n.attrs["axis"]),
        write=lambda w, n: w.emit(n, "Concat", list(n.inputs), axis=int(n.attrs["axis"])),
        route=lambda n, ev: torch.cat(ev, dim=n.attrs["axis"]),
        channel_route=_concat_channels,
    )
)
register(
    OpSpec(
        "flatten",
        ann=lambda n, xs: xs[0].flatten(1),
        write=lambda w, n: w.emit(n, "Flatten", [n.inputs[0]], axis=1),
        route=lambda n, ev: ev[0].flatten(1),
        channel_route=lambda n: _image_total,
        pass_scale=_flatten_scale,
    )
)
register(
    OpSpec(
        "reshape",
        ann=_reshape,
        write=_write_reshape,
        route=_reshape,
        channel_route=lambda n: _image_total if len(n.attrs["shape"]) == 1 else None,
    )
)
