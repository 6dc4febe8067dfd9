"""NIR -> SNN graph: simulate, count and gate a NIR network made by any tool with snnconv.

Nodes read: ``Input``, ``Output``, ``IF`` (started at 0), ``Affine``, ``Linear``,
``Conv2d``, ``AvgPool2d``, ``SumPool2d``, ``Flatten``, ``Scale``; edges meeting at a node sum.
A loop ``I`` (integrator) -> ``Threshold`` -> ``Scale(-c)`` -> back into the ``I`` is one IF
neuron that resets by subtraction of c (what snnconv's export writes for ``--reset subtract``);
a firing level below c is an initial membrane (``snnconv.export.nir_neurons``). Anything else
(LIF and other leaky neurons included: snnconv's engine has no leak; other cycles) is refused
with the node's name and type.

NIR's IF emits unit spikes; snnconv's ``if_neuron`` emits spikes whose amplitude is its
threshold. The reader tracks, for each NIR value, the factor ``mult / div`` between it and the
graph value that computes it, and folds that factor into the weights of the next conv/linear
layer (in float64, rounded once) or into the next neuron's threshold. Keeping ``mult`` and
``div`` apart makes a ``Scale`` that restores a threshold amplitude (what snnconv's export
writes) exactly the identity. NIR fires on ``v > v_threshold``; the threshold read is the
float32 just above it, since snnconv fires on ``v >= threshold``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from snnconv import ops
from snnconv.errors import InputError
from snnconv.export.nir_geometry import conv_shape, padding, pair
from snnconv.export.nir_neurons import (
    firing_level,
    graph_level,
    recorded,
    snnconv_neuron,
    subtraction_loops,
)
from snnconv.graph import Graph, GraphError, Node


@dataclass
class _Value:
    """A NIR node's output: NIR value = graph value ``name`` x mult / div (per element)."""

    name: str
    shape: tuple[int, ...]
    mult: np.ndarray
    div: np.ndarray

    @property
    def unit(self) -> bool:
        return bool(np.array_equal(self.mult, self.div))

    def factor(self) -> np.ndarray:
        return self.mult.astype(np.float64) / self.div.astype(np.float64)


def read_nir(path: str | Path) -> Graph:
    """The SNN graph of a NIR file; ``InputError`` for what snnconv cannot simulate."""
    from snnconv.export.nir import _import_nir

    nir = _import_nir()
    try:
        graph = nir.read(str(path))
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except Exception as e:  # h5py and nir raise many kinds on a malformed file
        raise InputError(f"{path}: not a readable NIR file ({type(e).__name__}: {e})") from None
    snn = from_nir(graph)
    snn.metadata["source_name"] = Path(str(path)).name
    return snn


def from_nir(graph) -> Graph:
    """The SNN graph of an in-memory ``nir.NIRGraph``."""
    return _Reader(graph).run()


