"""Load a NIR graph into other simulators with the semantics NIR's spec gives its nodes.

The importers these simulators ship depart from the spec (docs/deploy.md measures each):

* snnTorch 1.0 maps ``IF`` to ``Leaky(beta=0.9)`` (a leak NIR's IF has not), resetting by
  subtraction (NIR: to ``v_reset``), with ``init_hidden=False``, so the module returns a
  (spikes, membrane) tuple the graph executor passes on as data; it has no ``Scale``.
* Norse 1.1 goes through nirtorch's deprecated ``load``, has no ``AvgPool2d`` or ``Scale``
  and applies ``Flatten``'s per-sample dims to the batched tensor.
* nirtorch 2.6's default ``Affine`` mapping drops the bias (it sets ``weight.bias``), and its
  ``Conv2d`` mapping takes ``weight.shape[1]`` as the input channels, wrong for groups > 1.

* Neither importer maps ``I`` (integrator) or ``Threshold``, the nodes of the loop
  ``I -> Threshold -> Scale(-theta) -> I`` that snnconv writes for an IF resetting by
  subtraction.

``to_snntorch`` and ``to_norse`` build the graph with nirtorch's ``nir_to_torch`` and a node map
that keeps NIR's meaning: the simulator's own neuron (snnTorch ``Leaky`` with ``beta = 1``,
reset to zero at once; Norse ``IAFCell``) for ``IF``; for ``I`` the same neuron with nothing
to reset (snnTorch ``reset_mechanism="none"``, Norse ``v_th = inf``), its membrane as output;
for ``Threshold`` the simulator's spike function; biases kept, a batch axis in front of NIR's
per-sample shapes, ``Scale`` as a product. nirtorch passes a recurrent edge's value on one step
later, as the loop needs. ``run_steps`` runs such a module for T steps (dt = 1) and returns the
prediction (argmax of the summed output) and spikes per IF or Threshold node.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch


class _Scale(torch.nn.Module):
    def __init__(self, scale: np.ndarray):
        super().__init__()
        self.register_buffer("scale", torch.as_tensor(np.asarray(scale, np.float32)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale


class _SnnTorchIF(torch.nn.Module):
    """An snnTorch ``Leaky`` as NIR's IF: no leak, reset in the step it fires, and its
    membrane passed as nirtorch state, not kept inside the module. snnTorch resets to 0 only,
    so its membrane is NIR's less ``v_reset``: it starts at ``-v_reset`` and fires above
    ``v_threshold - v_reset``."""

    def __init__(self, node):
        super().__init__()
        import snntorch

        v_reset = np.asarray(node.v_reset, np.float64)
        theta = (np.asarray(node.v_threshold, np.float64) - v_reset).astype(np.float32)
        self.start = torch.as_tensor((-v_reset).astype(np.float32))
        self.r = torch.as_tensor(np.asarray(node.r, np.float32))
        self.leaky = snntorch.Leaky(
            beta=1.0, threshold=torch.as_tensor(theta), reset_mechanism="zero", reset_delay=False
        )

    def forward(self, x: torch.Tensor, state: torch.Tensor | None = None):
        mem = self.start.expand_as(x).clone() if state is None else state
        spikes, mem = self.leaky(self.r * x, mem)
        return spikes, mem


class _NorseIF(torch.nn.Module):
    """Norse's ``IAFCell`` with NIR's ``r``, ``v_threshold`` and ``v_reset``, started at 0."""

    def __init__(self, node):
        super().__init__()
        from norse.torch.module.iaf import IAFCell, IAFParameters

        p = IAFParameters(
            v_th=torch.as_tensor(np.asarray(node.v_threshold, np.float32)),
            v_reset=torch.as_tensor(np.asarray(node.v_reset, np.float32)),
        )
        self.r = torch.as_tensor(np.asarray(node.r, np.float32))
        self.cell = IAFCell(p, dt=1.0)

    def forward(self, x: torch.Tensor, state=None):
        if state is None:  # Norse starts an IAF at v_reset; NIR's neurons start at 0
            from norse.torch.functional.iaf import IAFFeedForwardState

            state = IAFFeedForwardState(v=torch.zeros_like(x))
        return self.cell(self.r * x, state)


class _SnnTorchIntegrator(torch.nn.Module):
    """NIR's ``I`` as an snnTorch ``Leaky`` that neither leaks nor resets: ``v += r * x``."""

    def __init__(self, node):
        super().__init__()
        import snntorch

        self.r = torch.as_tensor(np.asarray(node.r, np.float32))
        self.leaky = snntorch.Leaky(beta=1.0, reset_mechanism="none")

    def forward(self, x: torch.Tensor, state: torch.Tensor | None = None):
        _, mem = self.leaky(self.r * x, torch.zeros_like(x) if state is None else state)
        return mem, mem


class _SnnTorchThreshold(torch.nn.Module):
    """NIR's ``Threshold`` as snnTorch fires: its default spike function of v - threshold."""

    def __init__(self, node):
        super().__init__()
        import snntorch.surrogate

        self.theta = torch.as_tensor(np.asarray(node.threshold, np.float32))
        self.fire = snntorch.surrogate.atan()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fire(x - self.theta)


