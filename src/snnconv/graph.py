"""The intermediate representation: a small, closed graph of named nodes.

Every stage of snnconv (load, calibrate, convert, simulate, save) reads and writes this
structure and nothing else. A ``Graph`` is a list of ``Node`` in topological order; each node
names its inputs (other nodes, or the graph input), carries plain attributes and float32 numpy
parameters. Shapes are per sample: the batch axis never appears in attributes.

Op vocabulary (attributes / params):

=================  ==========================================================================
``conv``           stride (sh, sw), padding (top, left, bottom, right), dilation (dh, dw),
                   groups / weight [Co, Ci/groups, kh, kw], bias [Co]
``linear``         / weight [out, in], bias [out]
``affine``         per-channel ``x * scale + shift`` on axis 1 (batch norm before folding)
                   / scale [C], shift [C]
``relu``           (none)
``clip``           min, max (min is 0: a bounded ReLU)
``qcfs``           levels (L >= 1) / threshold [1] or [C] (λ): quantisation clip-floor-shift,
                   λ·clip(floor(x·L/λ + ½)/L, 0, 1), what ``snnconv prepare`` trains
                   (``snnconv.ops.qcfs``)
``avgpool``        kernel (kh, kw), stride, padding (4), ceil_mode, count_include_pad
``maxpool``        kernel, stride, padding (4), dilation, ceil_mode
``global_avgpool`` (none)
``add``            any number of inputs
``concat``         axis (>= 1)
``flatten``        (flattens all axes after the batch)
``reshape``        shape: the per-sample target shape
``sigmoid``        (none); ANN-only, like softmax and lrn: allowed after a hybrid boundary
``softmax``        axis (>= 1)
``lrn``            size, alpha, beta, bias
``if_neuron``      reset ("subtract" | "zero"), v0 (initial membrane, fraction of threshold),
                   optional signed (1: may also emit -1); the kind: ``snnconv.neurons``
                   / threshold [1] or [C]; optional bias [C]: a constant current added every
                   step, and optional potential [C]: added to the initial membrane v0 x
                   threshold (both from layer-wise calibration; not part of the ANN)
``maxpool_gate``   as ``maxpool``, rule ("max_count" | "winner"; absent: "winner"): per window,
                   spikes that keep its count at the largest so far, or the spikes of the
                   input that fired most so far
``hybrid_boundary`` mode ("rate" | "membrane"): the running mean over the steps so far of
                   its input; what follows it is the ANN part of a hybrid network
``backres``        repeats (R >= 1), mode ("replace" | "add"), body (a list of Nodes): a block
                   run R times with shared weights (backward residual connection); no params
                   of its own
=================  ==========================================================================

BackRes. A ``backres`` node's ``body`` is a subgraph in topological order whose last node is
the block output; body nodes read the backres node's input by name (any name a body node reads
that the body does not produce stands for the block input). Pass r (1..R) runs the body on
x(r-1): x0 is the block input, x(r) = y(r) ("replace") or y(r) + x0 ("add"). Weights are
shared by all passes, so parameters live (and count) once, in the body nodes. In an SNN every
pass has its own neurons: a body ``if_neuron``'s threshold (and bias, potential) has a leading
pass axis, [R, 1] or [R, C]. ``unroll`` expands a graph into the flat graph every pass computes
(body node ``n`` of pass r is named ``n#r``; in "add" mode the sum is named ``<backres>#r``);
forward passes, shapes, MACs and the simulator run on it, so MACs and synops count R times.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

ANN_OPS = frozenset(
    {
        "conv",
        "linear",
        "affine",
        "relu",
        "clip",
        "qcfs",
        "avgpool",
        "maxpool",
        "global_avgpool",
        "add",
        "concat",
        "flatten",
        "reshape",
        "sigmoid",
        "softmax",
        "lrn",
    }
)
SNN_OPS = frozenset({"if_neuron", "maxpool_gate", "hybrid_boundary"})
#: Ops that are spiking neurons (their kind: ``snnconv.neurons.kind_of``).
NEURON_OPS = frozenset({"if_neuron"})
#: Ops holding a subgraph in their attributes.
BLOCK_OPS = frozenset({"backres"})
#: The vocabulary; an op whose spec is registered at run time (``snnconv.ops.register``) joins it.
OPS: set[str] = set(ANN_OPS | SNN_OPS | BLOCK_OPS)
BACKRES_MODES = ("replace", "add")
#: if_neuron params that a body neuron holds once per pass (leading pass axis).
PER_PASS_PARAMS = ("threshold", "bias", "potential")

#: Ops an SNN cannot compute with spikes: they may only sit in a hybrid net's ANN part.
ANN_ONLY_OPS = frozenset({"sigmoid", "softmax", "lrn"})

#: Ops with weights: their work is multiply-accumulates in an ANN, spike deliveries in an SNN.
SYNAPTIC_OPS = frozenset({"conv", "linear"})
#: Ops whose output is an activation that conversion turns into spiking neurons.
ACTIVATION_OPS = frozenset({"relu", "clip", "qcfs"})


class GraphError(ValueError):
    """A graph that breaks the IR's rules; the message names the node."""


