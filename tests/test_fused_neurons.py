"""The fused IF kernel (``snnconv.simulate.if_kernel``) gives the eager update's spikes and
membranes bit for bit. Without a GPU it runs under Triton's interpreter, on CPU tensors;
skipped where Triton is not installed (it ships with torch's CUDA builds only)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from nets import graph_of, inputs

from snnconv.convert import ConversionSettings, convert
from snnconv.simulate import Simulator, if_kernel
from snnconv.simulate.engine import OUTPUT, _binary_steps, _empty

pytestmark = pytest.mark.skipif(not if_kernel.available(), reason="Triton is not installed")
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


@pytest.fixture(autouse=True)
def _interpreter_without_gpu(monkeypatch):
    if DEVICE == "cpu":
        monkeypatch.setenv("TRITON_INTERPRET", "1")
        if_kernel._kernel.cache_clear()  # compiled under the variable as set now
    yield
    if DEVICE == "cpu":
        if_kernel._kernel.cache_clear()


@pytest.mark.parametrize(
    "nhwc,static,reset,per_channel,bias",
    list(itertools.product([False, True], [False, True], ["subtract", "zero"], [0, 1], [0, 1])),
)
def test_kernel_matches_the_eager_update(nhwc, static, reset, per_channel, bias):
    seed = int(f"{nhwc:d}{static:d}{reset == 'zero':d}{per_channel}{bias}")
    g = torch.Generator().manual_seed(seed)
    B, C, H, W, T = 3, 5, 4, 6, 7  # odd sizes: the last block is partly masked
    shape = (C, H, W)

    def rand(*s, scale=1.0):
        return (torch.rand(*s, generator=g) * scale).to(DEVICE)

    v0 = _empty((B, *shape), nhwc, rand(1))
    v0.copy_(rand(B, *shape))
    lead = (B,) if static else (T * B,)
    current = (torch.randn((*lead, *shape), generator=g) * 0.8).to(DEVICE)
    if nhwc:
        current = current.contiguous(memory_format=torch.channels_last)
    if not static:
        current = current.view(T, B, *shape)
    theta = rand(1, C, 1, 1) + 0.5 if per_channel else torch.tensor(0.7, device=DEVICE)
    b = rand(1, C, 1, 1, scale=0.2) - 0.1 if bias else None
    v_eager, v_fused = v0.clone(), v0.clone()
    s_eager, s_fused = (_empty((T, B, *shape), nhwc, v0) for _ in range(2))
    assert if_kernel.applies(v_fused, current, static, s_fused)

    _binary_steps(v_eager, current if b is None else current + b, static, theta, s_eager, reset)
    if_kernel.binary_steps(v_fused, current, static, theta, b, s_fused, reset)

    assert s_eager.sum() > 0 and (s_eager == 0).any()  # both outcomes occur
    assert torch.equal(s_eager, s_fused)
    assert torch.equal(v_eager, v_fused)


def test_kernel_refuses_tensors_laid_out_apart():
    v = torch.zeros(2, 3, 4, 4)
    current = torch.zeros(5, 2, 4, 4, 3).movedim(-1, -3)  # channels-last steps, NCHW membranes
    spikes = torch.empty(5, 2, 3, 4, 4)
    assert not if_kernel.applies(v, current, False, spikes)
    assert if_kernel.applies(v, current.contiguous(), False, spikes)


@pytest.mark.parametrize("kind", ["vgg", "residual"])
@pytest.mark.parametrize("reset", ["subtract", "zero"])
@pytest.mark.parametrize("chunk", [None, 1, 3])
def test_engine_with_fused_neurons_matches_the_eager_engine(kind, reset, chunk, monkeypatch):
    """Whole runs with per-channel thresholds and calibrated biases, chunk by chunk. (Runs
    of different chunks agree bit for bit on CPU, tests/test_simulate.py; on CUDA, cuDNN
    picks its kernels by batch size, so only closely: tests/test_cuda.py.)"""
    launches = []
    kernel = if_kernel.binary_steps
    monkeypatch.setattr(if_kernel, "binary_steps", lambda *a: launches.append(1) or kernel(*a))
    ann = graph_of(kind).copy()
    x = inputs(ann.input_shape, 64)
    settings = ConversionSettings(
        neuron="if", reset=reset, per_channel=True, target_timesteps=6, calibration_images=64
    )
    snn = convert(ann, x, settings)
    assert any("bias" in n.params for n in snn if n.op == "if_neuron")
    xb, yb = torch.as_tensor(x[:16]), torch.zeros(16, dtype=torch.long)
    runs = []
    for fused in (False, True):
        sim = Simulator(snn, DEVICE, fused_neurons=fused)
        runs.append(sim.run(xb, yb, 8, chunk=chunk, record=[*sim.neurons, OUTPUT]))
    # every neuron layer took the kernel, at every chunk
    assert len(launches) == len(sim.neurons) * -(-8 // (chunk or 8))
    (c0, s0), (c1, s1) = runs
    for name in s0:
        assert torch.equal(s0[name], s1[name]), name
    for name in c0.spikes:
        np.testing.assert_array_equal(c0.spikes[name], c1.spikes[name])
    np.testing.assert_array_equal(c0.correct_per_step, c1.correct_per_step)
