"""What several op handlers share: 2-D window attributes, padding, per-channel constants."""

from __future__ import annotations

import math

import numpy as np

from snnconv.load.context import Context, Unsupported
from snnconv.load.fold import attrs_of


def pair(values, default: int, name: str, ctx: Context) -> tuple[int, int]:
    if values is None:
        return (default, default)
    if len(values) != 2:
        raise ctx.error(
            f"{name} has {len(values)} spatial axes; only 2-D (4-D tensors) is supported"
        )
    return (int(values[0]), int(values[1]))


def window_padding(
    ctx: Context, a: dict, in_hw, kernel, stride, dilation
) -> tuple[int, int, int, int]:
    """IR padding (top, left, bottom, right) from ONNX ``pads`` or ``auto_pad``."""
    auto = a.get("auto_pad", "NOTSET")
    if auto in ("NOTSET", ""):
        pads = a.get("pads", [0, 0, 0, 0])
        if len(pads) != 4:
            raise ctx.error(f"pads {list(pads)}: only 2-D (4-D tensors) is supported")
        return tuple(int(p) for p in pads)
    if auto == "VALID":
        return (0, 0, 0, 0)
    if auto not in ("SAME_UPPER", "SAME_LOWER"):
        raise ctx.error(f"unknown auto_pad {auto!r}")
    begin, end = [], []
    for size, k, s, d in zip(in_hw, kernel, stride, dilation, strict=True):
        out = math.ceil(size / s)
        total = max(0, (out - 1) * s + (k - 1) * d + 1 - size)
        small, big = total // 2, total - total // 2
        begin.append(small if auto == "SAME_UPPER" else big)
        end.append(big if auto == "SAME_UPPER" else small)
    return (begin[0], begin[1], end[0], end[1])


def spatial(ctx: Context, x: str) -> tuple[int, int]:
    shape = ctx.shape(x)
    if len(shape) != 3:
        raise ctx.error(
            f"input has shape {shape} per sample; only 4-D (N, C, H, W) tensors "
            "are supported for convolution and pooling"
        )
    return shape[1], shape[2]


def per_channel(c: np.ndarray, act_shape: tuple[int, ...]) -> np.ndarray | None:
    """``c`` as a length-C vector if it broadcasts along axis 1 only, else None."""
    rank = len(act_shape) + 1
    if c.ndim > rank or not act_shape:
        return None
    s = (1,) * (rank - c.ndim) + c.shape
    channels = act_shape[0]
    if s[0] != 1 or any(d != 1 for d in s[2:]) or s[1] not in (1, channels):
        return None
    return np.broadcast_to(c.reshape(s[1]).astype(np.float32), (channels,)).copy()


def only_first_output_used(ctx: Context) -> None:
    if any(o and ctx.uses_tensor(o) for o in ctx.node.output[1:]):
        raise Unsupported("its second output is used")


def pool_attrs(ctx: Context, node, x: str, with_dilation: bool) -> dict:
    a = attrs_of(node)
    kernel = pair(a.get("kernel_shape"), 1, "kernel_shape", ctx)
    stride = pair(a.get("strides"), 1, "strides", ctx)
    dilation = pair(a.get("dilations"), 1, "dilations", ctx)
    if not with_dilation and dilation != (1, 1):
        raise Unsupported("AveragePool with dilations")
    attrs = {
        "kernel": kernel,
        "stride": stride,
        "padding": window_padding(ctx, a, spatial(ctx, x), kernel, stride, dilation),
    }
    if with_dilation:
        attrs["dilation"] = dilation
    attrs["ceil_mode"] = bool(a.get("ceil_mode", 0))
    if not with_dilation:
        attrs["count_include_pad"] = bool(a.get("count_include_pad", 0))
    return attrs
