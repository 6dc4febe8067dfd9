"""SNN graph -> NIR (the Neuromorphic Intermediate Representation, neuroir.org).

Mapping: ``if_neuron`` -> reset to zero: ``nir.IF`` (r = 1, v_threshold = threshold,
v_reset = 0); reset by subtraction: the loop ``nir.I`` (an integrator, r = 1) ->
``nir.Threshold`` -> ``nir.Scale(-threshold)`` -> back into the ``nir.I``. ``conv`` ->
``nir.Conv2d``, ``linear`` -> ``nir.Affine``, ``avgpool``/``global_avgpool`` ->
``nir.AvgPool2d``, ``flatten`` -> ``nir.Flatten``, ``add`` -> edges meeting at one node (NIR
sums them); the graph input and output become ``nir.Input`` and ``nir.Output``.

The subtraction loop is NIR's own description of that neuron (see
``snnconv.export.nir_neurons``): with dt = 1 and the spikes on the loop's edge arriving one
step later (as on every recurrent edge in a discrete-time consumer), ``v[t] = v[t-1] + I[t] -
theta * s[t-1]`` and ``s[t] = v[t] > v_threshold``: v is snnconv's membrane before its reset,
so the spikes are snnconv's. An initial membrane (``v0``, a calibrated ``potential``) becomes
a firing level that far below the threshold (NIR neurons start at 0). In float32 the two add
the same terms in another order (``v + (I - theta)`` against ``(v - theta) + I``); a membrane
may differ in its last bit after a spike, and a spike then only where it lands on the level.

Two facts make the export exact rather than approximate:

* snnconv spikes carry their layer's threshold as amplitude; NIR's IF emits unit spikes. The
  threshold is folded into the input-channel weights of every synaptic layer the spikes reach
  (through pooling/flatten), and where spikes meet an add or the output directly a
  ``nir.Scale`` restores the amplitude.
* a neuron's constant ``bias`` current (layer-wise calibration) is added to the bias of the
  conv/linear layer that feeds it alone (directly or through an add).

What NIR cannot express is refused before anything is written, every blocker at once (see
``snnconv.deployment``): signed neurons, an initial membrane (``v0 != 0``, a calibrated
``potential``) with reset to zero (NIR's IF starts at rest), gated max pools, concat, reshape,
unfolded affine nodes. ``approximate=True`` exports such an IF starting at rest anyway and lists
each approximation.

Firing rule: NIR fires on ``v > v_threshold``, snnconv on ``v >= threshold``. The exported
``v_threshold`` is the float32 just below snnconv's threshold, so for float32 membranes the two
rules fire on exactly the same steps. One snnconv timestep is one NIR time step (dt = 1), and
the prediction is the argmax of the output summed over time.
"""

from __future__ import annotations

import re

import numpy as np

from snnconv import ops
from snnconv.deployment import blockers, nir_command
from snnconv.errors import InputError
from snnconv.export.nir_neurons import firing_level, initial_membrane, neuron_meta, nir_threshold
from snnconv.graph import Graph, Node
from snnconv.ops import spec_of


def to_nir(snn: Graph, *, approximate: bool = False):
    """The NIR graph of a converted SNN, and the list of approximations made (empty unless
    ``approximate``). Raises ``InputError`` naming every setting NIR cannot express."""
    nir = _import_nir()
    refuse_inexact(snn, approximate)
    return _Exporter(nir, snn, approximate).run()


def refuse_inexact(snn: Graph, approximate: bool = False) -> None:
    """Raise one ``InputError`` listing every blocker (those ``approximate`` drops aside)."""
    found = [b for b in blockers(snn) if not (approximate and b.approximable)]
    if not found:
        return
    listed = "; ".join(
        f"{b.setting} ({b.reason}) in {', '.join(b.nodes[:3])}"
        + (f" and {len(b.nodes) - 3} more" if len(b.nodes) > 3 else "")
        + f": use {b.instead}"
        for b in found
    )
    hint = (
        " Or pass --approximate to export neurons resetting to zero as starting at rest (the "
        "NIR model's accuracy may then differ)."
        if all(b.approximable for b in found)
        else ""
    )
    raise InputError(
        f"NIR cannot express this SNN exactly: {listed}. Reconvert for NIR with: "
        f"{nir_command(snn)}.{hint}"
    )


#: The first nir release whose IF resets to ``v_reset``; before it, the IF reset by subtraction.
NIR_MIN_VERSION = (1, 0, 6)


