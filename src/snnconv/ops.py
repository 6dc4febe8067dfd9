"""Torch kernels for the IR's stateless ops, and the ANN forward pass built on them.

The ANN forward pass is the reference the whole pipeline is measured against: calibration
reads activations from it, the loader checks it against onnxruntime, the simulator reuses
the same kernels for its synapses, so the ANN and SNN cannot disagree on what a layer means.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import torch
import torch.nn.functional as F

from snnconv.graph import Graph, GraphError, Node, all_nodes, unroll


def _t(a: np.ndarray, like: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(a, device=like.device, dtype=like.dtype)


def _pad(x: torch.Tensor, padding: Iterable[int], value: float = 0.0) -> torch.Tensor:
    top, left, bottom, right = padding
    if top == left == bottom == right == 0:
        return x
    return F.pad(x, (left, right, top, bottom), value=value)


def _symmetric(padding) -> tuple[int, int] | None:
    top, left, bottom, right = padding
    return (top, left) if (top, left) == (bottom, right) else None


def conv(node: Node, x: torch.Tensor, weight=None, bias=None, *, with_bias=True) -> torch.Tensor:
    """``weight``, ``bias``: the node's own unless given; ``with_bias=False`` adds none."""
    a = node.attrs
    w = _t(node.params["weight"], x) if weight is None else weight
    b = None if not with_bias else _t(node.params["bias"], x) if bias is None else bias
    sym = _symmetric(a["padding"])
    if sym is None:
        x, sym = _pad(x, a["padding"]), (0, 0)
    return F.conv2d(x, w, b, a["stride"], sym, a["dilation"], a["groups"])


def linear(node: Node, x: torch.Tensor, weight=None, bias=None) -> torch.Tensor:
    w = _t(node.params["weight"], x) if weight is None else weight
    b = _t(node.params["bias"], x) if bias is None else bias
    return F.linear(x, w, b)