class _Reader:
    def __init__(self, graph):
        self.g = graph
        self.nodes: list[Node] = []
        self.values: dict[str, _Value] = {}
        self.preds = {n: [s for s, t in graph.edges if t == n] for n in graph.nodes}
        for s, t in graph.edges:
            if s not in graph.nodes or t not in graph.nodes:
                raise InputError(f"NIR edge ({s!r}, {t!r}) names a node the graph does not have")
        # Threshold id -> (its integrator, its reset Scale): each loop read as one neuron.
        self.loops = subtraction_loops(graph, self.preds)
        for t, (integrator, reset) in self.loops.items():
            self.preds[t] = [p for p in self.preds[integrator] if p != reset]
            del self.preds[integrator], self.preds[reset]

    def run(self) -> Graph:
        inputs = [k for k, n in self.g.nodes.items() if type(n).__name__ == "Input"]
        outputs = [k for k, n in self.g.nodes.items() if type(n).__name__ == "Output"]
        if len(inputs) != 1 or len(outputs) != 1:
            raise InputError(
                f"a NIR graph needs one Input and one Output node, found {len(inputs)} and "
                f"{len(outputs)}"
            )
        shape = tuple(int(d) for d in np.ravel(self.g.nodes[inputs[0]].input_type["input"]))
        ones = np.ones(shape, np.float32)
        self.values[inputs[0]] = _Value(_name(inputs[0]), shape, ones, ones)
        for nid in self._order(inputs[0]):
            node = self.g.nodes[nid]
            handler = _HANDLERS.get(type(node).__name__)
            if handler is None:
                raise InputError(_unsupported(nid, node))
            handler(self, nid, node)
        out = self.values[outputs[0]]
        factor = np.unique(out.factor())
        if len(factor) != 1 or factor[0] <= 0:
            raise InputError(
                f"NIR node {outputs[0]!r}: the output is scaled per element; its argmax is not "
                "the network's prediction in snnconv's read-out"
            )
        snn = Graph(self.nodes, _name(inputs[0]), shape, out.name, {"snnconv.source": "nir"})
        try:
            snn.validate()
            ops.infer_shapes(snn)  # weights that do not fit their inputs stop here, named
        except GraphError as e:
            raise InputError(f"NIR graph: {e}") from None
        return snn

    def _order(self, start: str) -> list[str]:
        """A topological order that keeps the file's node order where it can."""
        done, order = {start}, []
        pending = [n for n in self.preds if n != start]
        while pending:
            ready = next((n for n in pending if all(p in done for p in self.preds[n])), None)
            if ready is None:
                raise InputError(
                    f"NIR nodes {', '.join(map(repr, pending[:3]))} are in a cycle or not "
                    "reached from the Input; snnconv reads feed-forward graphs"
                )
            order.append(ready)
            done.add(ready)
            pending.remove(ready)
        return order

    # -- wiring ----------------------------------------------------------------------------

    def _input(self, nid: str) -> _Value:
        """The sum of the values on ``nid``'s incoming edges (an ``add`` node if several)."""
        sources = [self.values[p] for p in self.preds[nid]]
        if not sources:
            raise InputError(f"NIR node {nid!r} has no incoming edge")
        if len(sources) == 1:
            return sources[0]
        first = sources[0]
        if any(s.shape != first.shape for s in sources):
            raise InputError(f"NIR node {nid!r}: the edges it sums have different shapes")
        if not all(np.array_equal(s.factor(), first.factor()) for s in sources):
            raise InputError(
                f"NIR node {nid!r}: it sums values at different scales (e.g. spikes of "
                "neurons with different thresholds) without a Scale node to match them"
            )
        name = self._emit(f"{nid}_sum", "add", [s.name for s in sources])
        return _Value(name, first.shape, first.mult, first.div)

    def _emit(self, nid: str, op: str, inputs: list[str], attrs=None, params=None) -> str:
        name = _name(nid)
        self.nodes.append(Node(name, op, inputs, attrs or {}, params or {}))
        return name

    def _set(self, nid: str, name: str, shape, mult=None, div=None) -> None:
        ones = np.ones(shape, np.float32)
        self.values[nid] = _Value(
            name, tuple(shape), ones if mult is None else mult, ones if div is None else div
        )

    # -- nodes -----------------------------------------------------------------------------

    def _output(self, nid: str, node) -> None:
        self.values[nid] = self._input(nid)

    def _if(self, nid: str, node) -> None:
        x = self._input(nid)
        _fit(np.asarray(node.v_threshold), x.shape, nid, "v_threshold")
        r = self._r(nid, node, x)
        v_reset = np.asarray(node.v_reset if node.v_reset is not None else 0.0, np.float32)
        v_reset = _fit(v_reset, x.shape, nid, "v_reset")
        level, units = self._level(nid, node.v_threshold, x, r)
        # Read as starting at 0 (NIR gives no initial state; snnconv's export and snnTorch
        # start there) and falling to v_reset: snnconv's IF resetting to zero, started at
        # -v_reset, its threshold that far above the firing level.
        start = np.asarray(-v_reset / units, np.float32)
        theta = np.asarray(level + start.astype(np.float64), np.float32)
        if np.any(v_reset >= np.asarray(node.v_threshold)) or np.any(theta <= 0):
            raise InputError(
                f"NIR node {nid!r}: IF with v_reset != 0 at or above v_threshold (snnconv's "
                "IF falls below its threshold when it fires)"
            )
        self._neuron(nid, x, theta, start, "zero")

    def _r(self, nid: str, node, x: _Value) -> np.ndarray:
        r = _fit(np.asarray(node.r, np.float64), x.shape, nid, "r")
        if np.any(r <= 0):
            raise InputError(f"NIR node {nid!r}: {type(node).__name__} with r <= 0 (needs r > 0)")
        return r

    def _level(self, nid: str, v_threshold, x: _Value, r: np.ndarray):
        """Where snnconv fires (v >= it) for NIR's ``v > v_threshold``, in graph units, and the
        factor between NIR's membrane and the graph's (``r`` x the input's scale)."""
        threshold = _fit(np.asarray(v_threshold, np.float64), x.shape, nid, "threshold")
        return graph_level(threshold, r * x.factor(), x.unit and bool(np.all(r == 1)))

    def _recorded(self, node, x: _Value, r, level, reset, reset_of):
        """The threshold and start snnconv's export recorded, where they fit this node."""
        if not (x.unit and np.all(r == 1)) or not node.metadata:
            return None
        level = np.broadcast_to(np.asarray(level, np.float32), x.shape)
        return recorded(node.metadata, level, np.asarray(reset, np.float32), reset_of)

    def _neuron(self, nid: str, x: _Value, theta, start, reset: str) -> None:
        theta = _per_channel(theta, nid, "threshold / (r x input scale)")
        start = _per_channel(start, nid, "initial membrane")
        shape = (-1,) + (1,) * (len(x.shape) - 1)
        attrs, params = snnconv_neuron(theta.reshape(shape), start.reshape(shape))
        name = self._emit(nid, "if_neuron", [x.name], {"reset": reset, **attrs}, params)
        amplitude = np.broadcast_to(theta.reshape(shape), x.shape)
        self._set(nid, name, x.shape, div=amplitude.astype(np.float32).copy())

    def _threshold(self, nid: str, node) -> None:
        if nid not in self.loops:
            raise InputError(
                f"NIR node {nid!r}: Threshold is not supported outside an integrator's reset "
                "loop (it has no membrane); snnconv reads I -> Threshold -> Scale(-threshold) "
                "-> I as an IF that resets by subtraction"
            )
        integrator, reset = (self.g.nodes[k] for k in self.loops[nid])
        x = self._input(nid)
        r = self._r(self.loops[nid][0], integrator, x)
        level, units = self._level(nid, node.threshold, x, r)
        scale = _fit(np.asarray(reset.scale, np.float32), x.shape, nid, "reset scale")
        found = self._recorded(node, x, r, node.threshold, scale, lambda th, st: -th)
        # The loop subtracts r * c from NIR's membrane: snnconv's threshold. Where the firing
        # level is more than a float32 step from it, the gap is where the neuron starts.
        theta = np.asarray(-scale.astype(np.float64) * r / units, np.float32)
        if found is None and np.any(theta <= 0):
            raise InputError(
                f"NIR node {self.loops[nid][1]!r}: the reset loop adds to the membrane; "
                "reset by subtraction needs Scale(-c) with c > 0"
            )
        start = firing_level(theta, level)
        close = np.abs(start) <= np.spacing(theta)
        theta, start = found or (np.where(close, level, theta), np.where(close, 0, start))
        self._neuron(nid, x, theta, start.astype(np.float32), "subtract")

    def _lif(self, nid: str, node) -> None:
        raise InputError(
            f"NIR node {nid!r}: {type(node).__name__} is a leaky neuron; snnconv simulates "
            "integrate-and-fire (IF) neurons only"
        )

    def _affine(self, nid: str, node) -> None:
        x = self._input(nid)
        w = np.asarray(node.weight, np.float64)
        bias = getattr(node, "bias", None)
        bias = np.zeros(w.shape[0], np.float32) if bias is None else np.asarray(bias, np.float32)
        if len(x.shape) != 1 or w.shape[1] != x.shape[0]:
            raise InputError(
                f"NIR node {nid!r}: {type(node).__name__} weight {w.shape} does not fit its "
                f"input of shape {x.shape} (flatten first)"
            )
        weight = w if x.unit else w * x.factor().reshape(1, -1)
        name = self._emit(
            nid, "linear", [x.name], {}, {"weight": weight.astype(np.float32), "bias": bias}
        )
        self._set(nid, name, (w.shape[0],))

    def _conv2d(self, nid: str, node) -> None:
        x = self._input(nid)
        if len(x.shape) != 3:
            raise InputError(f"NIR node {nid!r}: Conv2d on an input of shape {x.shape}")
        w = np.asarray(node.weight, np.float64)
        groups = int(node.groups)
        factor = _per_channel(x.factor(), nid, "input scale")
        if not x.unit:
            cig, cog = w.shape[1], w.shape[0] // groups
            w = w.copy()
            for g in range(groups):
                w[g * cog : (g + 1) * cog] *= factor[g * cig : (g + 1) * cig].reshape(1, -1, 1, 1)
        stride, dilation = pair(node.stride), pair(node.dilation)
        pad = padding(node.padding, w.shape[2:], dilation, stride, nid)
        bias = np.asarray(node.bias, np.float32)
        attrs = {"stride": stride, "padding": pad * 2, "dilation": dilation, "groups": groups}
        params = {"weight": w.astype(np.float32), "bias": bias}
        name = self._emit(nid, "conv", [x.name], attrs, params)
        self._set(nid, name, conv_shape(x.shape, w.shape, stride, pad, dilation))

    def _pool(self, nid: str, node, sums: bool) -> None:
        x = self._input(nid)
        kernel = pair(node.kernel_size)
        stride, pad = pair(node.stride), pair(node.padding)
        out_hw = tuple((x.shape[1 + i] + 2 * pad[i] - kernel[i]) // stride[i] + 1 for i in (0, 1))
        out = (x.shape[0], *out_hw)
        _per_channel(x.factor(), nid, "input scale")
        if kernel == x.shape[1:] and stride == kernel and pad == (0, 0):
            name = self._emit(nid, "global_avgpool", [x.name])
        else:
            attrs = {
                "kernel": kernel,
                "stride": stride,
                "padding": pad * 2,
                "ceil_mode": False,
                "count_include_pad": True,
            }
            name = self._emit(nid, "avgpool", [x.name], attrs)
        mult, div = (x.mult[:, :1, :1], x.div[:, :1, :1])
        if sums:  # a sum pool is an average pool times the window size
            mult = mult * np.float32(kernel[0] * kernel[1])
        mult, div = np.broadcast_to(mult, out).copy(), np.broadcast_to(div, out).copy()
        self._set(nid, name, out, mult, div)

    def _avgpool(self, nid: str, node) -> None:
        self._pool(nid, node, sums=False)

    def _sumpool(self, nid: str, node) -> None:
        self._pool(nid, node, sums=True)

    def _flatten(self, nid: str, node) -> None:
        x = self._input(nid)
        start = int(node.start_dim)
        if int(node.end_dim) != -1 or start not in (0, 1):
            raise InputError(
                f"NIR node {nid!r}: Flatten over dims {start}..{node.end_dim}; snnconv "
                "flattens every axis of a sample"
            )
        if len(x.shape) == 1:
            self.values[nid] = x
            return
        name = self._emit(nid, "flatten", [x.name])
        n = int(np.prod(x.shape))
        self._set(nid, name, (n,), x.mult.reshape(-1).copy(), x.div.reshape(-1).copy())

    def _scale(self, nid: str, node) -> None:
        x = self._input(nid)
        s = _fit(np.asarray(node.scale, np.float32), x.shape, nid, "scale")
        if np.any(s <= 0):
            raise InputError(
                f"NIR node {nid!r}: Scale with a factor <= 0; snnconv folds scales into the "
                "next layer's weights and needs them positive"
            )
        self.values[nid] = _Value(x.name, x.shape, (x.mult * s).astype(np.float32), x.div)


_HANDLERS: dict[str, Callable] = {
    "Output": _Reader._output,
    "IF": _Reader._if,
    "Threshold": _Reader._threshold,
    "LIF": _Reader._lif,
    "CubaLIF": _Reader._lif,
    "Affine": _Reader._affine,
    "Linear": _Reader._affine,
    "Conv2d": _Reader._conv2d,
    "AvgPool2d": _Reader._avgpool,
    "SumPool2d": _Reader._sumpool,
    "Flatten": _Reader._flatten,
    "Scale": _Reader._scale,
}


def _unsupported(nid: str, node) -> str:
    return (
        f"NIR node {nid!r}: {type(node).__name__} is not supported; snnconv reads "
        + ", ".join(sorted(k for k in _HANDLERS if k not in ("LIF", "CubaLIF")))
        + " and Input"
    )


def _name(nid: str) -> str:
    return re.sub(r"[^A-Za-z0-9_./:-]+", "_", str(nid)) or "node"


def _fit(a: np.ndarray, shape: tuple[int, ...], nid: str, what: str) -> np.ndarray:
    try:
        return np.broadcast_to(a, shape)
    except ValueError:
        raise InputError(
            f"NIR node {nid!r}: {what} of shape {a.shape} does not fit its input {shape}"
        ) from None


def _per_channel(a: np.ndarray, nid: str, what: str) -> np.ndarray:
    """A (C, ...) array's value per channel; refused unless constant within each channel."""
    flat = np.asarray(a).reshape(np.shape(a)[0], -1)
    if not np.all(flat == flat[:, :1]):
        raise InputError(
            f"NIR node {nid!r}: its {what} varies within a channel; snnconv keeps one value "
            "per channel"
        )
    return flat[:, 0].astype(np.float32).copy()
