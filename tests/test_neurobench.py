"""Our NeuroBench metrics against the ``neurobench`` package itself (2.3), on the same net
and the same spikes: the converted SNN rebuilt in torch, node by node, with snnTorch-class
neurons that follow our IF and signed IF dynamics, run under NeuroBench's hooks."""

from __future__ import annotations

from copy import deepcopy

import numpy as np
import pytest
import torch
from test_energy import _conv_net
from torch import nn

from snnconv.convert import ConversionSettings, convert
from snnconv.data import asset_path, load_dataset
from snnconv.load import load_onnx
from snnconv.simulate import SimulationSettings, Simulator, simulate
from snnconv.simulate.engine import OUTPUT

neurobench = pytest.importorskip("neurobench")
snn_torch = pytest.importorskip("snntorch")


class _IF(snn_torch.Leaky):
    """Integrate and fire as snnconv runs it: v += I + b; s = v >= theta; v -= theta * s,
    from v0 * theta, with ``b`` the layer's own bias (a buffer, so that the footprint counts
    it). NeuroBench reads ``mem`` before and after each step."""

    def __init__(self, theta: float, v0: float, bias: torch.Tensor | None):
        super().__init__(beta=1.0, threshold=theta, init_hidden=True)
        self.theta, self.v0 = theta, v0
        self.register_buffer("bias", bias)

    def integrate(self, current):
        """The membrane after this step's current, before firing; a new run starts it."""
        if self.bias is not None:
            current = current + self.bias.view(-1, *[1] * (current.dim() - 2))
        if self.mem.shape != current.shape:
            self.mem = torch.full_like(current, self.v0 * self.theta)
            self.net = torch.zeros_like(current)
        return self.mem + current

    def forward(self, current):
        v = self.integrate(current)
        spikes = (v >= self.theta).to(current.dtype)
        self.mem = v - spikes * self.theta
        return spikes


def _tensor(node, key):
    value = node.params.get(key)
    return None if value is None else torch.as_tensor(np.asarray(value))


def _synapse(node, scale):
    """A conv or linear layer; the amplitude of the spikes it receives (their layer's
    threshold) is folded into its weights, as snnconv's engine does, so spikes stay 0/±1."""
    w, b = _tensor(node, "weight"), _tensor(node, "bias")
    if node.op == "conv":
        a = node.attrs
        layer = nn.Conv2d(w.shape[1] * a["groups"], w.shape[0], tuple(w.shape[2:]),
                          stride=tuple(a["stride"]), padding=tuple(a["padding"][:2]),
                          dilation=tuple(a["dilation"]), groups=a["groups"])  # fmt: skip
    else:
        layer = nn.Linear(w.shape[1], w.shape[0])
    layer.weight.data.copy_(w * scale[0])
    layer.bias.data.copy_(b)
    return layer, 1.0


class _SignedIF(_IF):
    """Signed IF as snnconv runs it (``--neuron signed``): as IF, and a membrane below 0
    emits -1 and gains theta back while the neuron has emitted more 1s than -1s."""

    def forward(self, current):
        v = self.integrate(current)
        spikes = (v >= self.theta).to(v.dtype) - ((v < 0) & (self.net > 0)).to(v.dtype)
        self.net = self.net + spikes
        self.mem = v - spikes * self.theta
        return spikes


#: the neuron class by the mark snnconv's signed neurons leave on their node
_NEURONS = {0: _IF, 1: _SignedIF}


def _neuron(node, scale):
    theta = float(np.asarray(node.params["threshold"]).item())  # one threshold a layer
    assert node.attrs["reset"] == "subtract"  # the only reset the neurons here follow
    kind = _NEURONS[node.attrs.get("signed", 0)]
    return kind(theta, float(node.attrs["v0"]), _tensor(node, "bias")), theta


def _add(node, scale):
    return (lambda *xs: sum(x * s for x, s in zip(xs, scale, strict=True))), 1.0


