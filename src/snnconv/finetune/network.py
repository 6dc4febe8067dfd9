"""A converted SNN graph as a differentiable torch module, unrolled over T steps.

It computes what the engine (``snnconv.simulate``) computes, from the same op specs (their
ANN kernels, on all steps at once) and neuron kinds (their differentiable step, a surrogate
gradient at the spike), in the same order of float operations, but keeps the autograd graph
so the loss can be back-propagated through time. The engine stays the inference path; this
module is for training, and ``to_graph`` hands the trained parameters back as a normal SNN
graph.

Trained: conv/linear weights and biases, neuron thresholds (per layer or per channel, as in
the graph) and neuron biases and initial potentials where the graph has them. Fixed:
everything else (a leftover ``affine``, pooling, wiring). Max-pool gates run their rule on
the running spike counts; the gradient reaches the input the rule follows (the window's
largest count, or the winner's spikes).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from snnconv.errors import InputError
from snnconv.graph import NEURON_OPS, Graph, Node
from snnconv.neurons import kind_of
from snnconv.ops import OpSpec, last_uses, spec_of
from snnconv.simulate import gate_rules

#: The trained params of each engine role (``OpSpec.engine``).
TRAINABLE = {"synaptic": ("weight", "bias"), "neuron": ("threshold", "bias", "potential")}
#: Thresholds are kept at or above this (training could push them to zero or below).
MIN_THRESHOLD = 1e-3


class SpikingNet(nn.Module):
    """``forward(x, timesteps)`` returns the output membrane V(t) for t = 1..T, (T, B, K);
    the logits are ``V(T) / T``. Input is direct (the image is the current at every step)."""

    def __init__(self, graph: Graph):
        super().__init__()
        graph.validate()
        if not graph.is_snn:
            raise InputError("fine-tuning needs an SNN graph (with if_neuron nodes)")
        blocks = [n.name for n in graph if n.op == "backres"]
        if blocks:
            raise InputError(
                f"node {blocks[0]!r} (backres): fine-tuning does not support BackRes blocks "
                "(shared weights, per-pass neurons) yet"
            )
        untrainable = [n for n in graph if n.op in NEURON_OPS and kind_of(n).train_step is None]
        if untrainable:
            n = untrainable[0]
            raise InputError(f"node {n.name!r}: {kind_of(n).no_training}")
        hybrid = [n.name for n in graph if not self._runs(spec_of(n))]
        if hybrid:
            raise InputError(
                f"node {hybrid[0]!r} ({graph.node(hybrid[0]).op}): fine-tuning does not support "
                "hybrid ANN-SNN networks yet; fine-tune the all-spiking SNN, then cut it"
            )
        self.graph = graph.copy()
        self.params = nn.ParameterDict()
        self._keys: dict[tuple[str, str], str] = {}
        for i, node in enumerate(self.graph):
            for k in TRAINABLE.get(spec_of(node).engine, ()):
                if k in node.params:
                    key = f"n{i}_{k}"
                    self.params[key] = nn.Parameter(
                        torch.tensor(node.params[k], dtype=torch.float32)
                    )
                    self._keys[(node.name, k)] = key
        last_use = last_uses(self.graph)
        self._schedule = [
            (
                node,
                spec_of(node),
                [n for n in node.inputs if last_use[n] == i and n != self.graph.output],
            )
            for i, node in enumerate(self.graph)
        ]

    @staticmethod
    def _runs(spec: OpSpec) -> bool:
        return spec.engine in _SPIKING or spec.ann is not None

    def _p(self, node: Node, key: str) -> torch.Tensor | None:
        k = self._keys.get((node.name, key))
        return None if k is None else self.params[k]

    def threshold(self, node: Node) -> torch.Tensor:
        return self._p(node, "threshold").clamp(min=MIN_THRESHOLD)

    def forward(self, x: torch.Tensor, timesteps: int) -> torch.Tensor:
        values: dict[str, tuple[torch.Tensor, bool]] = {self.graph.input_name: (x, True)}
        for node, spec, done in self._schedule:
            args = [values[n] for n in node.inputs]
            spiking = _SPIKING.get(spec.engine)
            if spiking is not None:
                values[node.name] = (spiking(self, node, args[0], timesteps), False)
            elif all(static for _, static in args):
                values[node.name] = (spec.ann(self._trained(node), [d for d, _ in args]), True)
            else:
                data = [_expand(a, timesteps) for a in args]
                values[node.name] = (spec.ann(self._trained(node), data), False)
            for name in done:
                values.pop(name, None)
        out = _expand(values[self.graph.output], timesteps)
        return _running_sum(out.reshape(timesteps, len(x), -1))

    def _trained(self, node: Node) -> Node:
        """``node`` with its trained params in place of its own (the kernels use them as they
        are, so the gradient reaches them)."""
        trained = {k: self._p(node, k) for k in node.params if (node.name, k) in self._keys}
        if not trained:
            return node
        return Node(node.name, node.op, node.inputs, node.attrs, {**node.params, **trained})

    def _neuron(self, node: Node, arg: tuple[torch.Tensor, bool], steps: int) -> torch.Tensor:
        """Integrate and fire as the engine does; the output is spike × threshold."""
        data, static = arg
        theta = _channel(self.threshold(node), data)
        shape = tuple(data.shape[1:])
        batch = data.shape[0] if static else data.shape[0] // steps
        current = data if static else data.view((steps, batch) + shape)
        bias = self._p(node, "bias")
        if bias is not None:
            current = current + _channel(bias, data)
        v = (node.attrs["v0"] * theta).expand((batch,) + shape)
        potential = self._p(node, "potential")
        if potential is not None:
            v = v + _channel(potential, data)
        step = kind_of(node).train_step
        out = []
        for t in range(steps):
            v, o = step(v, current if static else current[t], theta, node.attrs)
            out.append(o)
        return torch.stack(out).flatten(0, 1)

    def _gate(self, node: Node, arg: tuple[torch.Tensor, bool], steps: int) -> torch.Tensor:
        """The gate's rule (``snnconv.simulate.gate_rules``) on the running counts, which
        carry the gradient to the inputs the rule picks."""
        data = _expand(arg, steps)
        score = _running_sum(data.view((steps, -1) + tuple(data.shape[1:])))
        return gate_rules.rule_of(node).run(node, score, None, data, False, 0)

    def to_graph(self) -> Graph:
        """The SNN graph with the trained parameters (thresholds clamped positive)."""
        g = self.graph.copy()
        for (name, k), key in self._keys.items():
            value = self.params[key].detach().cpu()
            if k == "threshold":
                value = value.clamp(min=MIN_THRESHOLD)
            g.node(name).params[k] = value.numpy().astype(np.float32)
        return g


#: The roles run here rather than by their ANN kernel.
_SPIKING = {"neuron": SpikingNet._neuron, "gate": SpikingNet._gate}


def _expand(value: tuple[torch.Tensor, bool], steps: int) -> torch.Tensor:
    data, static = value
    if not static:
        return data
    return data.unsqueeze(0).expand((steps,) + tuple(data.shape)).flatten(0, 1)


def _running_sum(seq: torch.Tensor) -> torch.Tensor:
    """Prefix sums over time, one float32 step at a time (as the engine adds them)."""
    acc = seq[0]
    out = [acc]
    for t in range(1, len(seq)):
        acc = acc + seq[t]
        out.append(acc)
    return torch.stack(out)


def _channel(p: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return p.reshape((1, -1) + (1,) * (like.dim() - 2)) if p.numel() > 1 else p.reshape(())
