"""Handlers of element-wise ops: sums of activations, per-channel constants as an affine."""

from __future__ import annotations

import numpy as np

from snnconv.load.context import Context, Unsupported
from snnconv.load.handlers.common import per_channel
from snnconv.load.registry import register


def _affine_with(ctx: Context, x: str, scale: np.ndarray | None, shift: np.ndarray | None):
    channels = ctx.shape(x)[0]
    scale = np.ones(channels, np.float32) if scale is None else scale
    shift = np.zeros(channels, np.float32) if shift is None else shift
    ctx.add("affine", [x], {}, {"scale": scale, "shift": shift})


def _channel_const(ctx: Context, tensor: str, x: str) -> np.ndarray:
    v = per_channel(ctx.const(tensor), ctx.shape(x))
    if v is None:
        raise Unsupported(f"constant of shape {ctx.const(tensor).shape} is not per-channel")
    return v


#: The ops a following constant add folds into, and the parameter it is added to.
_SHIFTED_PARAM = {"conv": "bias", "linear": "bias", "affine": "shift"}


def _fuse_shift(ctx: Context, x: str, shift: np.ndarray) -> bool:
    """Fold a per-channel constant add into the bias/shift of the node that produced ``x``."""
    p = ctx.producer(x)
    key = None if p is None else _SHIFTED_PARAM.get(p.op)
    if key is None or ctx.uses(x) != 1:
        return False
    p.params[key] = (p.params[key] + shift).astype(np.float32)
    ctx.retarget(x, ctx.node.output[0])
    return True


@register("Add", "Sum")
def add(ctx: Context, node) -> None:
    ins = [t for t in node.input if t]
    acts = [t for t in ins if not ctx.is_const(t)]
    consts = [t for t in ins if ctx.is_const(t)]
    if not consts:
        xs = [ctx.act(t) for t in acts]
        if len({ctx.shape(x) for x in xs}) != 1:
            raise Unsupported(f"broadcasting add of shapes {[ctx.shape(x) for x in xs]}")
        if len(xs) == 1:
            ctx.bind(node.output[0], xs[0])
        else:
            ctx.add("add", xs)
        return
    if len(acts) != 1:
        raise Unsupported("adds constants to more than one activation")
    x = ctx.act(acts[0])
    shift = sum(_channel_const(ctx, t, x) for t in consts)
    if not _fuse_shift(ctx, x, shift):
        _affine_with(ctx, x, None, shift)


@register("Sub")
def sub(ctx: Context, node) -> None:
    left, right = node.input[0], node.input[1]
    if ctx.is_const(right):
        x = ctx.act(left)
        shift = -_channel_const(ctx, right, x)
        if not _fuse_shift(ctx, x, shift):
            _affine_with(ctx, x, None, shift)
    elif ctx.is_const(left):
        x = ctx.act(right)
        _affine_with(ctx, x, -np.ones(ctx.shape(x)[0], np.float32), _channel_const(ctx, left, x))
    else:
        raise Unsupported("subtracts two activations")


@register("Mul", "Div")
def mul(ctx: Context, node) -> None:
    left, right = node.input[0], node.input[1]
    if node.op_type == "Mul" and ctx.is_const(left):
        left, right = right, left
    if not ctx.is_const(right):
        raise Unsupported(f"{node.op_type} of two activations")
    x = ctx.act(left)
    scale = _channel_const(ctx, right, x)
    if node.op_type == "Div":
        scale = (np.float32(1) / scale).astype(np.float32)
    _affine_with(ctx, x, scale, None)
