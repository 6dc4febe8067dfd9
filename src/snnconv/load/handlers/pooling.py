"""Handlers of pooling: max, average, global average and its ReduceMean spelling."""

from __future__ import annotations

from snnconv.load.context import Context, Unsupported
from snnconv.load.fold import attrs_of
from snnconv.load.handlers.common import only_first_output_used, pool_attrs, spatial
from snnconv.load.registry import register


@register("MaxPool")
def max_pool(ctx: Context, node) -> None:
    only_first_output_used(ctx)
    x = ctx.act(node.input[0])
    ctx.add("maxpool", [x], pool_attrs(ctx, node, x, with_dilation=True))


@register("AveragePool")
def avg_pool(ctx: Context, node) -> None:
    x = ctx.act(node.input[0])
    ctx.add("avgpool", [x], pool_attrs(ctx, node, x, with_dilation=False))


@register("GlobalAveragePool")
def global_avg_pool(ctx: Context, node) -> None:
    x = ctx.act(node.input[0])
    spatial(ctx, x)
    ctx.add("global_avgpool", [x])


@register("ReduceMean")
def reduce_mean(ctx: Context, node) -> None:
    a = attrs_of(node)
    x = ctx.act(node.input[0])
    rank = len(ctx.shape(x)) + 1
    axes_c = ctx.optional_const(1)
    axes = a.get("axes") if axes_c is None else axes_c.reshape(-1).tolist()
    if rank != 4 or axes is None or sorted(int(v) % rank for v in axes) != [2, 3]:
        raise Unsupported(f"ReduceMean over axes {axes} (only the spatial axes 2, 3 convert)")
    g = ctx.add("global_avgpool", [x])
    if not a.get("keepdims", 1):
        ctx.add("flatten", [g], suffix="flatten")
