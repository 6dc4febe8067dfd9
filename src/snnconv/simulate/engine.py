"""The time-stepped SNN engine.

One code path runs both schedules. The engine advances the network by a *chunk* of timesteps
at a time, with the chunk's steps in the batch and all state (membranes, max-pool gate
scores, the output accumulator) carried between chunks:

* chunk = T: layer by layer, every step of a layer at once;
* chunk = 1: step by step (anytime read-out);
* in between, the default on CPU: as many steps as keep one layer's activations over the
  chunk near the processor's cache (``memory.CHUNK_BYTES``). Measured on CPU, a
  Fashion-MNIST CNN ran about 1.7x faster in chunks of 2 steps than with all 32 at once
  (memory traffic, not arithmetic, bounds these layers); memory stays bounded too. On CUDA
  the default runs all T steps at once, or as many as the memory budget allows. Results are
  identical on CPU; on CUDA cuDNN picks its kernels by batch size, so they agree to the last
  bits of its sums.

With early exit, the images whose prediction has held long enough are dropped from the batch
after each chunk (every per-image state is compacted), so their remaining steps cost nothing.

Nodes that depend on the input image alone (under direct encoding: the first layer's current)
are computed once per batch and reused at every step.

Counting is part of the engine (``counts``): spikes per neuron layer and step, synaptic
operations per synaptic layer and step (spike events x exact fan-out), and the MACs of layers
that receive analog values.

The ``Simulator`` only schedules: each node is run by the runner its op spec's ``engine``
role names (``synapses``, ``routing``, ``neuron_layers``, ``running_sums``); the op's own
kernels, routes and counting rules are in its spec (``snnconv.ops``), the neurons' dynamics
in their kind (``snnconv.neurons``), and the chunk size comes from ``memory.plan_chunk``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field

import numpy as np
import torch

from snnconv import ops
from snnconv.graph import Graph, unroll
from snnconv.neurons import kind_of
from snnconv.ops import spec_of
from snnconv.simulate import fused_steps, memory, routing, synapses
from snnconv.simulate.counts import Counts
from snnconv.simulate.early_exit import update_stops
from snnconv.simulate.encoders import ENCODINGS, poisson_step
from snnconv.simulate.neuron_layers import run_neuron
from snnconv.simulate.running_sums import OUTPUT, read_out, run_boundary, run_gate
from snnconv.simulate.values import Chunk, Value

__all__ = ["OUTPUT", "Counts", "Simulator"]

#: The runner of each engine role (``OpSpec.engine``) over a chunk, and on static values.
RUNNERS = {
    "synaptic": synapses.run_synapse,
    "wiring": routing.run_wiring,
    "neuron": run_neuron,
    "gate": run_gate,
    "boundary": run_boundary,
}
STATIC_RUNNERS = {"synaptic": synapses.run_static, "wiring": routing.run_static}


@dataclass
class Cut:
    """What crosses into node ``at`` from the nodes before it, for one batch: per chunk of
    ``chunk`` steps, the outputs of the earlier nodes (and the input) that ``at`` or a later
    node reads (a residual net's skip path among them). ``Simulator.run_span`` leaves one and
    starts from one, so that layer-by-layer calibration re-runs only what its change affects."""

    at: str
    chunk: int
    batch: int
    values: list[dict[str, Value]] = field(default_factory=list)


class Simulator:
    """An SNN graph prepared for one device: params as tensors, fan-outs counted.
    ``channels_last`` (default: on CPU and CUDA) runs the convolutions in that memory layout.
    ``fused`` (default: on CUDA GPUs that Triton compiles for) runs the per-step loops of
    binary IF layers and running sums as one Triton kernel per chunk
    (``snnconv.simulate.fused_steps``; same results). On CPU it needs Triton's interpreter
    (``TRITON_INTERPRET=1``), which tests use."""

    def __init__(
        self,
        graph: Graph,
        device: str | torch.device = "cpu",
        channels_last: bool | None = None,
        fused: bool | None = None,
    ):
        graph.validate()
        # BackRes blocks run unrolled: pass r of body node n is node "n#r", with its own
        # membranes and thresholds and the shared weights; its spikes and synops are its own
        # rows in the counts (so they count once per pass).
        graph = unroll(graph)
        self.graph = graph
        self.device = torch.device(device)
        self.shapes = ops.infer_shapes(graph)
        specs = {n.name: spec_of(n) for n in graph}
        self.neurons = [n.name for n in graph if specs[n.name].engine == "neuron"]
        self.synaptic = [n.name for n in graph if specs[n.name].engine == "synaptic"]
        self.kinds = {name: kind_of(graph.node(name)) for name in self.neurons}
        self.params = {
            n.name: {k: torch.as_tensor(v, device=self.device) for k, v in n.params.items()}
            for n in graph
        }
        self.fanouts = {}
        for name in self.synaptic:
            node = graph.node(name)
            in_shape = self.shapes[node.inputs[0]]
            fanout = specs[name].fanout(node, in_shape, self.device)
            self.fanouts[name] = synapses.per_position(node, fanout, in_shape)
        self.macs = ops.macs(graph, self.shapes)
        self.scaled_weights: dict[str, torch.Tensor] = {}
        # Convolutions run channels-last (NHWC). On CPU oneDNN reorders NCHW tensors to and
        # from its blocked layout at every call, and without that a ResNet-18 or VGG-16 conv
        # took 1.1-1.7x less time (docs/speed.md); on CUDA cuDNN's TF32 kernels are NHWC, and
        # its NCHW<->NHWC transposes took 15 % of a VGG-16's simulation, 21 % of a ResNet-18's.
        # Weights in that layout make both use it; the outputs keep it, and so do the
        # neurons' membranes and spikes, the adds and the pooling, so the next conv gets its
        # input without a copy. Sums round differently than in NCHW (last bits); on CPU both
        # schedules still agree bit for bit (tested).
        if channels_last is None:
            channels_last = self.device.type in ("cpu", "cuda")
        self.channels_last = channels_last
        if self.channels_last:
            for n in graph:
                if specs[n.name].channels_last:
                    p = self.params[n.name]
                    p["weight"] = p["weight"].contiguous(memory_format=torch.channels_last)
        if fused is None:
            fused = fused_steps.runs_on(self.device)
        elif fused and not fused_steps.available():
            raise ValueError("fused needs Triton, which cannot be imported here")
        self.fused = fused
        # Scalar thresholds as Python floats: reading one off the GPU would wait for it.
        self.scalar_threshold = {
            name: float(np.asarray(graph.node(name).params["threshold"]).item())
            for name in self.neurons
            if np.size(graph.node(name).params["threshold"]) == 1
        }
        self.bias_to_neuron = self._biases_to_fuse(graph) if fused else frozenset()
        last_use = ops.last_uses(graph)
        # per node: its spec, its runner, and the inputs it is the last to read
        self._schedule = [
            (
                node,
                specs[node.name],
                RUNNERS.get(specs[node.name].engine),
                [n for n in node.inputs if last_use[n] == i and n != graph.output],
            )
            for i, node in enumerate(graph.nodes)
        ]

    def _biases_to_fuse(self, graph: Graph) -> frozenset[str]:
        """Convs whose bias the binary IF layer they feed adds, as it reads the current. On
        CUDA torch adds a conv's bias in a pass of its own after cuDNN: 17 % of a VGG-16's or a
        ResNet-18's simulation. The fused IF kernel adds it in the same float32 operation, so the
        result is the same and the pass is saved. (On CPU oneDNN adds it inside the conv.)"""
        if self.device.type != "cuda":
            return frozenset()
        readers: dict[str, list] = {}
        for n in graph:
            for name in n.inputs:
                readers.setdefault(name, []).append(n)

        def fusable(name: str) -> bool:
            reader = readers.get(name, [])
            return (
                len(reader) == 1
                and spec_of(reader[0]).engine == "neuron"
                and kind_of(reader[0]).fused is not None
            )

        return frozenset(
            n.name
            for n in graph
            if spec_of(n).bias_to_neuron
            and "bias" in n.params
            and n.name != graph.output
            and fusable(n.name)
        )

    def auto_chunk(
        self, batch: int, timesteps: int, budget: tuple[int | None, str] | None = None
    ) -> int:
        """Steps per chunk for this device: ``memory.plan_chunk``. On CUDA without a
        ``budget`` (bytes and where they come from, as ``memory.budget`` gives them), the
        default budget; on CPU without one, none."""
        if budget is None and self.device.type == "cuda":
            budget = memory.budget(None, str(self.device))
        limit, source = budget or (None, "")
        return memory.plan_chunk(self.graph, timesteps, batch, limit, source, device=self.device)

    @torch.no_grad()
    def run(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        timesteps: int,
        *,
        chunk: int | None = None,
        encoding: str = "direct",
        generator: torch.Generator | None = None,
        record: Collection[str] = (),
        per_image: bool = False,
        exit_when_stable: int | None = None,
        probes: Mapping[str, Callable[[torch.Tensor], None]] | None = None,
    ) -> tuple[Counts, dict[str, torch.Tensor]]:
        """Simulate one batch for ``timesteps`` steps, ``chunk`` steps at a time (default all).

        With ``exit_when_stable`` K, an image stops once its prediction has held for K steps
        (checked after every chunk; see ``snnconv.simulate.early_exit``) and the run ends when
        every image has stopped.

        Returns the counts and the binary spikes of the neuron layers named in ``record``, as
        time-major (T*B, ...) tensors (for tests and calibration; costs memory). Recording
        ``OUTPUT`` gives, at each step t, the output accumulated so far divided by t (or the
        ANN part's read-out in a hybrid net): what the SNN estimates the ANN's output to be.

        ``probes`` maps neuron layers to functions called once per chunk with the current the
        layer integrates (its input, spike amplitudes and biases applied): (B, ...) where it
        is the same at every step, else (steps*B, ...).
        """
        if encoding not in ENCODINGS:
            raise ValueError(f"unknown encoding {encoding!r}")
        if record and exit_when_stable is not None:
            raise ValueError("record needs every image for every step: no early exit")
        x_all = x.to(self.device, torch.float32)
        x, y = x_all, y.to(self.device)
        chunk = chunk or self.auto_chunk(len(x), timesteps)
        state: dict[str, torch.Tensor] = {}
        static_cache: dict[str, Value] = {}
        counts = Counts(timesteps, images=len(x), per_image=per_image)
        if per_image:
            counts.labels = y.cpu().numpy()
        running = torch.arange(len(x), device=self.device)  # batch positions of those running
        if exit_when_stable is not None:
            counts.stop = np.zeros(len(x), np.int64)
        recorded: dict[str, list[torch.Tensor]] = {n: [] for n in record}
        probes = dict(probes or {})
        for t0 in range(0, timesteps, chunk):
            steps = min(chunk, timesteps - t0)
            if encoding == "direct":
                inp = Value(x, static=True)
            else:
                # drawn for the whole batch, so that an image's input does not depend on exits
                draws = [poisson_step(x_all, generator) for _ in range(steps)]
                spikes = torch.cat(draws if len(x) == len(x_all) else [d[running] for d in draws])
                inp = Value(spikes, static=False, events=spikes.abs())
            chunk_ = Chunk(steps, t0, state, counts, recorded, probes)
            out = self._run_chunk(inp, chunk_, static_cache)
            predictions = self._read_out(out, chunk_)
            if exit_when_stable is None:
                counts.commit()
                self._count_correct(counts, predictions, y, t0, running)
                continue
            stop, state["__last__"], state["__held__"] = update_stops(
                predictions, t0, timesteps, exit_when_stable, state.get("__last__"),
                state.get("__held__"),
            )  # fmt: skip
            done = self._count_exits(counts, predictions, y, t0, stop, running)
            if done.all():
                if encoding == "poisson":  # the next batch's input stays as without exits
                    for _ in range(timesteps - t0 - steps):
                        poisson_step(x_all, generator)
                break
            if done.any():
                keep = ~done
                x, y, running = x[keep], y[keep], running[keep]
                state = {k: v[keep] for k, v in state.items()}
                static_cache = {
                    k: Value(v.data[keep], static=True, readout=v.readout)
                    for k, v in static_cache.items()
                }
        return counts, {k: _joined(v).flatten(0, 1) for k, v in recorded.items()}

    @staticmethod
    def _count_correct(counts: Counts, predictions, y, t0, running) -> None:
        steps = len(predictions)
        correct = (predictions == y.view(1, -1)).sum(1).cpu().numpy()
        counts.correct_per_step[t0 : t0 + steps] += correct
        if counts.per_image:
            counts.predictions[t0 : t0 + steps, running.cpu().numpy()] = predictions.cpu().numpy()

    def _count_exits(self, counts: Counts, predictions, y, t0, stop, running) -> torch.Tensor:
        """Count a chunk under early exit: each image up to its stop step, after which it
        keeps its answer. Returns which images have stopped."""
        steps = len(predictions)
        step = torch.arange(t0 + 1, t0 + steps + 1, device=stop.device).view(-1, 1)
        done = stop > 0
        images = running.cpu().numpy()
        counts.commit((~done | (step <= stop)).float(), images)
        last = torch.where(done, stop - t0 - 1, steps - 1)
        answers = predictions.gather(0, torch.minimum(step - t0 - 1, last))
        self._count_correct(counts, answers, y, t0, running)
        counts.correct_per_step[t0 + steps :] += int((answers[-1] == y)[done].sum())
        counts.stop[images[done.cpu().numpy()]] = stop[done].cpu().numpy()
        return done

    def _read_out(self, out: Value, chunk: Chunk) -> torch.Tensor:
        return read_out(self, out, chunk)

    @torch.no_grad()
    def run_span(
        self,
        start: torch.Tensor | Cut,
        timesteps: int,
        stop: str | None = None,
        *,
        record: Collection[str] = (),
        probes: Mapping[str, Callable[[torch.Tensor], None]] | None = None,
    ) -> tuple[Cut | None, dict[str, torch.Tensor]]:
        """Simulate one batch (direct input, no counts kept) from ``start``, a batch of images
        or a ``Cut`` an earlier span left, up to node ``stop`` (excluded; None: the whole net,
        read out). Returns the cut before ``stop`` (None when run to the end) and what
        ``record`` and ``probes`` ask for, as ``run`` does. With the same chunk (a cut keeps
        its own), a run in spans computes exactly what one ``run`` does."""
        names = [node.name for node, *_ in self._schedule]
        if isinstance(start, Cut):
            first, chunk, batch = names.index(start.at), start.chunk, start.batch
        else:
            x = start.to(self.device, torch.float32)
            first, chunk, batch = 0, self.auto_chunk(len(x), timesteps), len(x)
        last = None if stop is None else names.index(stop)
        state: dict[str, torch.Tensor] = {}
        static_cache: dict[str, Value] = {}
        counts = Counts(timesteps, images=batch, traffic=False, kept=False)
        recorded: dict[str, list[torch.Tensor]] = {n: [] for n in record}
        cut = None if stop is None else Cut(stop, chunk, batch)
        for c, t0 in enumerate(range(0, timesteps, chunk)):
            steps = min(chunk, timesteps - t0)
            given = (
                start.values[c]
                if isinstance(start, Cut)
                else {self.graph.input_name: Value(x, static=True)}
            )
            chunk_ = Chunk(steps, t0, state, counts, recorded, dict(probes or {}))
            out = self._run_nodes(given, chunk_, static_cache, first, last)
            counts.discard()
            if cut is not None:
                cut.values.append(out)
            else:
                self._read_out(out[self.graph.output], chunk_)
        return cut, {k: _joined(v).flatten(0, 1) for k, v in recorded.items()}

    def _run_chunk(self, inp: Value, chunk: Chunk, static_cache: dict[str, Value]) -> Value:
        values = self._run_nodes({self.graph.input_name: inp}, chunk, static_cache, 0, None)
        return values[self.graph.output]

    def _run_nodes(
        self, values: dict[str, Value], chunk: Chunk, static_cache, first: int, last: int | None
    ) -> dict[str, Value]:
        """Nodes ``first`` up to ``last`` (excluded; None: all) over one chunk, in order, from
        the ``values`` that cross into the first. Nodes on the input image alone are computed
        once per batch (``static_cache``); a value is dropped after its last reader, so what
        is left is what crosses into ``last`` (or the output)."""
        values = dict(values)
        for node, spec, runner, done in self._schedule[first:last]:
            args = [values[n] for n in node.inputs]
            if not spec.stateful and all(a.static for a in args):
                if node.name not in static_cache:
                    static = STATIC_RUNNERS[spec.engine]
                    static_cache[node.name] = static(self, node, spec, args, chunk.counts)
                values[node.name] = static_cache[node.name]
            else:
                values[node.name] = runner(self, node, spec, args, chunk)
            for name in done:
                values.pop(name, None)
        return values


def _joined(chunks: list[torch.Tensor]) -> torch.Tensor:
    """A record's chunks in step order (no copy of a lone chunk)."""
    return chunks[0] if len(chunks) == 1 else torch.cat(chunks)
