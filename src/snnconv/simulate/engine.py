"""The time-stepped SNN engine.

One code path runs both schedules. The engine advances the network by a *chunk* of timesteps
at a time, with time folded into the batch inside the chunk and all state (membranes, max-pool
gate scores, the output accumulator) carried between chunks:

* chunk = T: layer by layer, every step of a layer at once;
* chunk = 1: step by step (anytime read-out);
* in between, the default on CPU: as many steps as keep one layer's folded activations near
  the processor's cache (``CHUNK_BYTES``). Measured on CPU, a Fashion-MNIST CNN ran about
  1.7x faster in chunks of 2 steps than with all 32 folded at once (memory traffic, not
  arithmetic, bounds these layers); memory stays bounded too. On CUDA the default folds all
  T steps, or as many as the memory budget allows. Results are identical on CPU; on CUDA
  cuDNN picks its kernels by batch size, so they agree to the last bits of its sums.

With early exit, the images whose prediction has held long enough are dropped from the batch
after each chunk (every per-image state is compacted), so their remaining steps cost nothing.

Nodes that depend on the input image alone (under direct encoding: the first layer's current)
are computed once per batch and reused at every step.

Counting is part of the engine: spikes per neuron layer and step, synaptic operations per
synaptic layer and step (spike events x exact fan-out), and the MACs of layers that receive
analog values.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from functools import partial

import numpy as np
import torch

from snnconv import ops
from snnconv.graph import SYNAPTIC_OPS, Graph, Node, unroll
from snnconv.simulate import fused_steps, memory
from snnconv.simulate.early_exit import update_stops
from snnconv.simulate.encoders import ENCODINGS, poisson_step
from snnconv.simulate.fanout import fanout
from snnconv.simulate.pooling import gated_select, window_sum

#: Target size of one layer's activations over a chunk of steps (see the module docstring).
CHUNK_BYTES = 8 * 2**20
#: ``record`` this name to get the network's output as an estimate of the ANN's at each step.
OUTPUT = "__output__"


@dataclass
class Counts:
    """Totals over the images of one or more batches; per-step arrays have length T.

    With ``per_image``, the per-step counts are also kept for every image (arrays T x N).
    With early exit, ``stop`` holds the 1-based step at which each image stopped, and every
    count covers the steps run up to it; an image that has stopped keeps its last prediction
    in ``correct_per_step``.

    Layers queue their counts for a chunk with ``add``; ``commit`` counts them once the
    chunk's stops are known."""

    timesteps: int
    images: int = 0
    correct_per_step: np.ndarray | None = None
    spikes: dict[str, np.ndarray] = field(default_factory=dict)  # per neuron layer, per step
    synops: dict[str, np.ndarray] = field(default_factory=dict)  # per synaptic layer, per step
    snn_macs: dict[str, float] = field(default_factory=dict)  # per layer fed analog values
    readout_macs: dict[str, float] = field(default_factory=dict)  # per layer of an ANN part
    per_image: bool = False
    predictions: np.ndarray | None = None  # T x N, the argmax at each step
    image_synops: np.ndarray | None = None  # T x N, all layers
    image_spikes: np.ndarray | None = None  # T x N, all layers
    image_macs: np.ndarray | None = None  # T x N, layers fed analog values step by step
    labels: np.ndarray | None = None  # N
    stop: np.ndarray | None = None  # N, with early exit
    _pending: list = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        if self.correct_per_step is None:
            self.correct_per_step = np.zeros(self.timesteps, np.int64)
        if self.per_image and self.predictions is None:
            shape = (self.timesteps, self.images)
            self.predictions = np.zeros(shape, np.int64)
            self.image_synops, self.image_spikes, self.image_macs = (
                np.zeros(shape) for _ in range(3)
            )
            self.labels = np.zeros(self.images, np.int64)

    def merge(self, other: Counts) -> None:
        self.images += other.images
        self.correct_per_step += other.correct_per_step
        for mine, theirs in ((self.spikes, other.spikes), (self.synops, other.synops)):
            for k, v in theirs.items():
                mine[k] = mine.get(k, 0) + v
        for mine, theirs in (
            (self.snn_macs, other.snn_macs),
            (self.readout_macs, other.readout_macs),
        ):
            for k, v in theirs.items():
                mine[k] = mine.get(k, 0.0) + v
        if self.stop is not None:
            self.stop = np.concatenate([self.stop, other.stop])
        if self.per_image:
            self.labels = np.concatenate([self.labels, other.labels])
            for name in ("predictions", "image_synops", "image_spikes", "image_macs"):
                setattr(
                    self, name, np.concatenate([getattr(self, name), getattr(other, name)], axis=1)
                )

    def add(self, table: str, name: str, t0: int, per_image: torch.Tensor) -> None:
        """Queue a layer's counts over a chunk, per step and image (steps x B): ``table`` is
        ``spikes``, ``synops`` or ``snn_macs``."""
        self._pending.append((table, name, t0, per_image))

    def commit(self, ran: torch.Tensor | None = None, images: np.ndarray | None = None) -> None:
        """Count the queued chunk. ``ran`` (steps x B, 0/1) leaves out the steps an image ran
        past its stop; ``images`` are the chunk's images' positions in the batch (default all).
        Per-image counts are exact in float32 (< 2**24); totals are summed in float64."""
        columns = slice(None) if images is None else images
        for table, name, t0, per_image in self._pending:
            if ran is not None:
                per_image = per_image * ran
            if table == "snn_macs":
                total = float(per_image.sum(dtype=torch.float64))
                self.snn_macs[name] = self.snn_macs.get(name, 0.0) + total
            else:
                per_step = per_image.sum(1, dtype=torch.float64).cpu().numpy()
                _add_steps(getattr(self, table), name, per_step, self.timesteps, t0)
            if self.per_image:
                rows = getattr(self, _PER_IMAGE[table])
                rows[t0 : t0 + len(per_image), columns] += per_image.cpu().numpy()
        self._pending.clear()