def _import_nir():
    try:
        import nir
    except ImportError as e:
        raise InputError("NIR needs the `nir` package: pip install 'snnconv[nir]'") from e
    from importlib.metadata import version

    found = version("nir")
    parts = tuple(int(p) for p in re.findall(r"\d+", found)[:3])
    if parts < NIR_MIN_VERSION:
        raise InputError(
            f"nir {found} is installed; snnconv needs nir >= 1.0.6, whose IF resets to v_reset "
            "(older releases reset by subtraction): pip install 'snnconv[nir]'"
        )
    return nir


def write_nir(snn: Graph, path, *, force: bool = False, approximate: bool = False) -> list[str]:
    """Export ``snn`` to a NIR (HDF5) file atomically; returns the approximations made."""
    import io

    from snnconv.atomic import check_writable, write_atomic

    check_writable(path, force=force)
    graph, notes = to_nir(snn, approximate=approximate)
    buf = io.BytesIO()
    _import_nir().write(buf, graph)
    write_atomic(path, buf.getvalue(), force=force)
    return notes


class _Exporter:
    def __init__(self, nir, snn: Graph, approximate: bool):
        snn.validate()
        self.nir, self.g, self.approximate = nir, snn, approximate
        self.shapes = ops.infer_shapes(snn)
        self.nodes: dict = {}
        self.edges: list[tuple[str, str]] = []
        # IR name -> (NIR ids whose outputs sum to it, per-element scale of those outputs)
        self.out: dict[str, tuple[list[str], np.ndarray]] = {}
        self.extra_bias: dict[str, np.ndarray] = {}
        self.notes: list[str] = []
        self.ids: dict[str, str] = {}

    def run(self):
        shape = np.array(self.g.input_shape)
        self.nodes["input"] = self.nir.Input(input_type={"input": shape})
        self.out[self.g.input_name] = (["input"], np.ones(tuple(shape), np.float32))
        for node in self.g:
            if node.op == "if_neuron":
                self._plan_bias(node)
        for node in self.g:
            handler = _HANDLERS.get(node.op)
            if handler is None:
                raise InputError(f"node {node.name!r}: op {node.op!r} has no NIR equivalent")
            handler(self, node)
        out_shape = np.array(self.shapes[self.g.output])
        self.nodes["output"] = self.nir.Output(output_type={"output": out_shape})
        self._connect(self.g.output, "output")
        graph = self.nir.NIRGraph(nodes=self.nodes, edges=self.edges, type_check=False)
        return graph, self.notes

    # -- naming and wiring ---------------------------------------------------------------

    def _id(self, name: str) -> str:
        base = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_.") or "node"
        nid, k = base, 1
        while nid in self.nodes or nid in ("input", "output"):
            k += 1
            nid = f"{base}_{k}"
        self.ids[name] = nid
        return nid

    def _connect(self, source: str, target: str) -> None:
        """Edges carrying ``source``'s value into ``target`` at unit scale (Scale if needed)."""
        self.edges += [(i, target) for i in self._unit_ids(source)]

    def _add_node(self, name: str, nir_node) -> str:
        nid = self._id(name)
        nir_node.metadata = {"snnconv_name": name}
        self.nodes[nid] = nir_node
        return nid

    def _simple(self, node: Node, nir_node, scale: np.ndarray | None = None) -> None:
        """A node fed by its input's NIR outputs, with ``scale`` passed through (or 1)."""
        nid = self._add_node(node.name, nir_node)
        ids, _ = self.out[node.inputs[0]]
        for i in ids:
            self.edges.append((i, nid))
        shape = self.shapes[node.name]
        self.out[node.name] = ([nid], np.ones(shape, np.float32) if scale is None else scale)

    # -- ops -----------------------------------------------------------------------------

    def _if_neuron(self, node: Node) -> None:
        shape = self.shapes[node.name]
        theta = _per_element(node.params["threshold"], shape)
        start = initial_membrane(node, theta)
        level = nir_threshold(firing_level(theta, start))
        if node.attrs.get("reset") == "subtract":
            nid = self._subtracting(node, shape, theta, level)
            self.nodes[nid].metadata.update(neuron_meta(theta, start))
        else:  # NIR's IF starts at rest: a start was refused up front unless approximated
            if np.any(start != 0):
                self.notes.append(f"{node.name}: exported starting at rest (v0 = 0)")
            r, v_reset = np.ones(shape, np.float32), np.zeros(shape, np.float32)
            level = nir_threshold(theta)
            nid = self._add_node(node.name, self.nir.IF(r=r, v_threshold=level, v_reset=v_reset))
            self._connect(node.inputs[0], nid)
        self.out[node.name] = ([nid], theta)

    def _subtracting(self, node: Node, shape, theta: np.ndarray, level: np.ndarray) -> str:
        """Reset by subtraction: Integrator -> Threshold, spikes fed back through -theta."""
        spikes = self._add_node(node.name, self.nir.Threshold(threshold=level))
        membrane = self._add_node(node.name + "_membrane", self.nir.I(r=np.ones(shape, np.float32)))
        reset = self._add_node(node.name + "_reset", self.nir.Scale(scale=-theta))
        self._connect(node.inputs[0], membrane)
        self.edges += [(membrane, spikes), (spikes, reset), (reset, membrane)]
        return spikes

    def _plan_bias(self, node: Node) -> None:
        """Find the synaptic layer that can carry the neuron's constant current exactly."""
        if "bias" not in node.params:
            return
        target = self._bias_target(node.inputs[0], node.name)
        if target is None:
            raise InputError(
                f"node {node.name!r}: its bias current cannot be moved into a conv/linear "
                "layer feeding it alone, and NIR's IF has no bias; convert with "
                "`--calibrate none` to export it"
            )
        bias = self.extra_bias.get(target, 0.0) + node.params["bias"].astype(np.float32)
        self.extra_bias[target] = bias

    def _bias_target(self, name: str, consumer: str) -> str | None:
        if name == self.g.input_name:
            return None
        src = self.g.node(name)
        if [c.name for c in self.g.consumers(name)] != [consumer] or name == self.g.output:
            return None
        if spec_of(src).engine == "synaptic":  # a conv or linear layer: its bias takes it
            return name
        if src.op == "add":
            for i in src.inputs:
                found = self._bias_target(i, name)
                if found:
                    return found
        return None

    def _conv(self, node: Node) -> None:
        ids, scale = self.out[node.inputs[0]]
        w = node.params["weight"].astype(np.float32)
        groups = node.attrs["groups"]
        per_in = _channel_scale(scale)  # [Ci], or None: not constant per channel
        if per_in is None:
            ids, per_in = self._unit_ids(node.inputs[0]), np.ones(len(scale), np.float32)
        cig = w.shape[1]
        co_per_group = w.shape[0] // groups
        for g in range(groups):
            w[g * co_per_group : (g + 1) * co_per_group] *= per_in[g * cig : (g + 1) * cig].reshape(
                1, -1, 1, 1
            )
        top, left, bottom, right = node.attrs["padding"]
        if (top, left) != (bottom, right):
            raise InputError(
                f"node {node.name!r}: asymmetric padding {node.attrs['padding']} has no NIR "
                "Conv2d equivalent; pad symmetrically in the source model"
            )
        bias = node.params["bias"].astype(np.float32) + self.extra_bias.get(node.name, 0.0)
        in_hw = tuple(int(d) for d in self.shapes[node.inputs[0]][1:])
        conv = self.nir.Conv2d(
            input_shape=in_hw,
            weight=_dense(w, groups),
            stride=tuple(node.attrs["stride"]),
            padding=(top, left),
            dilation=tuple(node.attrs["dilation"]),
            groups=1,
            bias=bias.astype(np.float32),
        )
        self._synapse(node, ids, conv)

    def _linear(self, node: Node) -> None:
        ids, scale = self.out[node.inputs[0]]
        w = node.params["weight"].astype(np.float32) * scale.reshape(1, -1)
        bias = node.params["bias"].astype(np.float32) + self.extra_bias.get(node.name, 0.0)
        self._synapse(node, ids, self.nir.Affine(weight=w, bias=bias.astype(np.float32)))

    def _synapse(self, node: Node, ids: list[str], nir_node) -> None:
        nid = self._add_node(node.name, nir_node)
        for i in ids:
            self.edges.append((i, nid))
        self.out[node.name] = ([nid], np.ones(self.shapes[node.name], np.float32))

    def _avgpool(self, node: Node) -> None:
        a = node.attrs
        top, left, bottom, right = a["padding"]
        if a.get("ceil_mode") or (top, left) != (bottom, right):
            raise InputError(
                f"node {node.name!r}: an average pool with ceil_mode or asymmetric padding "
                "has no NIR AvgPool2d equivalent"
            )
        if any(a["padding"]) and not a.get("count_include_pad", True):
            raise InputError(
                f"node {node.name!r}: padded average pool with count_include_pad=False; NIR's "
                "AvgPool2d divides by the full kernel. Use an unpadded pool"
            )
        pool = self.nir.AvgPool2d(
            kernel_size=np.array(a["kernel"]),
            stride=np.array(a["stride"]),
            padding=np.array([top, left]),
        )
        self._pooled(node, pool)

    def _global_avgpool(self, node: Node) -> None:
        hw = np.array(self.shapes[node.inputs[0]][1:])
        pool = self.nir.AvgPool2d(kernel_size=hw, stride=hw, padding=np.array([0, 0]))
        self._pooled(node, pool)

    def _pooled(self, node: Node, pool) -> None:
        """A pool keeps a per-channel spike amplitude; anything finer is restored first."""
        _, scale = self.out[node.inputs[0]]
        per_channel = _channel_scale(scale)
        if per_channel is None:
            self._unit_then(node, pool)
            return
        shape = self.shapes[node.name]
        self._simple(node, pool, np.broadcast_to(per_channel.reshape(-1, 1, 1), shape).copy())

    def _flatten(self, node: Node) -> None:
        in_shape = np.array(self.shapes[node.inputs[0]])
        _, scale = self.out[node.inputs[0]]
        flat = self.nir.Flatten(input_type={"input": in_shape}, start_dim=0, end_dim=-1)
        self._simple(node, flat, scale.reshape(-1).copy())

    def _add(self, node: Node) -> None:
        """NIR sums the edges meeting at a node: an add is its inputs' edges, passed on."""
        scales = [self.out[i][1] for i in node.inputs]
        if all(np.array_equal(s, scales[0]) for s in scales):
            ids = [nid for i in node.inputs for nid in self.out[i][0]]
            self.out[node.name] = (ids, scales[0])
            return
        ids = []
        for i in node.inputs:
            ids += self._unit_ids(i)
        self.out[node.name] = (ids, np.ones(self.shapes[node.name], np.float32))

    def _unit_ids(self, source: str) -> list[str]:
        """NIR ids whose outputs sum to ``source``'s value at unit scale."""
        ids, scale = self.out[source]
        if np.all(scale == 1):
            return ids
        nid = self._add_node(source + "_amplitude", self.nir.Scale(scale.astype(np.float32)))
        self.edges += [(i, nid) for i in ids]
        return [nid]

    def _unit_then(self, node: Node, nir_node) -> None:
        nid = self._add_node(node.name, nir_node)
        self._connect(node.inputs[0], nid)
        self.out[node.name] = ([nid], np.ones(self.shapes[node.name], np.float32))