def _avgpool(node, scale):
    a = node.attrs
    padding, pad_counts = tuple(a["padding"][:2]), a["count_include_pad"]
    pool = nn.AvgPool2d(a["kernel"], a["stride"], padding, a["ceil_mode"], pad_counts)
    return pool, scale[0]


#: per op of the converted graph: (node, input amplitudes) -> (what computes it, the
#: amplitude of its output); pooling and flattening pass their input's amplitude on
_BUILD = {
    "conv": _synapse,
    "linear": _synapse,
    "if_neuron": _neuron,
    "add": _add,
    "avgpool": _avgpool,
    "global_avgpool": lambda node, scale: (lambda x: x.mean((2, 3), keepdim=True), scale[0]),
    "flatten": lambda node, scale: (lambda x: x.flatten(1), scale[0]),
}


class _Rebuilt(nn.Module):
    """The converted SNN in torch: each node's module (or function) in graph order, a step
    at a time over the input (batch, T, ...); returns each step's output (T, batch, ...)."""

    def __init__(self, snn, timesteps: int):
        super().__init__()
        scale = {snn.input_name: 1.0}
        self.order, self.layers = [], nn.ModuleList()
        for node in snn:
            fn, scale[node.name] = _BUILD[node.op](node, [scale[i] for i in node.inputs])
            if isinstance(fn, nn.Module):
                self.layers.append(fn)
            self.order.append((node.name, list(node.inputs), fn))
        self.neurons = [m for m in self.layers if isinstance(m, _IF)]
        self.input_name, self.output, self.timesteps = snn.input_name, snn.output, timesteps

    def forward(self, x):
        for neuron in self.neurons:
            neuron.mem = torch.zeros(0)
        out = []
        for t in range(self.timesteps):
            values = {self.input_name: x[:, t]}
            for name, inputs, fn in self.order:
                values[name] = fn(*(values[i] for i in inputs))
            out.append(values[self.output])
        return torch.stack(out)


def _neurobench(net, x: np.ndarray, T: int) -> tuple[dict, int]:
    """NeuroBench's metrics of ``net`` on ``x`` held for T steps, and the bytes of the
    snnTorch neurons' own buffers as they are before the run (``_snntorch_buffers``)."""
    from neurobench.benchmarks import Benchmark
    from neurobench.metrics.static import ConnectionSparsity, Footprint
    from neurobench.metrics.workload import ActivationSparsity, MembraneUpdates, SynapticOperations
    from neurobench.models import SNNTorchModel

    n = len(x)
    model = SNNTorchModel(net, custom_forward=True)
    data = torch.as_tensor(x).unsqueeze(1).expand(n, T, *x.shape[1:]).contiguous()
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(data, torch.zeros(n)), batch_size=n
    )
    static = [Footprint, ConnectionSparsity]
    workload = [ActivationSparsity, SynapticOperations, MembraneUpdates]
    extra = _snntorch_buffers(net)
    return Benchmark(model, loader, [], [], [static, workload]).run(quiet=True), extra


def _snntorch_buffers(net) -> int:
    """Bytes of the snnTorch neurons' own buffers (beta, reset mode, spike factor, the
    membrane as it is before a run), which NeuroBench's footprint counts and ours has not:
    the neurons' thresholds and biases are parameters of the converted SNN on both sides."""
    return sum(
        b.numel() * b.element_size()
        for neuron in net.neurons
        for name, b in neuron.named_buffers()
        if name not in ("threshold", "bias")
    )


@pytest.mark.slow
def test_our_neurobench_metrics_equal_neurobench_s_own():
    snn, x = _conv_net()
    T, n = 6, len(x)
    ours = simulate(snn, x, np.zeros(n, np.int64), SimulationSettings(timesteps=T)).neurobench
    net = _Rebuilt(snn, T)
    theirs, extra = _neurobench(net, x, T)
    ops = theirs["SynapticOperations"]
    assert ours["synaptic_operations"]["dense"] == pytest.approx(ops["Dense"])
    assert ours["synaptic_operations"]["effective_macs"] == pytest.approx(ops["Effective_MACs"])
    assert ours["synaptic_operations"]["effective_acs"] == pytest.approx(ops["Effective_ACs"])
    assert ours["activation_sparsity"] == pytest.approx(theirs["ActivationSparsity"])
    assert ours["membrane_updates"] == pytest.approx(theirs["MembraneUpdates"])
    assert ours["connection_sparsity"] == pytest.approx(theirs["ConnectionSparsity"], abs=1e-4)
    assert ours["footprint_bytes"] == theirs["Footprint"] - extra