_PER_IMAGE = {"spikes": "image_spikes", "synops": "image_synops", "snn_macs": "image_macs"}


@dataclass
class Cut:
    """What crosses into node ``at`` from the nodes before it, for one batch: per chunk of
    ``chunk`` steps, the outputs of the earlier nodes (and the input) that ``at`` or a later
    node reads (a residual net's skip path among them). ``Simulator.run_span`` leaves one
    and starts from one (calibration hook, calib-search)."""

    at: str
    chunk: int
    batch: int
    values: list[dict[str, _Value]] = field(default_factory=list)


class _Value:
    """A node's output in the current chunk.

    ``static`` values have no time axis (B, ...); others are (steps*B, ...). Spiking values
    also carry ``events``: how many spike events each position holds, and ``channel_events``:
    the same summed over channels (dim 1), all that synops need, since a spike's fan-out does
    not depend on its channel. Both are made only when asked for, so wiring ops cost nothing
    when unused, and channel events avoid a full pass over the spikes where they can.
    ``readout`` values belong to the ANN part of a hybrid network: at step t they hold what
    the ANN part would read out if the run stopped there. A ``scale`` (per channel,
    broadcastable) means the value is ``data * scale``: spikes stay binary and their threshold
    amplitude is applied by the layer that receives them, whose weights are scaled once.
    A ``bias`` (per channel) means the value is ``data + bias``: a conv's output, whose bias
    the one IF layer it feeds adds as it reads the current (see ``_biases_to_fuse``).
    """

    __slots__ = (
        "data",
        "static",
        "readout",
        "scale",
        "bias",
        "_events",
        "_make_events",
        "_channel_events",
        "_make_channel_events",
    )

    def __init__(
        self,
        data: torch.Tensor,
        static: bool,
        events: torch.Tensor | None = None,
        make_events=None,
        readout: bool = False,
        scale: torch.Tensor | None = None,
        channel_events: torch.Tensor | None = None,
        make_channel_events=None,
        bias: torch.Tensor | None = None,
    ):
        self.data = data
        self.static = static
        self.readout = readout
        self.scale = scale
        self.bias = bias
        self._events = events
        self._make_events = make_events
        self._channel_events = channel_events
        self._make_channel_events = make_channel_events

    @property
    def spiking(self) -> bool:
        return self._events is not None or self._make_events is not None

    @property
    def events(self) -> torch.Tensor | None:
        if self._events is None and self._make_events is not None:
            self._events, self._make_events = self._make_events(), None
        return self._events

    @property
    def channel_events(self) -> torch.Tensor:
        """Spike events summed over channels: (steps*B, *spatial), or (steps*B,) for 1-D data.
        Integer sums far below 2**24, so exact in float32 in any order."""
        if self._channel_events is None:
            if self._make_channel_events is not None:
                self._channel_events = self._make_channel_events()
                self._make_channel_events = None
            else:
                self._channel_events = self.events.sum(1)
        return self._channel_events

    def value(self, steps: int) -> torch.Tensor:
        """The data with its scale applied and, if static, repeated over the chunk's steps."""
        data = _expand(self, steps)
        return data if self.scale is None else data * self.scale


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
        self.neurons = [n.name for n in graph if n.op == "if_neuron"]
        self.synaptic = [n.name for n in graph if n.op in SYNAPTIC_OPS]
        self._params = {
            n.name: {k: torch.as_tensor(v, device=self.device) for k, v in n.params.items()}
            for n in graph
        }
        self._fanout = {
            n.name: _per_position(
                n, fanout(n, self.shapes[n.inputs[0]], self.device), self.shapes[n.inputs[0]]
            )
            for n in graph
            if n.op in SYNAPTIC_OPS
        }
        self._macs = ops.macs(graph, self.shapes)
        self._scaled_weights: dict[str, torch.Tensor] = {}
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
                if n.op == "conv":
                    p = self._params[n.name]
                    p["weight"] = p["weight"].contiguous(memory_format=torch.channels_last)
        if fused is None:
            fused = fused_steps.runs_on(self.device)
        elif fused and not fused_steps.available():
            raise ValueError("fused needs Triton, which cannot be imported here")
        self.fused = fused
        # Scalar thresholds as Python floats: reading one off the GPU would wait for it.
        self._scalar_threshold = {
            n.name: float(np.asarray(n.params["threshold"]).item())
            for n in graph
            if n.op == "if_neuron" and np.size(n.params["threshold"]) == 1
        }
        self._bias_to_neuron = self._biases_to_fuse(graph) if fused else frozenset()
        self._last_use = {}
        for i, n in enumerate(graph.nodes):
            for name in n.inputs:
                self._last_use[name] = i

    def _biases_to_fuse(self, graph: Graph) -> frozenset[str]:
        """Convs whose bias the binary IF layer they feed adds, as it reads the current. On
        CUDA torch adds a conv's bias in a pass of its own after cuDNN: 17 % of a VGG-16's or a
        ResNet-18's simulation. The fused IF kernel adds it in the same float32 operation, so the
        result is the same and the pass is saved. (On CPU oneDNN adds it inside the conv.)"""
        if self.device.type != "cuda":
            return frozenset()
        readers: dict[str, list[Node]] = {}
        for n in graph:
            for name in n.inputs:
                readers.setdefault(name, []).append(n)
        return frozenset(
            n.name
            for n in graph
            if n.op == "conv"
            and "bias" in n.params
            and n.name != graph.output
            and len(readers.get(n.name, [])) == 1
            and readers[n.name][0].op == "if_neuron"
            and not readers[n.name][0].attrs.get("signed")
        )

    def auto_chunk(
        self, batch: int, timesteps: int, budget: tuple[int | None, str] | None = None
    ) -> int:
        """Steps per chunk: on CPU, so that the largest layer's folded activations stay near
        ``CHUNK_BYTES``; on CUDA, as many as the memory ``budget`` allows (bytes and where
        they come from, as ``memory.budget`` gives them; default: its default), all T where
        they fit: a GPU's cache is far smaller than a layer at such batches, and larger
        launches use it better (VGG-16, T = 32: 1.2x faster folding 32 steps than 8)."""
        if self.device.type == "cuda":
            limit, source = budget or memory.budget(None, str(self.device))
            return memory.plan_chunk(self.graph, timesteps, batch, limit, source)
        largest = max(int(np.prod(s)) for s in self.shapes.values()) * 4 * batch
        return max(1, min(timesteps, CHUNK_BYTES // max(1, largest)))

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

        ``probes`` maps neuron layers to functions called once per chunk with the input
        current the layer integrates (spike amplitudes and biases applied): (B, ...) where it
        is static, else (steps*B, ...). Calibration reads currents through it.
        """
        if encoding not in ENCODINGS:
            raise ValueError(f"unknown encoding {encoding!r}")
        if record and exit_when_stable is not None:
            raise ValueError("record needs every image for every step: no early exit")
        x_all = x.to(self.device, torch.float32)
        x, y = x_all, y.to(self.device)
        chunk = chunk or self.auto_chunk(len(x), timesteps)
        state: dict[str, torch.Tensor] = {}
        static_cache: dict[str, _Value] = {}
        counts = Counts(timesteps, images=len(x), per_image=per_image)
        if per_image:
            counts.labels = y.cpu().numpy()
        running = torch.arange(len(x), device=self.device)  # batch positions of those running
        if exit_when_stable is not None:
            counts.stop = np.zeros(len(x), np.int64)
        recorded: dict[str, list[torch.Tensor]] = {n: [] for n in record}
        for t0 in range(0, timesteps, chunk):
            steps = min(chunk, timesteps - t0)
            if encoding == "direct":
                inp = _Value(x, static=True)
            else:
                # drawn for the whole batch, so that an image's input does not depend on exits
                draws = [poisson_step(x_all, generator) for _ in range(steps)]
                spikes = torch.cat(draws if len(x) == len(x_all) else [d[running] for d in draws])
                inp = _Value(spikes, static=False, events=spikes.abs())
            out = self._run_chunk(inp, steps, t0, state, static_cache, counts, recorded, probes)
            predictions = self._read_out(out, steps, t0, state, recorded)
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
                    k: _Value(v.data[keep], static=True, readout=v.readout)
                    for k, v in static_cache.items()
                }
        return counts, {k: torch.cat(v).flatten(0, 1) for k, v in recorded.items()}

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

    # -- calibration hook (calib-search; to port to the split engine): runs over a span of
    # the nodes, from the values that cross into its first node, so that a layer-by-layer
    # calibration re-runs only the layers its change affects.

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
        """Simulate one batch (direct encoding, no counts kept) from ``start``, a batch of
        images or a ``Cut`` an earlier span left, up to node ``stop`` (excluded; None: the
        whole net, read out). Returns the cut before ``stop`` (None when run to the end) and
        what ``record`` and ``probes`` ask for, as ``run`` does. Given the same chunk (a cut
        keeps its own), a run in spans computes exactly what one ``run`` does."""
        names = [n.name for n in self.graph.nodes]
        first = 0 if not isinstance(start, Cut) else names.index(start.at)
        last = None if stop is None else names.index(stop)
        if isinstance(start, Cut):
            chunk, batch = start.chunk, start.batch
        else:
            x = start.to(self.device, torch.float32)
            chunk, batch = self.auto_chunk(len(x), timesteps), len(x)
        state: dict[str, torch.Tensor] = {}
        static_cache: dict[str, _Value] = {}
        counts = Counts(timesteps, images=batch)
        recorded: dict[str, list[torch.Tensor]] = {n: [] for n in record}
        cut = None if stop is None else Cut(stop, chunk, batch)
        for c, t0 in enumerate(range(0, timesteps, chunk)):
            steps = min(chunk, timesteps - t0)
            if isinstance(start, Cut):
                given = start.values[c]
            else:
                given = {self.graph.input_name: _Value(x, static=True)}
            out = self._run_chunk(
                None, steps, t0, state, static_cache, counts, recorded, probes, (first, last, given)
            )
            counts._pending.clear()
            if cut is not None:
                cut.values.append(out)
            else:
                self._read_out(out, steps, t0, state, recorded)
        return cut, {k: torch.cat(v).flatten(0, 1) for k, v in recorded.items()}

    def _run_chunk(
        self, inp, steps, t0, state, static_cache, counts, recorded, probes=None, span=None
    ) -> _Value:
        """One chunk over every node; over a ``span`` (first node, stop node or None, the
        values crossing into the first), returns the values crossing into the stop node."""
        first, last, given = span or (0, None, {self.graph.input_name: inp})
        values: dict[str, _Value] = dict(given)
        for i, node in enumerate(self.graph.nodes[first:last], first):
            args = [values[n] for n in node.inputs]
            if all(a.static for a in args) and node.op not in _STATEFUL:
                if node.name not in static_cache:
                    static_cache[node.name] = self._static(node, args, counts)
                values[node.name] = static_cache[node.name]
            elif node.op == "if_neuron":
                probe = None if probes is None else probes.get(node.name)
                values[node.name] = self._neuron(
                    node, args[0], steps, t0, state, counts, recorded, probe
                )
            elif node.op == "maxpool_gate":
                values[node.name] = self._gate(node, args[0], steps, t0, state)
            elif node.op == "hybrid_boundary":
                values[node.name] = self._boundary(node, args[0], steps, t0, state)
            elif node.op in SYNAPTIC_OPS:
                values[node.name] = self._synapse(node, args[0], steps, t0, counts)
            else:
                values[node.name] = self._wiring(node, args, steps)
            for name in node.inputs:
                if self._last_use.get(name) == i and name != self.graph.output:
                    values.pop(name, None)
        return values if last is not None else values[self.graph.output]

    # -- stateless ops -------------------------------------------------------------------

    def _static(self, node: Node, args: list[_Value], counts: Counts) -> _Value:
        """Ops on the input image alone: computed once per batch, their MACs once per image."""
        readout = any(a.readout for a in args)
        if node.op in SYNAPTIC_OPS:
            table = counts.readout_macs if readout else counts.snn_macs
            macs = self._macs[node.name] * len(args[0].data)
            table[node.name] = table.get(node.name, 0.0) + macs
            p = self._params[node.name]
            kernel = self._conv if node.op == "conv" else ops.linear
            out = kernel(node, args[0].data, p["weight"], p["bias"])
        else:
            out = ops.run_node(node, [a.data for a in args])
        return _Value(out, static=True, readout=readout)

    def _synapse(self, node: Node, arg: _Value, steps: int, t0: int, counts: Counts) -> _Value:
        """A conv or linear layer over the chunk's steps, counting what it costs."""
        p = self._params[node.name]
        weight = p["weight"] if arg.scale is None else self._scaled_weight(node, arg.scale)
        kernel = self._conv if node.op == "conv" else ops.linear
        # added by the IF layer it feeds (never a read-out: those feed the ANN part)
        fused_bias = node.name in self._bias_to_neuron and not arg.readout
        bias = None if fused_bias else p["bias"]
        data = _expand(arg, steps)
        if len(data) == 1:
            # oneDNN and MKL take other kernels for one row, which round differently: a lone
            # image run step by step goes as two rows, so it matches its chunked runs
            out = kernel(node, data.expand(2, *data.shape[1:]), weight, bias)[:1]
        else:
            out = kernel(node, data, weight, bias)
        batch = len(data) // steps
        if arg.readout:
            # The ANN part of a hybrid net: evaluated at every step for the anytime curve, but
            # run once per read-out on hardware, so its MACs count once per image.
            if t0 == 0:
                macs = self._macs[node.name] * batch
                counts.readout_macs[node.name] = counts.readout_macs.get(node.name, 0.0) + macs
            return _Value(out, static=False, readout=True)
        if arg.spiking:
            # float64 for exact counts; the channel events are small, the spikes never copied
            per_image = arg.channel_events.reshape(len(data), -1).double() @ self._fanout[node.name]
            counts.add("synops", node.name, t0, per_image.view(steps, batch))
        else:
            macs = torch.full((steps, batch), float(self._macs[node.name]), dtype=torch.float64)
            counts.add("snn_macs", node.name, t0, macs.to(out.device))
        return _Value(out, static=False, bias=p["bias"] if fused_bias else None)

    def _conv(self, node: Node, x: torch.Tensor, weight, bias) -> torch.Tensor:
        """A conv; ``bias`` None adds none (the IF layer it feeds adds it)."""
        with_bias = bias is not None
        if not self.channels_last:
            return ops.conv(node, x, weight, bias, with_bias=with_bias)
        # no copies where the input is already channels-last, as the neurons leave it; the
        # output is made so where oneDNN answers NCHW (to a 1-channel input)
        x = x.contiguous(memory_format=torch.channels_last)
        out = ops.conv(node, x, weight, bias, with_bias=with_bias)
        return out.contiguous(memory_format=torch.channels_last)

    def _scaled_weight(self, node: Node, scale: torch.Tensor) -> torch.Tensor:
        """The weights times the amplitude of the spikes they receive, per input channel.
        A layer always receives the same neurons' spikes, so this is made once."""
        if node.name not in self._scaled_weights:
            w = self._params[node.name]["weight"]
            per_input = scale.reshape(-1)
            if node.op == "linear":
                scaled = w * per_input.reshape(1, -1)
            else:
                groups, co, ci = node.attrs["groups"], w.shape[0], w.shape[1]
                per_input = per_input.expand(groups * ci) if per_input.numel() == 1 else per_input
                grouped = w.view(groups, co // groups, ci, *w.shape[2:])
                scaled = (grouped * per_input.view(groups, 1, ci, 1, 1)).view(w.shape)
                if self.channels_last:
                    scaled = scaled.contiguous(memory_format=torch.channels_last)
            self._scaled_weights[node.name] = scaled
        return self._scaled_weights[node.name]

    def _wiring(self, node: Node, args: list[_Value], steps: int) -> _Value:
        """Pooling, flatten, add, concat and the like. Ops that act on each channel alone
        keep the spikes binary and pass their scale on."""
        readout = any(a.readout for a in args)
        a = args[0]
        if a.scale is not None and node.op in _PER_CHANNEL:
            data = _expand(a, steps)
            total = window_sum(data, node.attrs) if node.op == "avgpool" and _is_spikes(a) else None
            if total is not None:
                out = total / ops.avgpool_divisor(node.attrs, data)
            else:
                out = ops.run_node(node, [data])
            scale = a.scale
            if node.op == "flatten" and scale.numel() > 1:
                per_position = scale.expand((1,) + tuple(self.shapes[node.inputs[0]]))
                scale = per_position.reshape(1, -1)
            return _Value(
                out,
                False,
                make_events=partial(_route, node, args, steps),
                scale=scale,
                make_channel_events=_channel_route(node, args),
            )
        if node.op == "add":
            out = _add_scaled(args, steps)
        else:
            out = ops.run_node(node, [v.value(steps) for v in args])
        if not readout and all(v.spiking for v in args) and node.op in _ROUTES:
            return _Value(
                out,
                False,
                make_events=partial(_route, node, args, steps),
                make_channel_events=_channel_route(node, args),
            )
        return _Value(out, static=False, readout=readout)

    # -- stateful ops --------------------------------------------------------------------

    def _neuron(
        self, node: Node, arg: _Value, steps: int, t0: int, state, counts, recorded, probe=None
    ) -> _Value:
        """Integrate and fire over the chunk's steps, in place. The output is spikes (0/1, or
        -1/0/1 for signed neurons) whose amplitude, the threshold, travels as the value's
        scale."""
        theta = _channel(self._params[node.name]["threshold"], arg.data)
        current = arg.data if arg.scale is None else arg.data * arg.scale
        shape = tuple(arg.data.shape[1:])
        batch = current.shape[0] if arg.static else current.shape[0] // steps
        # the conv's bias where it was left to this layer, then the layer's own, in that order
        biases = tuple(
            _channel(b, arg.data)
            for b in (arg.bias, self._params[node.name].get("bias"))
            if b is not None
        )
        if probe is not None:  # calibration hook (calib-search): the current, biases included
            probe(sum(biases, current) if biases else current)
        if not arg.static:
            current = current.view((steps, batch) + shape)
        # membranes and spikes in the layout of the current (channels-last after a conv)
        nhwc = _channels_last(arg.data)
        v = state.get(node.name)
        if v is None:
            v = _empty((batch,) + shape, nhwc, arg.data)
            v.copy_((node.attrs["v0"] * theta).expand((batch,) + shape))
            if "potential" in self._params[node.name]:
                v.add_(_channel(self._params[node.name]["potential"], arg.data))
        spikes = _empty((steps, batch) + shape, nhwc, v)
        signed, reset = node.attrs.get("signed"), node.attrs["reset"]
        threshold = self._scalar_threshold.get(node.name, theta)  # a float: no wait for the GPU
        if self.fused and not signed and fused_steps.applies(v, current, arg.static, spikes):
            fused_steps.binary_steps(v, current, arg.static, threshold, biases, spikes, reset)
        else:
            for b in biases:
                current = current + b
            if signed:
                _signed_steps(v, current, arg.static, theta, spikes, state, f"{node.name}:net")
            else:
                _binary_steps(v, current, arg.static, threshold, spikes, reset)
        state[node.name] = v
        events = spikes.abs() if signed else spikes  # a -1 costs what a 1 does
        # The sum over channels comes first and is kept: it is what the layers receiving these
        # spikes need to count their synops.
        per_position = events.sum(2)
        counts.add("spikes", node.name, t0, per_position.view(steps, batch, -1).sum(2))
        if node.name in recorded:
            recorded[node.name].append(spikes)
        flat = spikes.flatten(0, 1)
        return _Value(
            flat,
            False,
            # binary spikes are their own events (the same tensor: what _is_spikes checks)
            events=flat if events is spikes else events.flatten(0, 1),
            scale=theta,
            channel_events=per_position.flatten(0, 1),
        )

    def _gate(self, node: Node, arg: _Value, steps: int, t0: int, state) -> _Value:
        """Per window, the input that has fired most so far. Within a channel all inputs
        share one threshold, so binary spikes rank the windows as their values would."""
        data = _expand(arg, steps)
        batch = data.shape[0] // steps
        seq = data.view((steps, batch) + tuple(data.shape[1:]))
        score = self._running_sum(seq, state.get(node.name))
        state[node.name] = score[-1]
        out = None
        if _is_spikes(arg):  # spike counts so far: at most t0 + steps
            out = gated_select(score.flatten(0, 1), data, node.attrs, t0 + steps)
        if out is None:
            idx = ops.maxpool_indices(node, score.flatten(0, 1))
            out = ops.gather_windows(node, data, idx)
        if not arg.spiking:
            return _Value(out, static=False, scale=arg.scale)
        if _is_spikes(arg):  # the chosen spikes are the events
            return _Value(out, False, events=out, scale=arg.scale)
        return _Value(
            out,
            False,
            make_events=lambda: ops.gather_windows(
                node,
                _expand(_Value(arg.events, arg.static), steps),
                ops.maxpool_indices(node, score.flatten(0, 1)),
            ),
            scale=arg.scale,
        )

    def _boundary(self, node: Node, arg: _Value, steps: int, t0: int, state) -> _Value:
        """Running mean over the steps so far: rate x threshold of spikes, or the mean current
        of a layer that integrates without firing."""
        if arg.static:
            return _Value(arg.data, static=True, readout=True)
        value = arg.value(steps)
        batch = value.shape[0] // steps
        seq = value.view((steps, batch) + tuple(value.shape[1:]))
        total = self._running_sum(seq, state.get(node.name))
        state[node.name] = total[-1]
        count = torch.arange(t0 + 1, t0 + steps + 1, device=total.device, dtype=total.dtype)
        mean = total / count.view((steps,) + (1,) * (total.dim() - 1))
        return _Value(mean.flatten(0, 1), static=False, readout=True)

    def _running_sum(self, seq: torch.Tensor, initial: torch.Tensor | None) -> torch.Tensor:
        """``_running_sum``, in one kernel where the loops are fused."""
        # seq as its own layout reference: empty_like gives a dense seq's strides
        if self.fused and fused_steps.applies(
            seq[0] if initial is None else initial, seq, False, seq
        ):
            out = torch.empty_like(seq)
            fused_steps.running_sum(seq, initial, out)
            return out
        return _running_sum(seq, initial)

    def _read_out(self, out: _Value, steps: int, t0: int, state, recorded) -> torch.Tensor:
        """The prediction of every image at every step of the chunk (steps x B). The output
        layer integrates: the prediction at step t is argmax of V(t). The ANN part of a
        hybrid net reads out directly: its output at step t is its prediction."""
        data = out.value(steps)
        batch = data.shape[0] // steps
        seq = data.reshape(steps, batch, -1)  # a copy if the output is a channels-last conv's
        if not out.readout:
            seq = self._running_sum(seq, state.get(OUTPUT))
            state[OUTPUT] = seq[-1]
        if OUTPUT in recorded:
            t = torch.arange(t0 + 1, t0 + steps + 1, device=seq.device, dtype=seq.dtype)
            recorded[OUTPUT].append(seq if out.readout else seq / t.view(-1, 1, 1))
        return seq.argmax(-1)


def _binary_steps(v, current, static: bool, theta, spikes, reset: str) -> None:
    """IF: ``v += I; s = v >= theta``; reset by subtracting theta, or to zero. ``theta``: a
    float, or a tensor that broadcasts against ``v``."""
    scalar = theta if isinstance(theta, float) else None
    for t in range(len(spikes)):
        v.add_(current if static else current[t])
        torch.ge(v, theta, out=spikes[t])  # written as 0/1 floats: no bool round trip
        if reset != "subtract":
            v.mul_(1.0 - spikes[t])
        elif scalar is not None:
            v.sub_(spikes[t], alpha=scalar)
        else:
            v.addcmul_(spikes[t], theta, value=-1.0)


def _signed_steps(v, current, static: bool, theta, spikes, state, key: str) -> None:
    """Signed IF with memory (Wang et al. 2022): as IF, and a neuron whose membrane has fallen
    below 0 emits -1 (and gains theta back) if it has emitted more 1s than -1s so far. The
    net count after t steps is then the rounded integral of the input over theta, clipped at
    0 (and at t): what the ANN computes from the mean input so far, quantised. Binary IF
    fixes its spikes as the input arrives, so a layer whose input comes late or uneven (a
    residual add, a deep layer at few steps) over- or under-fires for good."""
    net = state.get(key)
    if net is None:
        net = torch.zeros_like(v)
    # step buffers in v's layout (channels-last after a conv): no allocation per step
    fell = torch.empty_like(v, dtype=torch.bool)
    owes = torch.empty_like(v, dtype=torch.bool)
    for t in range(len(spikes)):
        s = spikes[t]
        v.add_(current if static else current[t])
        torch.ge(v, theta, out=s)
        torch.lt(v, 0, out=fell).logical_and_(torch.gt(net, 0, out=owes))
        s.sub_(fell.to(s.dtype))
        net.add_(s)
        v.addcmul_(s, theta, value=-1.0)
    state[key] = net


_STATEFUL = frozenset({"if_neuron", "maxpool_gate", "hybrid_boundary"})
#: Wiring through which spikes stay spike events (so synops are counted where they land).
_ROUTES = frozenset({"add", "concat", "flatten", "reshape", "avgpool", "global_avgpool"})
#: Wiring that treats each channel alone, so a per-channel spike amplitude passes through.
_PER_CHANNEL = frozenset({"flatten", "avgpool", "global_avgpool"})


def _add_scaled(args: list[_Value], steps: int) -> torch.Tensor:
    """``add`` of values in order, each spike tensor's scalar amplitude applied inside the add
    (a + theta * s, one kernel instead of two; theta * s is exact, so the sum is the same)."""

    def term(v: _Value) -> tuple[torch.Tensor, float]:
        if v.scale is not None and v.scale.dim() == 0:
            return _expand(v, steps), float(v.scale)
        return v.value(steps), 1.0

    (first, a), (second, b) = term(args[0]), term(args[1])
    if a != 1.0 and b != 1.0:
        out = torch.add(first * a, second, alpha=b)
    elif a != 1.0:
        out = torch.add(second, first, alpha=a)  # b + a * s == a * s + b exactly
    else:
        out = torch.add(first, second, alpha=b)
    for v in args[2:]:
        data, c = term(v)
        out.add_(data, alpha=c)
    return out


def _route(node: Node, args: list[_Value], steps: int) -> torch.Tensor:
    """Spike events through a wiring op, so synops are counted where the spikes land."""
    ev = [_expand(_Value(a.events, a.static), steps) for a in args]
    if node.op == "add":
        return sum(ev[1:], ev[0])
    if node.op == "concat":
        return torch.cat(ev, dim=node.attrs["axis"])
    if node.op == "flatten":
        return ev[0].flatten(1)
    if node.op == "reshape":
        return ev[0].reshape((ev[0].shape[0],) + tuple(node.attrs["shape"]))
    if node.op == "avgpool":
        # Each spike reaches every pooled output whose window holds it.
        return _event_sum_pool(ev[0], node.attrs)
    return ev[0].sum(dim=(2, 3), keepdim=True)  # global_avgpool


def _channel_route(node: Node, args: list[_Value]):
    """How to get a wiring op's channel events from its inputs' without the full events (a
    pooling of one channel instead of all, a sum instead of a concatenation), or None where
    the channel structure is lost (a reshape to more than one axis)."""
    if node.op == "avgpool":
        # Each spike reaches every pooled output whose window holds it, in every channel alike.
        return lambda: _event_sum_pool(args[0].channel_events.unsqueeze(1), node.attrs).squeeze(1)
    if node.op == "add" or (node.op == "concat" and node.attrs["axis"] == 1):
        return lambda: sum((a.channel_events for a in args[1:]), args[0].channel_events)
    if node.op == "concat":  # along a spatial axis, one fewer once channels are summed
        return lambda: torch.cat([a.channel_events for a in args], dim=node.attrs["axis"] - 1)
    if node.op == "global_avgpool":
        return lambda: args[0].channel_events.sum(dim=(1, 2), keepdim=True)
    if node.op == "flatten" or (node.op == "reshape" and len(node.attrs["shape"]) == 1):
        # one axis left, so it is the channel axis: the sum is the image's total
        return lambda: args[0].channel_events.reshape(len(args[0].data), -1).sum(1)
    return None


def _event_sum_pool(events: torch.Tensor, attrs: dict) -> torch.Tensor:
    """Window sums of event counts: integers, so the fast tiling sum is exact."""
    total = window_sum(events, attrs)
    return ops.sum_pool(events, attrs) if total is None else total


def _is_spikes(v: _Value) -> bool:
    """Whether the data are a neuron's binary spikes themselves (0/1, before their scale), as
    the fast pooling of spikes requires."""
    return v._events is not None and v._events is v.data


def _per_position(node: Node, fanout: torch.Tensor, in_shape: tuple[int, ...]) -> torch.Tensor:
    """A layer's fan-out per input position with the channel axis dropped: it is the same
    for every input channel (a conv's output channels per group, a linear's out features)."""
    per_channel = fanout.view(in_shape[0], -1)
    if not torch.equal(per_channel, per_channel[:1].expand_as(per_channel)):
        raise AssertionError(f"node {node.name!r}: fan-out differs between input channels")
    return per_channel[0].double()


def _expand(v: _Value, steps: int) -> torch.Tensor:
    if not v.static:
        return v.data
    return v.data.unsqueeze(0).expand((steps,) + tuple(v.data.shape)).flatten(0, 1)


def _running_sum(seq: torch.Tensor, initial: torch.Tensor | None) -> torch.Tensor:
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


def _channels_last(x: torch.Tensor) -> bool:
    """Whether a 4-D ``x`` is laid out channels-last (and not also plain contiguous)."""
    return (
        x.dim() == 4
        and x.is_contiguous(memory_format=torch.channels_last)
        and not x.is_contiguous()
    )


def _empty(shape: tuple[int, ...], nhwc: bool, like: torch.Tensor) -> torch.Tensor:
    """An empty tensor of ``shape`` (..., C, H, W) with ``like``'s dtype and device, laid out
    channels-last if ``nhwc``: then every (C, H, W) slice is channels-last, and flattening
    the leading axes (time into batch) stays a view."""
    if not nhwc:
        return torch.empty(shape, device=like.device, dtype=like.dtype)
    *lead, c, h, w = shape
    return torch.empty((*lead, h, w, c), device=like.device, dtype=like.dtype).movedim(-1, -3)


def _channel(p: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return p.reshape((1, -1) + (1,) * (like.dim() - 2)) if p.numel() > 1 else p.reshape(())


def _add_steps(table: dict, name: str, per_step: np.ndarray, timesteps: int, t0: int) -> None:
    row = table.setdefault(name, np.zeros(timesteps))
    row[t0 : t0 + len(per_step)] += per_step
