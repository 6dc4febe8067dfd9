"""ONNX op handlers: each turns one ONNX node into IR nodes, constants or aliases."""

from __future__ import annotations

import math

import numpy as np
import onnx

from snnconv.load.context import Context, Unsupported
from snnconv.load.fold import BATCH, attrs_of
from snnconv.load.registry import SNN_DOMAIN, register

# --- helpers ----------------------------------------------------------------------------


def _pair(values, default: int, name: str, ctx: Context) -> tuple[int, int]:
    if values is None:
        return (default, default)
    if len(values) != 2:
        raise ctx.error(
            f"{name} has {len(values)} spatial axes; only 2-D (4-D tensors) is supported"
        )
    return (int(values[0]), int(values[1]))


def _padding(ctx: Context, a: dict, in_hw, kernel, stride, dilation) -> tuple[int, int, int, int]:
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


def _spatial(ctx: Context, x: str) -> tuple[int, int]:
    shape = ctx.shape(x)
    if len(shape) != 3:
        raise ctx.error(
            f"input has shape {shape} per sample; only 4-D (N, C, H, W) tensors "
            "are supported for convolution and pooling"
        )
    return shape[1], shape[2]


def _per_channel(c: np.ndarray, act_shape: tuple[int, ...]) -> np.ndarray | None:
    """``c`` as a length-C vector if it broadcasts along axis 1 only, else None."""
    rank = len(act_shape) + 1
    if c.ndim > rank or not act_shape:
        return None
    s = (1,) * (rank - c.ndim) + c.shape
    channels = act_shape[0]
    if s[0] != 1 or any(d != 1 for d in s[2:]) or s[1] not in (1, channels):
        return None
    return np.broadcast_to(c.reshape(s[1]).astype(np.float32), (channels,)).copy()


def _only_first_output_used(ctx: Context) -> None:
    if any(o and ctx.uses_tensor(o) for o in ctx.node.output[1:]):
        raise Unsupported("its second output is used")


# --- synapses ---------------------------------------------------------------------------


@register("Conv")
def conv(ctx: Context, node) -> None:
    a = attrs_of(node)
    x = ctx.act(node.input[0])
    w = ctx.const(node.input[1])
    if w.ndim != 4:
        raise ctx.error(f"{w.ndim - 2}-D convolution; only 2-D convolution is supported")
    bias = ctx.optional_const(2)
    kernel = (
        _pair(a.get("kernel_shape"), 0, "kernel_shape", ctx)
        if "kernel_shape" in a
        else (w.shape[2], w.shape[3])
    )
    stride = _pair(a.get("strides"), 1, "strides", ctx)
    dilation = _pair(a.get("dilations"), 1, "dilations", ctx)
    padding = _padding(ctx, a, _spatial(ctx, x), kernel, stride, dilation)
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


# --- element-wise with constants ---------------------------------------------------------


def _affine_with(ctx: Context, x: str, scale: np.ndarray | None, shift: np.ndarray | None):
    channels = ctx.shape(x)[0]
    scale = np.ones(channels, np.float32) if scale is None else scale
    shift = np.zeros(channels, np.float32) if shift is None else shift
    ctx.add("affine", [x], {}, {"scale": scale, "shift": shift})


def _channel_const(ctx: Context, tensor: str, x: str) -> np.ndarray:
    v = _per_channel(ctx.const(tensor), ctx.shape(x))
    if v is None:
        raise Unsupported(f"constant of shape {ctx.const(tensor).shape} is not per-channel")
    return v


def _fuse_shift(ctx: Context, x: str, shift: np.ndarray) -> bool:
    """Fold a per-channel constant add into the bias/shift of the node that produced ``x``."""
    p = ctx.producer(x)
    if p is None or p.op not in ("conv", "linear", "affine") or ctx.uses(x) != 1:
        return False
    key = "shift" if p.op == "affine" else "bias"
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


# --- activations --------------------------------------------------------------------------


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


# --- pooling --------------------------------------------------------------------------------


def _pool_attrs(ctx: Context, node, x: str, with_dilation: bool) -> dict:
    a = attrs_of(node)
    kernel = _pair(a.get("kernel_shape"), 1, "kernel_shape", ctx)
    stride = _pair(a.get("strides"), 1, "strides", ctx)
    dilation = _pair(a.get("dilations"), 1, "dilations", ctx)
    if not with_dilation and dilation != (1, 1):
        raise Unsupported("AveragePool with dilations")
    attrs = {
        "kernel": kernel,
        "stride": stride,
        "padding": _padding(ctx, a, _spatial(ctx, x), kernel, stride, dilation),
    }
    if with_dilation:
        attrs["dilation"] = dilation
    attrs["ceil_mode"] = bool(a.get("ceil_mode", 0))
    if not with_dilation:
        attrs["count_include_pad"] = bool(a.get("count_include_pad", 0))
    return attrs


@register("MaxPool")
def max_pool(ctx: Context, node) -> None:
    _only_first_output_used(ctx)
    x = ctx.act(node.input[0])
    ctx.add("maxpool", [x], _pool_attrs(ctx, node, x, with_dilation=True))


@register("AveragePool")
def avg_pool(ctx: Context, node) -> None:
    x = ctx.act(node.input[0])
    ctx.add("avgpool", [x], _pool_attrs(ctx, node, x, with_dilation=False))


@register("GlobalAveragePool")
def global_avg_pool(ctx: Context, node) -> None:
    x = ctx.act(node.input[0])
    _spatial(ctx, x)
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


# --- shape ----------------------------------------------------------------------------------


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
        rest = [size // known if d == -1 else d for d in rest]
    if any(d < 0 for d in rest) or int(np.prod(rest)) != size:
        raise ctx.error(f"cannot reshape per-sample shape {in_shape} to {target[1:]}")
    ctx.add("reshape", [x], {"shape": tuple(rest)})


@register("Identity", "Dropout")
def identity(ctx: Context, node) -> None:
    _only_first_output_used(ctx)
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


# --- the snnconv domain (what save.py writes) -------------------------------------------------


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
    ctx.add("maxpool_gate", [x], _pool_attrs(ctx, node, x, with_dilation=True))


@register("BackRes", domain=SNN_DOMAIN)
def backres(ctx: Context, node) -> None:
    """What save.py writes for a ``backres`` node: the body is a GRAPH attribute reading the
    block input from the outer scope; it loads as a graph of its own."""
    from snnconv.load.onnx_loader import load_body  # the loader imports this module

    a = attrs_of(node)
    x = ctx.act(node.input[0])
    if not isinstance(a.get("body"), onnx.GraphProto) or "repeats" not in a:
        raise ctx.error("a BackRes node needs a GRAPH attribute 'body' and an int 'repeats'")
    body = load_body(a["body"], node.input[0], ctx.shape(x), ctx)
    for b in body:  # the body's reads of the block input, by its IR name
        b.inputs = [x if i == node.input[0] else i for i in b.inputs]
    attrs = {"repeats": int(a["repeats"]), "mode": a.get("mode", "replace"), "body": body}
    ctx.add("backres", [x], attrs)
