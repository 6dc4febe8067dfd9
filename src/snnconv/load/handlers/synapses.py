"""Handlers of the synaptic ops: convolution, fully connected layers, batch norm."""

from __future__ import annotations

import numpy as np

from snnconv.load.context import Context, Unsupported
from snnconv.load.fold import attrs_of
from snnconv.load.handlers.common import pair, spatial, window_padding
from snnconv.load.registry import register


@register("Conv")
def conv(ctx: Context, node) -> None:
    a = attrs_of(node)
    x = ctx.act(node.input[0])
    w = ctx.const(node.input[1])
    if w.ndim != 4:
        raise ctx.error(f"{w.ndim - 2}-D convolution; only 2-D convolution is supported")
    bias = ctx.optional_const(2)
    kernel = (
        pair(a.get("kernel_shape"), 0, "kernel_shape", ctx)
        if "kernel_shape" in a
        else (w.shape[2], w.shape[3])
    )
    stride = pair(a.get("strides"), 1, "strides", ctx)
    dilation = pair(a.get("dilations"), 1, "dilations", ctx)
    padding = window_padding(ctx, a, spatial(ctx, x), kernel, stride, dilation)
    attrs = {
        "stride": stride,
        "padding": padding,
        "dilation": dilation,
        "groups": int(a.get("group", 1)),
    }
    if bias is None:
        bias = np.zeros(w.shape[0], np.float32)
    if bias.size != w.shape[0]:
        raise ctx.error(f"bias has {bias.size} values for {w.shape[0]} output channels")
    ctx.add("conv", [x], attrs, {"weight": w, "bias": bias.reshape(-1)})


def _linear_input(ctx: Context, tensor: str) -> str:
    x = ctx.act(tensor)
    if len(ctx.shape(x)) != 1:
        raise Unsupported(f"input has per-sample shape {ctx.shape(x)}; flatten it first")
    return x


@register("Gemm")
def gemm(ctx: Context, node) -> None:
    a = attrs_of(node)
    if a.get("transA", 0):
        raise Unsupported("transA=1")
    x = _linear_input(ctx, node.input[0])
    w = ctx.const(node.input[1])
    w = w if a.get("transB", 0) else w.T
    alpha, beta = a.get("alpha", 1.0), a.get("beta", 1.0)
    if alpha != 1.0:
        w = w * np.float32(alpha)
    c = ctx.optional_const(2)
    bias = np.zeros(w.shape[0], np.float32)
    if c is not None:
        bias = np.broadcast_to(c, (1, w.shape[0]))[0].astype(np.float32)
        if beta != 1.0:
            bias = bias * np.float32(beta)
    ctx.add("linear", [x], {}, {"weight": w, "bias": bias})


@register("MatMul")
def matmul(ctx: Context, node) -> None:
    x = _linear_input(ctx, node.input[0])
    w = ctx.const(node.input[1])
    if w.ndim != 2:
        raise Unsupported(f"weight of rank {w.ndim}; only (in, out) matrices are supported")
    ctx.add("linear", [x], {}, {"weight": w.T, "bias": np.zeros(w.shape[1], np.float32)})


@register("BatchNormalization")
def batch_norm(ctx: Context, node) -> None:
    a = attrs_of(node)
    if a.get("training_mode", 0):
        raise Unsupported("training_mode=1; export the model in eval mode")
    if a.get("spatial", 1) == 0:
        raise Unsupported("spatial=0")
    x = ctx.act(node.input[0])
    gamma, beta, mean, var = (ctx.const(t).astype(np.float64) for t in node.input[1:5])
    scale = gamma / np.sqrt(var + np.float64(np.float32(a.get("epsilon", 1e-5))))
    # A batch norm with zero mean is exactly its affine form; keep its shift bit for bit.
    shift = beta - mean * scale if np.any(mean) else beta
    ctx.add("affine", [x], {}, {"scale": scale, "shift": shift})