class _NorseIntegrator(torch.nn.Module):
    """NIR's ``I`` as Norse's ``IAFCell`` with a threshold it never reaches; its membrane out."""

    def __init__(self, node):
        super().__init__()
        from norse.torch.module.iaf import IAFCell, IAFParameters

        self.r = torch.as_tensor(np.asarray(node.r, np.float32))
        self.cell = IAFCell(IAFParameters(v_th=torch.as_tensor(np.inf)), dt=1.0)

    def forward(self, x: torch.Tensor, state=None):
        _, state = self.cell(self.r * x, state)
        return state.v, state


class _NorseThreshold(torch.nn.Module):
    """NIR's ``Threshold`` as Norse's Heaviside of v - threshold."""

    def __init__(self, node):
        super().__init__()
        self.theta = torch.as_tensor(np.asarray(node.threshold, np.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from norse.torch.functional.heaviside import heaviside

        return heaviside(x - self.theta)


#: Each consumer's modules for NIR's neuron nodes: IF, I, Threshold.
_NEURONS = {
    "snntorch": (_SnnTorchIF, _SnnTorchIntegrator, _SnnTorchThreshold),
    "norse": (_NorseIF, _NorseIntegrator, _NorseThreshold),
}
_SPIKING = tuple(m for mods in _NEURONS.values() for m in (mods[0], mods[2]))


def _affine(node) -> torch.nn.Linear:
    m = torch.nn.Linear(node.weight.shape[1], node.weight.shape[0], bias=True)
    m.weight.data = torch.as_tensor(np.asarray(node.weight, np.float32))
    m.bias.data = torch.as_tensor(np.asarray(node.bias, np.float32))
    return m


def _linear(node) -> torch.nn.Linear:
    m = torch.nn.Linear(node.weight.shape[1], node.weight.shape[0], bias=False)
    m.weight.data = torch.as_tensor(np.asarray(node.weight, np.float32))
    return m


def _conv2d(node) -> torch.nn.Conv2d:
    """nirtorch 2.6's default map takes in_channels = weight.shape[1], wrong for groups > 1."""
    w = np.asarray(node.weight, np.float32)
    m = torch.nn.Conv2d(
        w.shape[1] * int(node.groups),
        w.shape[0],
        tuple(w.shape[2:]),
        stride=node.stride,
        padding=node.padding,
        dilation=node.dilation,
        groups=int(node.groups),
    )
    m.weight.data = torch.as_tensor(w)
    m.bias.data = torch.as_tensor(np.asarray(node.bias, np.float32))
    return m


def _flatten(node) -> torch.nn.Flatten:
    """NIR's dims count a sample's axes (``start_dim=0``: all of them); torch's the batch's."""
    start, end = int(node.start_dim), int(node.end_dim)
    return torch.nn.Flatten(start + 1, end if end < 0 else end + 1)


def _sumpool(node) -> torch.nn.Module:
    k, s, p = (
        tuple(int(v) for v in np.ravel(a)) for a in (node.kernel_size, node.stride, node.padding)
    )
    return torch.nn.AvgPool2d(k, s, p, divisor_override=1)


def _node_map(consumer: str) -> dict:
    import nir

    neuron, integrator, threshold = _NEURONS[consumer]
    return {
        nir.IF: neuron,
        nir.I: integrator,
        nir.Threshold: threshold,
        nir.Affine: _affine,
        nir.Linear: _linear,
        nir.Conv2d: _conv2d,
        nir.Flatten: _flatten,
        nir.Scale: lambda n: _Scale(n.scale),
        nir.SumPool2d: _sumpool,
    }


def _build(graph, consumer: str) -> torch.nn.Module:
    import nirtorch

    return nirtorch.nir_to_torch(graph, _node_map(consumer))


def to_snntorch(graph) -> torch.nn.Module:
    """The NIR graph as an snnTorch network with NIR's semantics (nirtorch executor)."""
    return _build(graph, "snntorch")


def to_norse(graph) -> torch.nn.Module:
    """The NIR graph as a Norse network with NIR's semantics (nirtorch executor)."""
    return _build(graph, "norse")


CONSUMERS: dict[str, Callable] = {"snntorch": to_snntorch, "norse": to_norse}


def run_steps(
    module: torch.nn.Module, x: torch.Tensor, timesteps: int
) -> tuple[np.ndarray, dict[str, float]]:
    """Predictions (argmax of the output summed over the steps) and the total spikes of each
    IF or Threshold module over the batch, from a module built by ``to_snntorch``/``to_norse``."""
    spikes: dict[str, float] = {}
    hooks = []
    for name, m in module.named_modules():
        if isinstance(m, _SPIKING):

            def count(_m, _inp, out, name=name):
                s = out[0] if isinstance(out, tuple) else out
                spikes[name] = spikes.get(name, 0.0) + float(s.sum())

            hooks.append(m.register_forward_hook(count))
    try:
        state, total = None, 0
        with torch.no_grad():
            for _ in range(timesteps):
                out, state = module(x) if state is None else module(x, state)
                total = total + out
    finally:
        for h in hooks:
            h.remove()
    return total.argmax(1).numpy(), spikes
