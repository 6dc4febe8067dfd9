"""Simulate an SNN over a dataset and produce its report."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import torch

from snnconv import ops
from snnconv.convert.neurons import to_ann
from snnconv.data.fit import check_images, check_labels
from snnconv.deployment import recorded
from snnconv.errors import InputError
from snnconv.graph import Graph
from snnconv.report import neurobench
from snnconv.report.record import EarlyExit, Report, Throughput
from snnconv.simulate import distributed, memory
from snnconv.simulate.counts import Counts
from snnconv.simulate.encoders import ENCODINGS
from snnconv.simulate.energy import DEFAULT_MODEL, MODELS, estimate
from snnconv.simulate.engine import Simulator
from snnconv.simulate.layer_records import layer_records

SCHEDULES = ("layer", "step")


@dataclass(frozen=True)
class SimulationSettings:
    """How to simulate: length T, input encoding, schedule, batch, device, energy model."""

    timesteps: int = 32
    encoding: str = "direct"
    schedule: str = "layer"  # "layer": the chunk's steps in the batch; "step": one at a time
    batch_size: int = 128
    device: str = "cpu"
    energy: str = DEFAULT_MODEL  # an energy model's name (snnconv.simulate.energy.MODELS)
    seed: int = 0
    exit_when_stable: int | None = None  # early exit: stop an image once K predictions agree
    memory_budget: int | str | None = None  # bytes or "512MB", "2GiB"; None: a share of free

    def check(self) -> None:
        if self.memory_budget is not None:
            memory.parse_size(self.memory_budget)
        if self.exit_when_stable is not None and not 1 <= self.exit_when_stable <= self.timesteps:
            raise InputError(
                f"--exit-when-stable must be in 1..--timesteps ({self.timesteps}), "
                f"got {self.exit_when_stable}"
            )
        if self.timesteps < 1:
            raise InputError(f"--timesteps must be >= 1, got {self.timesteps}")
        if self.batch_size < 1:
            raise InputError(f"--batch-size must be >= 1, got {self.batch_size}")
        for value, allowed, flag in (
            (self.encoding, ENCODINGS, "--encoding"),
            (self.schedule, SCHEDULES, "--schedule"),
            (self.energy, tuple(MODELS), "--energy"),
        ):
            if value not in allowed:
                raise InputError(f"{flag} must be one of {', '.join(allowed)}, got {value!r}")
        if self.device.startswith("cuda") and not torch.cuda.is_available():
            raise InputError("--device cuda was asked for, but torch sees no CUDA device here")


def simulate(
    snn: Graph,
    x: np.ndarray,
    y: np.ndarray,
    settings: SimulationSettings = SimulationSettings(),
    *,
    data_name: str = "",
    progress: Callable[[int], None] | None = None,
) -> Report:
    """Run the SNN (and its ANN twin, on the same images) and count everything.

    Under ``torchrun`` (``WORLD_SIZE > 1``) each process simulates its shard of the images and
    every process returns the report of the whole set (see ``snnconv.simulate.distributed``).
    """
    settings.check()
    if len(x) == 0:
        raise InputError(f"{data_name or 'data'}: no images to simulate")
    check_images(x, snn.input_shape, data_name or "data")
    world = distributed.world()
    if world and settings.exit_when_stable is not None:
        raise InputError(
            "--exit-when-stable is not supported under torchrun yet; run it in one process"
        )
    if world:
        device = distributed.local_device(settings.device, world)
        settings = replace(settings, device=device, seed=settings.seed + world.rank)
        distributed.init(device)
        x, y = x[world.shard(len(x))], y[world.shard(len(y))]
    # A rank whose shard is empty still joins the reductions: plan for one image, run none.
    batch = max(1, min(settings.batch_size, len(x)))
    sim = Simulator(snn, settings.device)
    budget, source = memory.budget(settings.memory_budget, settings.device)
    steps = 1 if settings.schedule == "step" else settings.timesteps
    # on CUDA sized by the budget itself, so a larger --memory-budget runs more steps at once
    chunk = memory.plan_chunk(sim.graph, steps, batch, budget, source, device=settings.device)
    num_outputs = int(np.prod(sim.shapes[snn.output]))
    check_labels(y, num_outputs, data_name or "data")
    ann = ops.params_on(to_ann(snn), settings.device)  # no weight uploads per batch on a GPU
    generator = torch.Generator(device=settings.device).manual_seed(settings.seed)
    total = Counts(settings.timesteps)
    if settings.exit_when_stable is not None:
        total.stop = np.zeros(0, np.int64)
    ann_correct = 0
    sim_seconds = 0.0
    for start in range(0, len(x), settings.batch_size):
        xb = torch.as_tensor(x[start : start + settings.batch_size])
        yb = torch.as_tensor(y[start : start + settings.batch_size])
        t = time.perf_counter()
        counts, _ = sim.run(
            xb,
            yb,
            settings.timesteps,
            chunk=chunk,
            encoding=settings.encoding,
            generator=generator,
            exit_when_stable=settings.exit_when_stable,
        )
        sim_seconds += time.perf_counter() - t
        total.merge(counts)
        out, _ = ops.ann_forward(ann, xb.to(settings.device))
        ann_correct += int((out.argmax(1).cpu() == yb).sum())
        if progress:
            progress(len(xb))
    if world:
        total, ann_correct, sim_seconds = distributed.all_reduce(
            total, ann_correct, sim_seconds, sim.neurons, sim.synaptic, settings.device
        )
    report = _report(snn, sim, total, ann_correct, sim_seconds, settings, data_name)
    # The default budget follows the free memory of the moment: left out, so that reports
    # of the same run stay identical (only throughput varies).
    report.chunk = chunk
    report.memory_budget_bytes = budget if settings.memory_budget is not None else None
    return report


def _report(snn, sim, total: Counts, ann_correct, seconds, settings, data_name) -> Report:
    """The report of the run as it was made: with early exit, every count covers the steps
    each image ran, and an image that has stopped keeps its answer in the accuracies."""
    n, T = total.images, settings.timesteps
    steps_run = T if total.stop is None else float(total.stop.mean())  # per image
    # sim.graph is the graph as run: BackRes passes are their own rows ("name#r").
    layers = layer_records(sim, total, steps_run)
    synops = sum(r.synops_per_image or 0.0 for r in layers)
    snn_macs = sum(r.snn_macs_per_image or 0.0 for r in layers)
    ann_part_macs = sum(r.ann_part_macs_per_image or 0.0 for r in layers)
    ann_mac_total = sum(r.ann_macs_per_image or 0.0 for r in layers)
    accuracy = (total.correct_per_step / n).tolist()
    conversion = json.loads(snn.metadata.get("snnconv.conversion", "{}"))
    if "snnconv.hybrid" in snn.metadata:
        conversion["hybrid"] = json.loads(snn.metadata["snnconv.hybrid"])
    spikes = sum(r.spikes_per_image or 0.0 for r in layers)
    early = None
    if total.stop is not None:
        early = _early_exit(total, settings.exit_when_stable, snn_macs)
    report = Report(
        model=snn.metadata.get("source_name", ""),
        data=data_name,
        images=n,
        timesteps=T,
        encoding=settings.encoding,
        schedule=settings.schedule,
        ann_accuracy=ann_correct / n,
        snn_accuracy=accuracy[-1],
        accuracy_per_step=accuracy,
        spikes_per_image=spikes,
        synops_per_image=synops,
        ann_macs_per_image=ann_mac_total,
        snn_macs_per_image=snn_macs,
        ann_part_macs_per_image=ann_part_macs,
        energy=None,
        throughput=Throughput(n / seconds, n * steps_run / seconds, seconds),
        layers=layers,
        conversion=conversion,
        early_exit=early,
        deployment=recorded(snn),
    )
    report.energy = estimate(settings.energy, report)
    if early is not None:  # every count already covers the steps run
        early.snn_joules_per_image = report.energy.snn_joules_per_image
        early.ratio = report.energy.ratio
    report.neurobench = neurobench.metrics(report, snn)
    return report


def _early_exit(total: Counts, stable, snn_macs) -> EarlyExit:
    """Figures of a run whose images stopped once their prediction held for ``stable`` steps
    (its energy is the report's: every count covers the steps run). Counts are summed over
    all layers before dividing by the images, as charging per image does
    (``early_exit.charge``), so they equal it to the last bit."""
    n, T = total.images, total.timesteps
    spikes = sum(float(v.sum()) for v in total.spikes.values()) / n
    synops = sum(float(v.sum()) for v in total.synops.values()) / n
    return EarlyExit(
        stable_steps=stable,
        accuracy=float(total.correct_per_step[-1] / n),
        mean_steps=float(total.stop.mean()),
        steps_histogram=np.bincount(total.stop, minlength=T + 1)[1:].tolist(),
        spikes_per_image=spikes,
        synops_per_image=synops,
        snn_macs_per_image=snn_macs,
        snn_joules_per_image=float("nan"),
        ratio=float("nan"),
    )