#: ops that carry spikes from a neuron layer to a synaptic layer without weights
_POOLS, _PASSING = ("avgpool", "global_avgpool"), ("avgpool", "global_avgpool", "flatten")


def _source(snn, node) -> tuple[str, bool]:
    """The op a synaptic layer's input comes from (``if_neuron``, or the graph input), and
    whether it comes through pooling."""
    nodes = {n.name: n for n in snn}
    name, pooled = node.inputs[0], False
    while name in nodes and nodes[name].op in _PASSING:
        pooled = pooled or nodes[name].op in _POOLS
        name = nodes[name].inputs[0]
    return (nodes[name].op if name in nodes else "input"), pooled


def _digits_snn(variant: str, T: int):
    """The bundled digits CNN converted for T steps: ``demo`` as ``snnconv demo`` converts
    it (``--neuron auto``, which picks signed IF here); ``if-pruned`` with ``--neuron if``
    and then the smaller 30 % of each layer's weights and every bias set to 0, so that zero
    weights occur and membranes that integrate no current keep still."""
    graph = load_onnx(asset_path("digits_cnn.onnx"))
    train = load_dataset("digits", split="train")
    neuron = "auto" if variant == "demo" else "if"
    snn = convert(graph, train.x, ConversionSettings(target_timesteps=T, neuron=neuron))
    if variant == "if-pruned":
        for node in snn:
            if node.op in ("conv", "linear"):
                w = np.asarray(node.params["weight"])
                node.params["weight"] = np.where(np.abs(w) < np.quantile(np.abs(w), 0.3), 0, w)
            if "bias" in node.params:
                node.params["bias"] = np.zeros_like(node.params["bias"])
    return snn


def _trace(net: _Rebuilt, x: np.ndarray):
    """Run the rebuild; returns its output (T, B, ...), each neuron layer's spikes
    (time-major, T*B, ...) and each synaptic layer's input at every step."""
    spikes, inputs, hooks = {}, {}, []
    for name, _, fn in net.order:
        if isinstance(fn, _IF):
            out = spikes.setdefault(name, [])
            hooks.append(fn.register_forward_hook(lambda m, i, o, out=out: out.append(o)))
        elif isinstance(fn, nn.Conv2d | nn.Linear):
            seen = inputs.setdefault(name, [])
            hooks.append(fn.register_forward_pre_hook(lambda m, i, seen=seen: seen.append(i[0])))
    T = net.timesteps
    with torch.no_grad():
        out = net(torch.as_tensor(x).unsqueeze(1).expand(len(x), T, *x.shape[1:]))
    for hook in hooks:
        hook.remove()
    return out, {k: torch.cat(v) for k, v in spikes.items()}, inputs


