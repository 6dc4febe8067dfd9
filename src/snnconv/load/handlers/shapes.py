"""Handlers of shape ops: concat, flatten, reshape, and the ops that pass values through."""

from __future__ import annotations

import numpy as np

from snnconv.load.context import Context, Unsupported
from snnconv.load.fold import BATCH, attrs_of
from snnconv.load.handlers.common import only_first_output_used
from snnconv.load.registry import register


@register("Concat")
def concat(ctx: Context, node) -> None:
    xs = [ctx.act(t) for t in node.input if t]
    axis = attrs_of(node)["axis"] % (len(ctx.shape(xs[0])) + 1)
    if axis == 0:
        raise Unsupported("concatenates along the batch axis")
    ctx.add("concat", xs, {"axis": int(axis)})


@register("Flatten")
def flatten(ctx: Context, node) -> None:
    x = ctx.act(node.input[0])
    axis = attrs_of(node).get("axis", 1) % (len(ctx.shape(x)) + 1)
    if axis != 1:
        raise Unsupported(f"Flatten with axis={axis} (only axis 1 keeps the batch axis)")
    ctx.add("flatten", [x])


@register("Reshape")
def reshape(ctx: Context, node) -> None:
    x = ctx.act(node.input[0])
    target = [int(d) for d in ctx.const(node.input[1]).reshape(-1)]
    in_shape = ctx.shape(x)
    batch_marks = {0, -1, BATCH} | ({ctx.batch} if ctx.batch else set())
    if not target or target[0] not in batch_marks:
        raise Unsupported(f"Reshape to {target} does not keep the batch axis first")
    rest = target[1:]
    if not attrs_of(node).get("allowzero", 0):
        rest = [in_shape[i] if d == 0 and i < len(in_shape) else d for i, d in enumerate(rest)]
    if rest == [-1]:
        ctx.add("flatten", [x])
        return
    size = int(np.prod(in_shape))
    if rest.count(-1) == 1:
        known = int(np.prod([d for d in rest if d != -1]))
        if known:  # else no size fits the -1 (allowzero with a 0 beside it)
            rest = [size // known if d == -1 else d for d in rest]
    if any(d < 0 for d in rest) or int(np.prod(rest)) != size:
        raise ctx.error(f"cannot reshape per-sample shape {in_shape} to {target[1:]}")
    ctx.add("reshape", [x], {"shape": tuple(rest)})


@register("Identity", "Dropout")
def identity(ctx: Context, node) -> None:
    only_first_output_used(ctx)
    ctx.bind(node.output[0], ctx.act(node.input[0]))


@register("Cast")
def cast(ctx: Context, node) -> None:
    if attrs_of(node)["to"] not in (1, 10, 11, 16):  # float, float16, double, bfloat16
        raise Unsupported("casts an activation to a non-float type")
    ctx.bind(node.output[0], ctx.act(node.input[0]))


@register("Shape")
def shape(ctx: Context, node) -> None:
    a = attrs_of(node)
    x = ctx.act(node.input[0])
    dims = np.asarray([ctx.batch or BATCH, *ctx.shape(x)], np.int64)
    ctx.consts[node.output[0]] = dims[a.get("start", 0) : a.get("end", len(dims))]
