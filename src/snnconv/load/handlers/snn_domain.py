"""Handlers of snnconv's own domain ops, what ``save.py`` writes: IF neurons, hybrid
boundaries, max-pool gates and BackRes blocks."""

from __future__ import annotations

from snnconv.load.context import Context
from snnconv.load.fold import attrs_of
from snnconv.load.handlers.common import pool_attrs
from snnconv.load.registry import SNN_DOMAIN, register


def _plain(v):
    return tuple(v) if isinstance(v, list) else v


@register("IF", domain=SNN_DOMAIN)
def if_neuron(ctx: Context, node) -> None:
    attrs = {k: _plain(v) for k, v in attrs_of(node).items()}
    params = {"threshold": ctx.const(node.input[1])}
    for i, key in ((2, "bias"), (3, "potential")):  # optional inputs ("" when absent)
        value = ctx.optional_const(i)
        if value is not None:
            params[key] = value
    ctx.add("if_neuron", [ctx.act(node.input[0])], attrs, params)


@register("HybridBoundary", domain=SNN_DOMAIN)
def hybrid_boundary(ctx: Context, node) -> None:
    mode = _plain(attrs_of(node).get("mode", "rate"))
    ctx.add("hybrid_boundary", [ctx.act(node.input[0])], {"mode": mode})


@register("MaxPoolGate", domain=SNN_DOMAIN)
def maxpool_gate(ctx: Context, node) -> None:
    x = ctx.act(node.input[0])
    attrs = pool_attrs(ctx, node, x, with_dilation=True)
    if "rule" in attrs_of(node):  # absent in gates saved before rules: they keep "winner"
        attrs["rule"] = _plain(attrs_of(node)["rule"])
    ctx.add("maxpool_gate", [x], attrs)


@register("BackRes", domain=SNN_DOMAIN)
def backres(ctx: Context, node) -> None:
    """What save.py writes for a ``backres`` node: the body is a GRAPH attribute reading the
    block input from the outer scope; it loads as a graph of its own."""
    a = attrs_of(node)  # the schema check has made sure of 'body' and 'repeats'
    x = ctx.act(node.input[0])
    body = ctx.body_loader(a["body"], node.input[0], ctx.shape(x), ctx)
    for b in body:  # the body's reads of the block input, by its IR name
        b.inputs = [x if i == node.input[0] else i for i in b.inputs]
    attrs = {"repeats": int(a["repeats"]), "mode": a.get("mode", "replace"), "body": body}
    ctx.add("backres", [x], attrs)
