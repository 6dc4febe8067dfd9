"""Our NeuroBench metrics against the ``neurobench`` package itself (2.3), on the same net
and the same spikes: the converted SNN rebuilt in torch, node by node, with snnTorch-class
neurons that follow our IF dynamics, run under NeuroBench's hooks."""

from __future__ import annotations

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

    def forward(self, current):
        if self.bias is not None:
            current = current + self.bias.view(-1, *[1] * (current.dim() - 2))
        if self.mem.shape != current.shape:
            self.mem = torch.full_like(current, self.v0 * self.theta)
        v = self.mem + current
        spikes = (v >= self.theta).to(current.dtype)
        self.mem = v - spikes * self.theta
        return spikes


def _tensor(node, key):
    value = node.params.get(key)
    return None if value is None else torch.as_tensor(np.asarray(value))


def _synapse(node, scale):
    """A conv or linear layer; the amplitude of the spikes it receives (their layer's
    threshold) is folded into its weights, as snnconv's engine does, so spikes stay 0/1."""
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


def _neuron(node, scale):
    theta = float(np.asarray(node.params["threshold"]).item())
    return _IF(theta, float(node.attrs["v0"]), _tensor(node, "bias")), theta


def _add(node, scale):
    return (lambda *xs: sum(x * s for x, s in zip(xs, scale, strict=True))), 1.0


def _avgpool(node, scale):
    a = node.attrs
    pool = nn.AvgPool2d(a["kernel"], a["stride"], padding=tuple(a["padding"][:2]),
                        ceil_mode=a["ceil_mode"], count_include_pad=a["count_include_pad"])  # fmt: skip
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