@dataclass
class Node:
    """One operation: ``op`` from the vocabulary applied to the named ``inputs``."""

    name: str
    op: str
    inputs: list[str]
    attrs: dict[str, Any] = field(default_factory=dict)
    params: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class Graph:
    """A network as nodes in topological order, with its per-sample input shape."""

    nodes: list[Node]
    input_name: str
    input_shape: tuple[int, ...]
    output: str
    metadata: dict[str, str] = field(default_factory=dict)
    #: In an unrolled graph: each backres node's name -> the node that holds its value.
    aliases: dict[str, str] = field(default_factory=dict)

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes)

    def node(self, name: str) -> Node:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    def consumers(self, name: str) -> list[Node]:
        return [n for n in self.nodes if name in n.inputs]

    def copy(self) -> Graph:
        return copy.deepcopy(self)

    def param_count(self) -> int:
        """Parameters stored (a BackRes body's count once), thresholds excluded."""
        return int(
            sum(
                p.size
                for n in all_nodes(self.nodes)
                for k, p in n.params.items()
                if k != "threshold"
            )
        )

    @property
    def is_snn(self) -> bool:
        return any(n.op in SNN_OPS for n in all_nodes(self.nodes))

    def validate(self) -> None:
        """Check names, order and vocabulary; raise ``GraphError`` naming the first bad node."""
        self._validate_flat()
        names = [n.name for n in all_nodes(self.nodes)]
        if len(set(names)) != len(names):
            dup = next(x for x in names if names.count(x) > 1)
            raise GraphError(f"node {dup!r}: name used twice (in a backres body)")
        for n in self.nodes:
            if n.op in BLOCK_OPS:
                _check_backres(n)
        if any(n.op in BLOCK_OPS for n in self.nodes):
            unroll(self)._validate_flat()

    def _validate_flat(self) -> None:
        known = {self.input_name}
        for n in self.nodes:
            if n.op not in OPS:
                raise GraphError(f"node {n.name!r}: op {n.op!r} is not in snnconv's vocabulary")
            if n.name in known:
                raise GraphError(f"node {n.name!r}: name used twice")
            for i in n.inputs:
                if i not in known:
                    raise GraphError(
                        f"node {n.name!r}: input {i!r} is not produced by an earlier node"
                    )
            for k, p in n.params.items():
                if not np.all(np.isfinite(p)):
                    raise GraphError(f"node {n.name!r}: parameter {k!r} holds NaN or Inf")
            if n.op in NEURON_OPS and not np.all(n.params.get("threshold", np.zeros(1)) > 0):
                raise GraphError(f"node {n.name!r}: an if_neuron needs positive thresholds")
            known.add(n.name)
        if self.output not in known:
            raise GraphError(f"graph output {self.output!r} is not produced by any node")


# --- BackRes blocks -----------------------------------------------------------------------


def all_nodes(nodes: list[Node]) -> Iterator[Node]:
    """Every node, the nodes of backres bodies included (each once)."""
    for n in nodes:
        yield n
        if n.op in BLOCK_OPS:
            yield from all_nodes(n.attrs["body"])