def _pairs(layer: nn.Module, inputs: list[torch.Tensor], weights: torch.Tensor) -> float:
    """(input, weight) pairs over all steps whose input is non-zero and whose weight is in
    the mask ``weights``: the layer run on the masks, bias left out."""
    copy = deepcopy(layer)
    copy.weight.data, copy.bias = weights.to(copy.weight.dtype), None
    with torch.no_grad():
        return float(sum(copy((u != 0).float()).sum(dtype=torch.float64) for u in inputs))


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["demo", "if-pruned"])
def test_neurobench_metrics_on_the_bundled_digits_cnn(variant):
    """The bundled digits CNN (conv-BN-relu x2, a residual add, average pooling, global
    average pooling, linear), 16 test images, T = 8. First the rebuild must compute the
    engine's very spikes and output; then every metric must equal NeuroBench's, or differ
    by exactly what the definitions differ by (docs/energy.md, "Known differences"):

    * a layer fed spikes through pooling (``/5/Conv``, ``/10/Gemm``): each spike reaches it
      as an event, an AC for us; NeuroBench sees the pooled values, non-binary, and counts
      their non-zero (input, weight) pairs as MACs;
    * our ACs include the synapses with zero weights (a spike's whole fan-out); NeuroBench's
      leave them out (only the ``if-pruned`` variant has zero weights);
    * NeuroBench's footprint also holds the snnTorch neurons' own buffers, the membranes
      the check run left among them;
    * NeuroBench rounds connection sparsity to 4 decimals.

    Tolerance rel 1e-6: NeuroBench sums its counts in float32, exact only below 2**24."""
    T, n = 8, 16
    snn = _digits_snn(variant, T)
    test = load_dataset("digits", split="test")
    x, y = test.x[:n], test.y[:n]
    sim = Simulator(snn)
    record = [*sim.neurons, OUTPUT]
    _, engine = sim.run(torch.as_tensor(x), torch.as_tensor(y), T, record=record)
    net = _Rebuilt(snn, T)
    out, spikes, inputs = _trace(net, x)
    assert set(spikes) == set(sim.neurons)
    for name in sim.neurons:
        assert torch.equal(spikes[name], engine[name]), name
    mean = out.cumsum(0) / torch.arange(1, T + 1).view(-1, 1, 1)
    torch.testing.assert_close(mean.flatten(0, 1), engine[OUTPUT], rtol=1e-5, atol=1e-5)
    if variant == "demo":
        assert any(float(s.min()) < 0 for s in spikes.values())  # signed spikes do occur

    report = simulate(snn, x, y, SimulationSettings(timesteps=T))
    correct = (mean.argmax(2) == torch.as_tensor(y)).double().mean(1)
    assert report.accuracy_per_step == pytest.approx(correct.tolist())  # what simulate reports
    ours = report.neurobench
    theirs, extra = _neurobench(net, x, T)
    rows = {row.name: row for row in report.layers}
    layers = {name: fn for name, _, fn in net.order if name in inputs}
    acs = ours["synaptic_operations"]["effective_acs"]
    macs = ours["synaptic_operations"]["effective_macs"]
    for node in snn:
        if node.name not in layers:
            continue
        layer, source = layers[node.name], _source(snn, node)
        w = layer.weight.data
        if source == ("if_neuron", False):  # spikes straight in: events x fan-out
            assert rows[node.name].synops_per_image == pytest.approx(
                _pairs(layer, inputs[node.name], torch.ones_like(w)) / n
            )
            acs -= _pairs(layer, inputs[node.name], w == 0) / n
        elif source == ("if_neuron", True):
            acs -= rows[node.name].synops_per_image
            macs += _pairs(layer, inputs[node.name], w != 0) / n
    pruned = sum(int((fn.weight == 0).sum()) for fn in layers.values())
    weights = sum(fn.weight.numel() for fn in layers.values())
    assert (pruned > 0) == (variant == "if-pruned")
    every = sum(row.neuron_updates_per_image for row in report.layers if row.neurons)
    assert (ours["membrane_updates"] < every) == (variant == "if-pruned")  # some keep still
    assert acs < ours["synaptic_operations"]["effective_acs"] and macs > 0

    ops = theirs["SynapticOperations"]
    assert ours["synaptic_operations"]["dense"] == pytest.approx(ops["Dense"], rel=1e-6)
    assert acs == pytest.approx(ops["Effective_ACs"], rel=1e-6)
    assert macs == pytest.approx(ops["Effective_MACs"], rel=1e-6)
    assert ours["activation_sparsity"] == pytest.approx(theirs["ActivationSparsity"], rel=1e-6)
    assert ours["membrane_updates"] == pytest.approx(theirs["MembraneUpdates"], rel=1e-6)
    assert round(ours["connection_sparsity"], 4) == theirs["ConnectionSparsity"]
    assert ours["connection_sparsity"] == pytest.approx(pruned / weights)
    assert ours["footprint_bytes"] == theirs["Footprint"] - extra
