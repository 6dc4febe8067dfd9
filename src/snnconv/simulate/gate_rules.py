"""How a max-pool gate turns its inputs' spikes into its own, per window (``GATE_RULES``, by
the gate node's ``rule`` attribute):

* ``max_count`` (``--maxpool gate``, the default): the gate emits a spike whenever the
  largest spike count so far in its window grows (and, for signed spikes, −1 when it falls),
  so its own count after every step t is exactly the window's largest count: the max pool of
  the rates, at every t;
* ``winner`` (``--maxpool winner``): the gate passes on the spikes of the input that has
  fired most so far (the first in row-major order on a tie). Its count can exceed the
  largest (the winner changes between two inputs that spike in turn) or fall short of it
  (the winner changes to one that then pauses); measured against ``max_count`` in
  docs/latency.md.

Each rule takes the running counts over the chunk's steps (steps, B, ...), those before the
chunk (None at the start), the input spikes (steps*B, ...) and whether they are a neuron's
binary spikes, and returns the gate's output (steps*B, ...).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from snnconv import ops
from snnconv.errors import InputError
from snnconv.graph import Node
from snnconv.simulate.pooling import gated_select, window_max

#: What a gate saved before rules existed does.
LEGACY_RULE = "winner"


def _window_max(node: Node, x: torch.Tensor) -> torch.Tensor:
    out = window_max(x, node.attrs)
    return ops.maxpool(node, x) if out is None else out


def max_count(node: Node, score, before, data, binary: bool, t0: int) -> torch.Tensor:
    best = _window_max(node, score.flatten(0, 1))
    best = best.view((score.shape[0], -1) + tuple(best.shape[1:]))
    # the maximum one step earlier, in best's layout (channels-last after a conv; cat is not)
    earlier = torch.zeros_like(best)
    earlier[1:] = best[:-1]
    if before is not None:
        earlier[0] = _window_max(node, before)
    return (best - earlier).flatten(0, 1)


def winner(node: Node, score, before, data, binary: bool, t0: int) -> torch.Tensor:
    out = None
    if binary:  # spike counts so far: at most t0 + steps
        out = gated_select(score.flatten(0, 1), data, node.attrs, t0 + score.shape[0])
    if out is None:
        idx = ops.maxpool_indices(node, score.flatten(0, 1))
        out = ops.gather_windows(node, data, idx)
    return out


@dataclass(frozen=True)
class GateRule:
    run: Callable[..., torch.Tensor]
    #: its output is, per window, some input's spikes: their events are that input's events
    #: (else the output's size is its events, as for spikes the gate makes itself)
    picks_inputs: bool


GATE_RULES: dict[str, GateRule] = {
    "max_count": GateRule(max_count, picks_inputs=False),
    "winner": GateRule(winner, picks_inputs=True),
}


def rule_of(node: Node) -> GateRule:
    rule = node.attrs.get("rule", LEGACY_RULE)
    if rule not in GATE_RULES:
        raise InputError(
            f"max-pool gate {node.name!r}: unknown rule {rule!r}; known: {', '.join(GATE_RULES)}"
        )
    return GATE_RULES[rule]
