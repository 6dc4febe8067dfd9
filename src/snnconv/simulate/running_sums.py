"""Ops that keep running sums over the steps: max-pool gates (spike counts so far), hybrid
boundaries (the mean so far) and the output layer, which integrates without firing."""

from __future__ import annotations

import torch

from snnconv import ops
from snnconv.graph import Node
from snnconv.ops import OpSpec
from snnconv.simulate import fused_steps, gate_rules
from snnconv.simulate.values import Chunk, Value, expand, is_spikes

#: ``record`` this name to get the network's output as an estimate of the ANN's at each step.
OUTPUT = "__output__"


def running_sum(seq: torch.Tensor, initial: torch.Tensor | None) -> torch.Tensor:
    """Prefix sums over time, added one step at a time in float32 (torch.cumsum accumulates
    in float64 on CPU, which would make chunked and unchunked runs round differently)."""
    out = torch.empty_like(seq)
    for t in range(len(seq)):
        acc = initial if t == 0 else out[t - 1]
        if acc is None:
            out[t] = seq[t]
        else:
            torch.add(acc, seq[t], out=out[t])  # straight into place, no temporary
    return out


def _running_sum(sim, seq: torch.Tensor, initial: torch.Tensor | None) -> torch.Tensor:
    """``running_sum``, in one kernel where the loops are fused."""
    # seq as its own layout reference: empty_like gives a dense seq's strides
    if sim.fused and fused_steps.applies(seq[0] if initial is None else initial, seq, False, seq):
        out = torch.empty_like(seq)
        fused_steps.running_sum(seq, initial, out)
        return out
    return running_sum(seq, initial)


def run_gate(sim, node: Node, spec: OpSpec, args: list[Value], chunk: Chunk) -> Value:
    """A max-pool gate: its rule (``snnconv.simulate.gate_rules``) on the running spike
    counts of its inputs. Within a channel all inputs share one threshold, so the counts rank
    the inputs as their values would."""
    arg, steps, state = args[0], chunk.steps, chunk.state
    data = expand(arg, steps)
    batch = data.shape[0] // steps
    seq = data.view((steps, batch) + tuple(data.shape[1:]))
    before = state.get(node.name)
    score = _running_sum(sim, seq, before)
    state[node.name] = score[-1]
    rule = gate_rules.rule_of(node)
    out = rule.run(node, score, before, data, is_spikes(arg), chunk.t0)
    if node.name in chunk.recorded:
        chunk.recorded[node.name].append(out.view((steps, batch) + tuple(out.shape[1:])))
    if not arg.spiking:
        return Value(out, static=False, scale=arg.scale)
    if is_spikes(arg) or not rule.picks_inputs:  # 0/1 or -1/0/1: the events are their size
        return Value(out, False, events=out if is_spikes(arg) else out.abs(), scale=arg.scale)
    return Value(
        out,
        False,
        make_events=lambda: ops.gather_windows(
            node,
            expand(Value(arg.events, arg.static), steps),
            ops.maxpool_indices(node, score.flatten(0, 1)),
        ),
        scale=arg.scale,
    )


def run_boundary(sim, node: Node, spec: OpSpec, args: list[Value], chunk: Chunk) -> Value:
    """Running mean over the steps so far: rate x threshold of spikes, or the mean current
    of a layer that integrates without firing."""
    arg, steps, t0, state = args[0], chunk.steps, chunk.t0, chunk.state
    if arg.static:
        return Value(arg.data, static=True, readout=True)
    value = arg.value(steps)
    batch = value.shape[0] // steps
    seq = value.view((steps, batch) + tuple(value.shape[1:]))
    total = _running_sum(sim, seq, state.get(node.name))
    state[node.name] = total[-1]
    count = torch.arange(t0 + 1, t0 + steps + 1, device=total.device, dtype=total.dtype)
    mean = total / count.view((steps,) + (1,) * (total.dim() - 1))
    return Value(mean.flatten(0, 1), static=False, readout=True)


def read_out(sim, out: Value, chunk: Chunk) -> torch.Tensor:
    """The prediction of every image at every step of the chunk (steps x B). The output
    layer integrates: the prediction at step t is argmax of V(t). The ANN part of a
    hybrid net reads out directly: its output at step t is its prediction."""
    steps, t0, state, recorded = chunk.steps, chunk.t0, chunk.state, chunk.recorded
    data = out.value(steps)
    batch = data.shape[0] // steps
    seq = data.reshape(steps, batch, -1)  # a copy if the output is a channels-last conv's
    if not out.readout:
        seq = _running_sum(sim, seq, state.get(OUTPUT))
        state[OUTPUT] = seq[-1]
    if OUTPUT in recorded:
        t = torch.arange(t0 + 1, t0 + steps + 1, device=seq.device, dtype=seq.dtype)
        recorded[OUTPUT].append(seq if out.readout else seq / t.view(-1, 1, 1))
    return seq.argmax(-1)
