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
``avgpool``        kernel (kh, kw), stride, padding (4), ceil_mode, count_include_pad
``maxpool``        kernel, stride, padding (4), dilation, ceil_mode
``global_avgpool`` (none)
``add``            any number of inputs
``concat``         axis (>= 1)
``flatten``        (flattens all axes after the batch)
``reshape``        shape: the per-sample target shape
``if_neuron``      reset ("subtract" | "zero"), v0 (initial membrane, fraction of threshold)
                   / threshold [1] or [C]; optional bias [C]: a constant current added every
                   step (layer-wise calibration; not part of the ANN)
``maxpool_gate``   as ``maxpool``: passes per window the input that fired most so far
``hybrid_boundary`` mode ("rate" | "membrane"): the running mean over the steps so far of
                   its input; what follows it is the ANN part of a hybrid network
=================  ==========================================================================
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
        "avgpool",
        "maxpool",
        "global_avgpool",
        "add",
        "concat",
        "flatten",
        "reshape",
    }
)
SNN_OPS = frozenset({"if_neuron", "maxpool_gate", "hybrid_boundary"})
OPS = ANN_OPS | SNN_OPS

#: Ops with weights: their work is multiply-accumulates in an ANN, spike deliveries in an SNN.
SYNAPTIC_OPS = frozenset({"conv", "linear"})
#: Ops whose output is an activation that conversion turns into spiking neurons.
ACTIVATION_OPS = frozenset({"relu", "clip"})


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
        return int(sum(p.size for n in self.nodes for k, p in n.params.items() if k != "threshold"))

    @property
    def is_snn(self) -> bool:
        return any(n.op in SNN_OPS for n in self.nodes)

    def validate(self) -> None:
        """Check names, order and vocabulary; raise ``GraphError`` naming the first bad node."""
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
            if n.op == "if_neuron" and not np.all(n.params.get("threshold", np.zeros(1)) > 0):
                raise GraphError(f"node {n.name!r}: an if_neuron needs positive thresholds")
            known.add(n.name)
        if self.output not in known:
            raise GraphError(f"graph output {self.output!r} is not produced by any node")