def _check_backres(n: Node) -> None:
    a = n.attrs
    repeats, body = a.get("repeats"), a.get("body")
    if not isinstance(repeats, int) or repeats < 1:
        raise GraphError(f"node {n.name!r}: backres repeats must be an integer >= 1, got {repeats}")
    if a.get("mode") not in BACKRES_MODES:
        raise GraphError(
            f"node {n.name!r}: backres mode must be replace or add, got {a.get('mode')}"
        )
    if not body or len(n.inputs) != 1:
        raise GraphError(f"node {n.name!r}: a backres needs one input and a non-empty body")
    for b in body:
        if b.op in BLOCK_OPS:
            raise GraphError(f"node {n.name!r}: backres bodies do not nest ({b.name!r})")
        if b.op in NEURON_OPS:
            for k in PER_PASS_PARAMS:
                if k in b.params and (b.params[k].ndim != 2 or len(b.params[k]) != repeats):
                    raise GraphError(
                        f"node {b.name!r} in backres {n.name!r}: {k} needs shape [R, C] with "
                        f"R = {repeats} (one row per pass), got {list(b.params[k].shape)}"
                    )


def unroll(graph: Graph) -> Graph:
    """The flat graph a graph with backres nodes computes: every pass of every body as its own
    nodes (``name#r``), sharing the parameter arrays; per-pass neuron params sliced to pass r.
    A graph without backres nodes is returned as it is."""
    if not any(n.op in BLOCK_OPS for n in graph.nodes):
        return graph
    nodes: list[Node] = []
    alias: dict[str, str] = {}
    for n in graph.nodes:
        inputs = [alias.get(i, i) for i in n.inputs]
        if n.op not in BLOCK_OPS:
            nodes.append(Node(n.name, n.op, inputs, n.attrs, dict(n.params)))
            continue
        body, repeats = n.attrs["body"], n.attrs["repeats"]
        x0 = x = inputs[0]
        for r in range(1, repeats + 1):
            local: dict[str, str] = {}
            for b in body:
                params = dict(b.params)
                if b.op in NEURON_OPS:
                    params.update(
                        {k: v[r - 1] for k, v in b.params.items() if k in PER_PASS_PARAMS}
                    )
                name = f"{b.name}#{r}"
                nodes.append(Node(name, b.op, [local.get(i, x) for i in b.inputs], b.attrs, params))
                local[b.name] = name
            x = local[body[-1].name]
            if n.attrs["mode"] == "add":
                nodes.append(Node(f"{n.name}#{r}", "add", [x, x0]))
                x = f"{n.name}#{r}"
        alias[n.name] = x
    return Graph(
        nodes,
        graph.input_name,
        graph.input_shape,
        alias.get(graph.output, graph.output),
        graph.metadata,
        {**graph.aliases, **alias},
    )


def head(graph: Graph, name: str) -> Graph:
    """The part of a flat graph that computes node ``name``: the nodes up to it (the same Node
    objects), with ``name`` as the output. Layer-by-layer calibration simulates only this."""
    end = [n.name for n in graph.nodes].index(name) + 1
    return Graph(
        graph.nodes[:end], graph.input_name, graph.input_shape, name, graph.metadata, graph.aliases
    )


def stack_passes(graph: Graph, flat: Graph) -> Graph:
    """``graph`` with every node's params taken from ``flat`` (its unrolled, then modified,
    copy): per-pass neuron params of pass r from ``name#r``, stacked on a leading pass axis."""
    g = graph.copy()
    by_name = {n.name: n for n in flat.nodes}
    for n in g.nodes:
        if n.op not in BLOCK_OPS:
            n.params = dict(by_name[n.name].params)
            continue
        repeats = n.attrs["repeats"]
        for b in n.attrs["body"]:
            if b.op not in NEURON_OPS:
                continue
            passes = [by_name[f"{b.name}#{r}"].params for r in range(1, repeats + 1)]
            for k in PER_PASS_PARAMS:
                rows = [p.get(k) for p in passes]
                if all(v is None for v in rows):
                    continue
                like = next(v for v in rows if v is not None)
                rows = [np.zeros_like(like) if v is None else v for v in rows]
                width = max(v.size for v in rows)
                b.params[k] = np.stack([np.broadcast_to(v, (width,)) for v in rows]).astype(
                    np.float32
                )
    return g
