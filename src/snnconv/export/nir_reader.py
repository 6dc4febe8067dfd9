"""NIR -> SNN graph: simulate, count and gate a NIR network made by any tool with snnconv.

Nodes read: ``Input``, ``Output``, ``IF`` (``v_reset = 0``), ``Affine``, ``Linear``,
``Conv2d``, ``AvgPool2d``, ``SumPool2d``, ``Flatten``, ``Scale``; edges meeting at a node sum.
A loop ``I`` (integrator) -> ``Threshold`` -> ``Scale(-c)`` -> back into the ``I``, with c the
threshold, is one IF neuron that resets by subtraction (what snnconv's export writes for
``--reset subtract``). Anything else (LIF and other leaky neurons included: snnconv's engine
has no leak; other cycles) is refused with the node's name and type.

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
from snnconv.export.nir_loops import subtraction_loops
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
        r = np.asarray(node.r, np.float64)
        v_reset = np.asarray(node.v_reset if node.v_reset is not None else 0.0)
        if np.any(v_reset != 0):
            raise InputError(f"NIR node {nid!r}: IF with v_reset != 0 (snnconv resets to 0)")
        if np.any(r <= 0):
            raise InputError(f"NIR node {nid!r}: IF with r <= 0 (snnconv needs r > 0)")
        theta = _fit(np.asarray(node.v_threshold, np.float64), x.shape, nid, "v_threshold")
        # v_nir = r * factor * v_graph fires on v_nir > theta: v_graph > theta / (r * factor).
        bound = theta / (_fit(r, x.shape, nid, "r") * x.factor())
        if x.unit and np.all(r == 1):
            bound = np.asarray(node.v_threshold, np.float32) * np.ones(x.shape, np.float32)
        threshold = np.nextafter(np.asarray(bound, np.float32), np.float32(np.inf))
        self._neuron(nid, x, threshold, "zero")

    def _neuron(self, nid: str, x: _Value, threshold: np.ndarray, reset: str) -> None:
        per_channel = _per_channel(threshold, nid, "v_threshold / (r x input scale)")
        name = self._emit(
            nid,
            "if_neuron",
            [x.name],
            {"reset": reset, "v0": 0.0},
            {"threshold": per_channel},
        )
        amplitude = np.broadcast_to(per_channel.reshape((-1,) + (1,) * (len(x.shape) - 1)), x.shape)
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
        r = _fit(np.asarray(integrator.r, np.float64), x.shape, nid, "r")
        if np.any(r <= 0):
            raise InputError(f"NIR node {self.loops[nid][0]!r}: I with r <= 0 (needs r > 0)")
        # v_nir = r * factor * v_graph: thresholds and the reset both divide by r * factor.
        units = r * x.factor()
        theta = _fit(np.asarray(node.threshold, np.float64), x.shape, nid, "threshold")
        drop = -_fit(np.asarray(reset.scale, np.float64), x.shape, nid, "reset scale") * r
        if x.unit and np.all(r == 1):
            bound = np.asarray(node.threshold, np.float32) * np.ones(x.shape, np.float32)
        else:
            bound = np.asarray(theta / units, np.float32)
        threshold = np.nextafter(bound, np.float32(np.inf))
        # The loop subtracts r * c from v_nir; snnconv subtracts its threshold. Equal up to the
        # float32 step NIR's strict firing rule puts between them.
        if not np.allclose(drop / units, threshold, rtol=4e-7, atol=0):
            raise InputError(
                f"NIR node {self.loops[nid][1]!r}: the reset loop subtracts {drop.ravel()[0]:g}"
                f", not the threshold {theta.ravel()[0]:g}; snnconv's reset by subtraction "
                "subtracts the threshold"
            )
        self._neuron(nid, x, threshold, "subtract")

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
        stride, dilation = _pair(node.stride), _pair(node.dilation)
        pad = _padding(node.padding, w.shape[2:], dilation, stride, nid)
        bias = np.asarray(node.bias, np.float32)
        attrs = {"stride": stride, "padding": pad * 2, "dilation": dilation, "groups": groups}
        params = {"weight": w.astype(np.float32), "bias": bias}
        name = self._emit(nid, "conv", [x.name], attrs, params)
        self._set(nid, name, _conv_shape(x.shape, w.shape, stride, pad, dilation))

    def _pool(self, nid: str, node, sums: bool) -> None:
        x = self._input(nid)
        kernel = _pair(node.kernel_size)
        stride, pad = _pair(node.stride), _pair(node.padding)
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


def _pair(v) -> tuple[int, int]:
    a = np.ravel(np.asarray(v)).astype(int).tolist()
    return (a[0], a[0]) if len(a) == 1 else (a[0], a[1])


def _per_channel(a: np.ndarray, nid: str, what: str) -> np.ndarray:
    """A (C, ...) array's value per channel; refused unless constant within each channel."""
    flat = np.asarray(a).reshape(np.shape(a)[0], -1)
    if not np.all(flat == flat[:, :1]):
        raise InputError(
            f"NIR node {nid!r}: its {what} varies within a channel; snnconv keeps one value "
            "per channel"
        )
    return flat[:, 0].astype(np.float32).copy()


def _padding(padding, kernel, dilation, stride, nid: str) -> tuple[int, int]:
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0)
        reach = [d * (k - 1) for k, d in zip(kernel, dilation, strict=True)]
        if stride == (1, 1) and all(r % 2 == 0 for r in reach):
            return (reach[0] // 2, reach[1] // 2)
        raise InputError(f"NIR node {nid!r}: padding 'same' that is not symmetric")
    return _pair(padding)


def _conv_shape(x_shape, w_shape, stride, pad, dilation) -> tuple[int, int, int]:
    hw = tuple(
        (x_shape[1 + i] + 2 * pad[i] - dilation[i] * (w_shape[2 + i] - 1) - 1) // stride[i] + 1
        for i in (0, 1)
    )
    return (w_shape[0], *hw)
