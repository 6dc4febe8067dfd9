"""The fused per-step loops (``snnconv.simulate.fused_steps``) give the eager loops' results
bit for bit. Without a GPU they run under Triton's interpreter, on CPU tensors; skipped where
Triton is not installed (it ships with torch's CUDA builds only)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from nets import graph_of, inputs

from snnconv.convert import ConversionSettings, convert
from snnconv.neurons.binary import binary_steps as _binary_steps
from snnconv.simulate import Simulator, fused_steps
from snnconv.simulate.engine import OUTPUT
from snnconv.simulate.running_sums import running_sum as _running_sum
from snnconv.simulate.values import empty as _empty

pytestmark = pytest.mark.skipif(not fused_steps.available(), reason="Triton is not installed")
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


@pytest.fixture(autouse=True)
def _interpreter_without_gpu(monkeypatch):
    if DEVICE == "cpu":
        monkeypatch.setenv("TRITON_INTERPRET", "1")
        fused_steps._kernels.cache_clear()  # compiled under the variable as set now
    yield
    if DEVICE == "cpu":
        fused_steps._kernels.cache_clear()


def _rand(g, *shape, scale=1.0):
    return (torch.rand(*shape, generator=g) * scale).to(DEVICE)


@pytest.mark.parametrize(
    "nhwc,static,reset,per_channel,biases",
    list(itertools.product([False, True], [False, True], ["subtract", "zero"], [0, 1], [0, 1, 2])),
)
def test_if_kernel_matches_the_eager_update(nhwc, static, reset, per_channel, biases):
    seed = int(f"{nhwc:d}{static:d}{reset == 'zero':d}{per_channel}{biases}")
    g = torch.Generator().manual_seed(seed)
    B, C, H, W, T = 3, 5, 4, 6, 7  # odd sizes: the last block is partly masked
    shape = (C, H, W)
    v0 = _empty((B, *shape), nhwc, _rand(g, 1))
    v0.copy_(_rand(g, B, *shape))
    lead = (B,) if static else (T * B,)
    current = (torch.randn((*lead, *shape), generator=g) * 0.8).to(DEVICE)
    if nhwc:
        current = current.contiguous(memory_format=torch.channels_last)
    if not static:
        current = current.view(T, B, *shape)
    # a per-channel tensor, or a float as the engine passes a scalar threshold
    theta = _rand(g, 1, C, 1, 1) + 0.5 if per_channel else 0.7
    bs = tuple(_rand(g, 1, C, 1, 1, scale=0.2) - 0.1 for _ in range(biases))
    v_eager, v_fused = v0.clone(), v0.clone()
    s_eager, s_fused = (_empty((T, B, *shape), nhwc, v0) for _ in range(2))
    assert fused_steps.applies(v_fused, current, static, s_fused)

    summed = current
    for b in bs:  # as the engine adds them on its eager path: in order
        summed = summed + b
    _binary_steps(v_eager, summed, static, theta, s_eager, reset)
    fused_steps.binary_steps(v_fused, current, static, theta, bs, s_fused, reset)

    assert s_eager.sum() > 0 and (s_eager == 0).any()  # both outcomes occur
    assert torch.equal(s_eager, s_fused)
    assert torch.equal(v_eager, v_fused)


@pytest.mark.parametrize("nhwc", [False, True])
@pytest.mark.parametrize("initial", [False, True])
@pytest.mark.parametrize("steps", [1, 6])
def test_running_sum_kernel_matches_the_eager_sum(nhwc, initial, steps):
    g = torch.Generator().manual_seed(steps * 4 + nhwc * 2 + initial)
    seq = _empty((steps, 3, 5, 4, 6), nhwc, _rand(g, 1))
    seq.copy_(torch.randn(seq.shape, generator=g))  # not integers: the order of adds shows
    init = _empty((3, 5, 4, 6), nhwc, seq) if initial else None
    if initial:
        init.copy_(torch.randn(init.shape, generator=g) * 10)
    out = torch.empty_like(seq)
    assert fused_steps.applies(out[0] if init is None else init, seq, False, out)
    fused_steps.running_sum(seq, init, out)
    assert torch.equal(out, _running_sum(seq, init))


def test_kernels_refuse_tensors_laid_out_apart():
    v = torch.zeros(2, 3, 4, 4)
    current = torch.zeros(5, 2, 4, 4, 3).movedim(-1, -3)  # channels-last steps, NCHW membranes
    spikes = torch.empty(5, 2, 3, 4, 4)
    assert not fused_steps.applies(v, current, False, spikes)
    assert fused_steps.applies(v, current.contiguous(), False, spikes)


@pytest.mark.parametrize("kind", ["vgg", "residual"])
@pytest.mark.parametrize("reset", ["subtract", "zero"])
@pytest.mark.parametrize("chunk", [None, 1, 3])
def test_engine_with_fused_loops_matches_the_eager_engine(kind, reset, chunk, monkeypatch):
    """Whole runs with per-channel thresholds and calibrated biases, chunk by chunk. (Runs
    of different chunks agree bit for bit on CPU, tests/test_simulate.py; on CUDA, cuDNN
    picks its kernels by batch size, so only closely: tests/test_cuda.py.)"""
    launches, sums = [], []
    kernel, running_sum = fused_steps.binary_steps, fused_steps.running_sum
    monkeypatch.setattr(fused_steps, "binary_steps", lambda *a: launches.append(1) or kernel(*a))
    monkeypatch.setattr(fused_steps, "running_sum", lambda *a: sums.append(1) or running_sum(*a))
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
        sim = Simulator(snn, DEVICE, fused=fused)
        runs.append(sim.run(xb, yb, 8, chunk=chunk, record=[*sim.neurons, OUTPUT]))
    # every neuron layer took the kernel, at every chunk, and so did the output's running sum
    chunks = -(-8 // (chunk or 8))
    assert len(launches) == len(sim.neurons) * chunks and len(sums) >= chunks
    (c0, s0), (c1, s1) = runs
    for name in s0:
        assert torch.equal(s0[name], s1[name]), name
    for name in c0.spikes:
        np.testing.assert_array_equal(c0.spikes[name], c1.spikes[name])
    np.testing.assert_array_equal(c0.correct_per_step, c1.correct_per_step)