_HANDLERS = {
    "if_neuron": _Exporter._if_neuron,
    "conv": _Exporter._conv,
    "linear": _Exporter._linear,
    "avgpool": _Exporter._avgpool,
    "global_avgpool": _Exporter._global_avgpool,
    "flatten": _Exporter._flatten,
    "add": _Exporter._add,
}


def _dense(w: np.ndarray, groups: int) -> np.ndarray:
    """A grouped conv's weight as the block-diagonal dense weight of the same conv: nir (up to
    1.0.8 at least) infers a grouped Conv2d's input channels as weight.shape[1], so ``nir.read``
    rejects files with grouped convs."""
    if groups == 1:
        return w
    co, cig = w.shape[0], w.shape[1]
    dense = np.zeros((co, cig * groups, *w.shape[2:]), np.float32)
    per = co // groups
    for g in range(groups):
        dense[g * per : (g + 1) * per, g * cig : (g + 1) * cig] = w[g * per : (g + 1) * per]
    return dense


def _per_element(threshold: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """A [1] or [C] threshold broadcast to the layer's per-sample shape."""
    t = threshold.astype(np.float32).reshape((-1,) + (1,) * (len(shape) - 1))
    return np.broadcast_to(t, shape).copy()


def _channel_scale(scale: np.ndarray) -> np.ndarray | None:
    """The per-channel vector of a (C, ...) scale that is constant over each channel."""
    flat = scale.reshape(scale.shape[0], -1)
    if np.all(flat == flat[:, :1]):
        return flat[:, 0].copy()
    return None