def _channel_view(p: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return p.reshape((1, -1) + (1,) * (x.dim() - 2))


def affine(node: Node, x: torch.Tensor) -> torch.Tensor:
    scale = _channel_view(_t(node.params["scale"], x), x)
    shift = _channel_view(_t(node.params["shift"], x), x)
    return x * scale + shift


def _sum_pool(x: torch.Tensor, a: dict) -> torch.Tensor:
    return F.avg_pool2d(
        x, a["kernel"], a["stride"], 0, a["ceil_mode"], count_include_pad=False, divisor_override=1
    )


def sum_pool(x: torch.Tensor, attrs: dict) -> torch.Tensor:
    """Window sums with an avgpool's geometry (zero padding)."""
    return _sum_pool(_pad(x, attrs["padding"]), attrs)


def avgpool(node: Node, x: torch.Tensor) -> torch.Tensor:
    return sum_pool(x, node.attrs) / avgpool_divisor(node.attrs, x)


def avgpool_divisor(attrs: dict, x: torch.Tensor) -> torch.Tensor:
    """Per output position, what an avgpool divides its window sum by."""
    # The divisor counts the window's cells inside the padded (or the unpadded) input, which is
    # what ONNX defines for both count_include_pad settings, with ceil_mode's overhang excluded.
    ones = torch.ones((1, 1) + tuple(x.shape[2:]), device=x.device, dtype=x.dtype)
    if attrs.get("count_include_pad", False):
        mask = _pad(ones, attrs["padding"], 1.0)
    else:
        mask = _pad(ones, attrs["padding"], 0.0)
    return _sum_pool(mask, attrs)


def maxpool(node: Node, x: torch.Tensor) -> torch.Tensor:
    a = node.attrs
    x = _pad(x, a["padding"], float("-inf"))
    return F.max_pool2d(x, a["kernel"], a["stride"], 0, a["dilation"], a["ceil_mode"])


def maxpool_indices(node: Node, score: torch.Tensor) -> torch.Tensor:
    """Flat indices (into the padded input) of each window's largest ``score``."""
    a = node.attrs
    score = _pad(score, a["padding"], float("-inf"))
    _, idx = F.max_pool2d(
        score, a["kernel"], a["stride"], 0, a["dilation"], a["ceil_mode"], return_indices=True
    )
    return idx


def gather_windows(node: Node, x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Pick from ``x`` the entries ``maxpool_indices`` chose."""
    x = _pad(x, node.attrs["padding"], 0.0)
    flat = x.flatten(2)
    return flat.gather(2, idx.flatten(2)).view(idx.shape)


def clip(node: Node, x: torch.Tensor) -> torch.Tensor:
    return x.clamp(min=node.attrs.get("min", 0.0), max=node.attrs.get("max"))


KERNELS: dict[str, Callable[..., torch.Tensor]] = {
    "conv": lambda n, xs: conv(n, xs[0]),
    "linear": lambda n, xs: linear(n, xs[0]),
    "affine": lambda n, xs: affine(n, xs[0]),
    "relu": lambda n, xs: F.relu(xs[0]),
    "clip": lambda n, xs: clip(n, xs[0]),
    "avgpool": lambda n, xs: avgpool(n, xs[0]),
    "maxpool": lambda n, xs: maxpool(n, xs[0]),
    "global_avgpool": lambda n, xs: xs[0].mean(dim=(2, 3), keepdim=True),
    "add": lambda n, xs: _add(xs),
    "concat": lambda n, xs: torch.cat(xs, dim=n.attrs["axis"]),
    "flatten": lambda n, xs: xs[0].flatten(1),
    "reshape": lambda n, xs: xs[0].reshape((xs[0].shape[0],) + tuple(n.attrs["shape"])),
    "sigmoid": lambda n, xs: torch.sigmoid(xs[0]),
    "softmax": lambda n, xs: torch.softmax(xs[0], dim=n.attrs["axis"]),
    "lrn": lambda n, xs: F.local_response_norm(
        xs[0], n.attrs["size"], n.attrs["alpha"], n.attrs["beta"], n.attrs["bias"]
    ),
}


def _backres(node: Node, xs: list[torch.Tensor]) -> torch.Tensor:
    """A backres node on its own: its body run ``repeats`` times (see ``graph.unroll``)."""
    block = Graph([node], node.inputs[0], tuple(xs[0].shape[1:]), node.name)
    return ann_forward(block, xs[0])[0]


KERNELS["backres"] = _backres


def _add(xs: list[torch.Tensor]) -> torch.Tensor:
    out = xs[0]
    for x in xs[1:]:
        out = out + x
    return out


def run_node(node: Node, inputs: list[torch.Tensor]) -> torch.Tensor:
    """Apply one stateless op; spiking ops have no stateless meaning and are refused."""
    kernel = KERNELS.get(node.op)
    if kernel is None:
        raise GraphError(f"node {node.name!r}: op {node.op!r} has no ANN meaning")
    return kernel(node, inputs)


def params_on(graph: Graph, device: str | torch.device) -> Graph:
    """A copy of ``graph`` whose parameters are torch tensors on ``device``. The kernels take
    numpy parameters as they come, which costs nothing on CPU but is an upload of every
    weight per call on a GPU: ``ann_forward`` on such a copy uploads none."""
    g = graph.copy()
    for n in all_nodes(g.nodes):
        n.params = {k: torch.as_tensor(v, device=device) for k, v in n.params.items()}
    return g


@torch.no_grad()
def ann_forward(
    graph: Graph, x: torch.Tensor, keep: Iterable[str] | None = None
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Run the ANN on a batch; return its output and the activations named in ``keep``.

    BackRes blocks run unrolled: ``keep`` may name a pass's node (``name#r``) or a backres
    node (its output after the last pass)."""
    graph = unroll(graph)
    wanted: dict[str, list[str]] = {}
    for k in keep or ():
        wanted.setdefault(graph.aliases.get(k, k), []).append(k)
    values: dict[str, torch.Tensor] = {graph.input_name: x}
    last_use = _last_use(graph)
    kept: dict[str, torch.Tensor] = {}
    for i, node in enumerate(graph.nodes):
        values[node.name] = run_node(node, [values[n] for n in node.inputs])
        for k in wanted.get(node.name, ()):
            kept[k] = values[node.name]
        for name in set(node.inputs):  # a node may read one input twice (x + x)
            if last_use.get(name) == i and name != graph.output:
                del values[name]
    return values[graph.output], kept


def _last_use(graph: Graph) -> dict[str, int]:
    last: dict[str, int] = {}
    for i, node in enumerate(graph.nodes):
        for name in node.inputs:
            last[name] = i
    return last


def shaped(node: Node, inputs: list[torch.Tensor]) -> torch.Tensor:
    """``run_node`` for shape inference: spiking ops take the shape of their ANN twin."""
    if node.op in ("if_neuron", "hybrid_boundary", "backres"):  # a backres keeps its shape
        return inputs[0]
    if node.op == "maxpool_gate":
        return maxpool(node, inputs[0])
    return run_node(node, inputs)


def infer_shapes(graph: Graph) -> dict[str, tuple[int, ...]]:
    """Per-sample output shape of every node, computed without allocating data.

    With BackRes blocks: every unrolled node (``name#r``), every backres node and every body
    node (its shape in pass 1) has an entry."""
    top = graph
    graph = unroll(graph)
    x = torch.zeros((1,) + tuple(graph.input_shape), device="meta")
    shapes = {graph.input_name: tuple(graph.input_shape)}
    values = {graph.input_name: x}
    for node in graph.nodes:
        inputs = [values[n] for n in node.inputs]
        try:
            out = shaped(node, inputs)
        except (RuntimeError, ValueError) as e:
            shapes_in = [tuple(v.shape[1:]) for v in inputs]
            raise GraphError(
                f"node {node.name!r} ({node.op}): cannot apply to input shape(s) {shapes_in}: {e}"
            ) from None
        values[node.name] = out
        shapes[node.name] = tuple(out.shape[1:])
    for node in top.nodes:
        if node.op == "backres":
            shapes[node.name] = shapes[graph.aliases[node.name]]
            if shapes[node.name] != shapes[node.inputs[0]]:
                raise GraphError(
                    f"node {node.name!r} (backres): its block maps shape "
                    f"{shapes[node.inputs[0]]} to {shapes[node.name]}; a block run repeatedly "
                    "must keep its input shape"
                )
            for b in node.attrs["body"]:
                shapes[b.name] = shapes[f"{b.name}#1"]
    return shapes


def macs(graph: Graph, shapes: dict[str, tuple[int, ...]] | None = None) -> dict[str, int]:
    """Multiply-accumulates per image of each synaptic node (conv, linear).

    BackRes bodies count once per pass: keys are the unrolled names (``name#r``)."""
    shapes = shapes or infer_shapes(graph)
    out: dict[str, int] = {}
    for node in unroll(graph).nodes:
        if node.op in ("conv", "linear"):
            fan_in = int(np.prod(node.params["weight"].shape[1:]))
            out[node.name] = fan_in * int(np.prod(shapes[node.name]))
    return out
