"""Handlers of activations: ReLU and bounded ReLU, and the ANN-only ones (softmax, sigmoid,
LRN)."""

from __future__ import annotations

import math

import numpy as np

from snnconv.load.context import Context, Unsupported
from snnconv.load.fold import attrs_of
from snnconv.load.registry import register


@register("Relu")
def relu(ctx: Context, node) -> None:
    ctx.add("relu", [ctx.act(node.input[0])])


@register("Clip")
def clip(ctx: Context, node) -> None:
    a = attrs_of(node)
    x = ctx.act(node.input[0])
    if ctx.opset < 11:
        lo, hi = a.get("min", -np.inf), a.get("max", np.inf)
    else:
        lo_c, hi_c = ctx.optional_const(1), ctx.optional_const(2)
        lo = -np.inf if lo_c is None else float(lo_c.reshape(-1)[0])
        hi = np.inf if hi_c is None else float(hi_c.reshape(-1)[0])
    if lo != 0:
        raise Unsupported(f"min={lo}; only Clip(min=0, max) (a bounded ReLU) converts to spikes")
    if math.isinf(hi):
        ctx.add("relu", [x])
    else:
        ctx.add("clip", [x], {"min": 0.0, "max": float(hi)})


def _is_trailing(ctx: Context, node) -> bool:
    return node.output[0] == ctx.output


@register("Softmax", "LogSoftmax")
def softmax(ctx: Context, node) -> None:
    x = ctx.act(node.input[0])
    axis = attrs_of(node).get("axis", 1 if ctx.opset < 13 else -1)
    rank = len(ctx.shape(x)) + 1
    if not _is_trailing(ctx, node) or rank != 2 or axis % 2 != 1:
        if node.op_type == "LogSoftmax" or not 1 <= axis % rank < rank:
            raise Unsupported("only a trailing LogSoftmax over the classes can be dropped")
        # Inside the net: an ANN-only op, for the ANN part of a hybrid network.
        ctx.add("softmax", [x], {"axis": axis % rank})
        return
    # A softmax does not change which class scores highest, so the SNN can stop before it.
    ctx.bind(node.output[0], x)
    ctx.notes["dropped_trailing_op"] = f"{ctx.node_name} ({node.op_type})"


@register("Sigmoid")
def sigmoid(ctx: Context, node) -> None:
    ctx.add("sigmoid", [ctx.act(node.input[0])])


@register("LRN")
def lrn(ctx: Context, node) -> None:
    a = attrs_of(node)
    attrs = {
        "size": int(a["size"]),
        "alpha": float(a.get("alpha", 1e-4)),
        "beta": float(a.get("beta", 0.75)),
        "bias": float(a.get("bias", 1.0)),
    }
    ctx.add("lrn", [ctx.act(node.input[0])], attrs)
