"""The engine on a GPU: it agrees with the CPU engine, its schedules agree, the CLI runs
there. Skipped without CUDA (CI has none); ``bench/cuda.sh`` runs it on a GPU machine."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from cli_run import run_in_process
from nets import graph_of, inputs

from snnconv.convert import ConversionSettings, convert
from snnconv.ops import ann_forward
from snnconv.save import save_onnx
from snnconv.simulate import Simulator

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


def _converted(kind: str, neuron: str = "if"):
    ann = graph_of(kind).copy()
    x = inputs(ann.input_shape, 128)
    snn = convert(ann, x, ConversionSettings(neuron=neuron, target_timesteps=8))
    y = ann_forward(ann, torch.as_tensor(x))[0].argmax(1)
    return snn, torch.as_tensor(x), y


def _close(a, b, what: str) -> None:
    """cuDNN (TF32 by default) and oneDNN round sums differently, so a neuron near its
    threshold may fire a step apart: counts agree closely, not bit for bit. A wrong layout
    or index would be far off."""
    for name in a.spikes:
        x, y = float(a.spikes[name].sum()), float(b.spikes[name].sum())
        assert abs(x - y) <= 0.03 * max(x, 1.0), f"{what}: {name} spikes {x} against {y}"
    assert abs(int(a.correct_per_step[-1]) - int(b.correct_per_step[-1])) <= 6, what


@pytest.mark.parametrize("kind", ["vgg", "residual", "concat", "mlp"])
@pytest.mark.parametrize("neuron", ["if", "signed"])
def test_cuda_engine_agrees_with_the_cpu_engine(kind, neuron):
    snn, x, y = _converted(kind, neuron)
    cpu, _ = Simulator(snn).run(x, y, 16)
    gpu_sim = Simulator(snn, "cuda")
    assert gpu_sim.fused and gpu_sim.channels_last  # Triton ships with torch's CUDA builds
    gpu, _ = gpu_sim.run(x, y, 16)
    assert cpu.correct_per_step[-1] >= 0.8 * len(x)  # the SNN works at all
    _close(cpu, gpu, f"{kind}/{neuron}: CPU against CUDA")


@pytest.mark.parametrize("kind", ["vgg", "residual"])
def test_cuda_schedules_agree(kind):
    snn, x, y = _converted(kind)
    sim = Simulator(snn, "cuda")
    (whole, _), (steps, _), (fives, _) = (sim.run(x, y, 16, chunk=c) for c in (None, 1, 5))
    _close(whole, steps, f"{kind}: all steps against one at a time")
    _close(whole, fives, f"{kind}: all steps against five at a time")


def test_cuda_early_exit_and_poisson_input_run():
    snn, x, y = _converted("vgg")
    sim = Simulator(snn, "cuda")
    counts, _ = sim.run(x, y, 16, exit_when_stable=4)
    assert 4 <= counts.stop.mean() <= 16 and counts.correct_per_step[-1] >= 0.8 * len(x)
    gen = torch.Generator("cuda").manual_seed(0)
    counts, _ = sim.run(x, y, 16, encoding="poisson", generator=gen)
    assert counts.correct_per_step[-1] >= 0.5 * len(x)


def test_cli_simulates_on_cuda(tmp_path):
    snn, x, y = _converted("residual")
    save_onnx(snn, tmp_path / "model.snn.onnx")
    np.savez(tmp_path / "data.npz", x=x.numpy(), y=y.numpy())
    reports = {}
    for device in ("cpu", "cuda"):
        path = tmp_path / f"{device}.json"
        code, err = run_in_process(
            "simulate",
            str(tmp_path / "model.snn.onnx"),
            "--data",
            f"npz:{tmp_path / 'data.npz'}",
            "-T",
            "16",
            "--device",
            device,
            "--json",
            str(path),
        )
        assert code == 0, err
        reports[device] = json.loads(path.read_text())
    cpu, gpu = reports["cpu"], reports["cuda"]
    assert cpu["ann_accuracy"] == 1.0 and gpu["ann_accuracy"] >= 0.98  # TF32 near a tie
    assert abs(gpu["snn_accuracy"] - cpu["snn_accuracy"]) <= 0.05
    assert gpu["spikes_per_image"] == pytest.approx(cpu["spikes_per_image"], rel=0.03)


def test_cuda_chunk_follows_the_memory_budget():
    """On CUDA all T steps fold where the budget allows, and a run's own budget (a larger
    --memory-budget too) decides it, not the default one."""
    from snnconv.simulate import memory

    snn, _, _ = _converted("vgg")
    sim = Simulator(snn, "cuda")
    step = memory.bytes_per_image(sim.graph, 1) * 64  # one step of 64 images
    assert sim.auto_chunk(64, 16, (step * 100, "test")) == 16
    assert sim.auto_chunk(64, 16, (step * 3, "test")) == 3
