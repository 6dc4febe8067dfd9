"""Data-parallel simulation across processes started by ``torchrun`` (one per GPU or CPU).

When ``WORLD_SIZE > 1`` is in the environment, each process simulates a contiguous shard of
the images and the counts are summed across processes (gloo on CPU, nccl on CUDA), so every
rank ends with the totals of a single-process run; only rank 0 prints and writes. All counts
are integers summed in float64, so the report equals a single-process one (throughput aside;
Poisson input draws a different stream per rank, seeded with ``seed + rank``).
"""

from __future__ import annotations

import atexit
import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

from snnconv.simulate.counts import Counts


@dataclass(frozen=True)
class World:
    """This process's place among the torchrun processes."""

    rank: int
    size: int
    local_rank: int

    def shard(self, n: int) -> slice:
        """This rank's contiguous share of ``n`` items (sizes differ by at most one)."""
        return slice(n * self.rank // self.size, n * (self.rank + 1) // self.size)


def world() -> World | None:
    """The torchrun world this process belongs to, or None when it runs alone."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return None
    rank = int(os.environ["RANK"])
    return World(rank, size, int(os.environ.get("LOCAL_RANK", rank)))


def is_main_process() -> bool:
    """True unless this is a torchrun process of rank > 0 (which must not print or write)."""
    return int(os.environ.get("RANK", "0")) == 0


def local_images(n: int) -> int:
    """How many of ``n`` images this process simulates (all of them when it runs alone; none
    on a rank whose shard is empty)."""
    w = world()
    return n if w is None else len(range(n)[w.shard(n)])


def local_device(device: str, w: World) -> str:
    """``cuda`` becomes this process's GPU (``cuda:LOCAL_RANK``); other devices stay."""
    return f"cuda:{w.local_rank}" if device == "cuda" else device


def init(device: str) -> None:
    """Join the process group once per process (backend by device)."""
    if dist.is_initialized():
        return
    backend = "nccl" if device.startswith("cuda") else "gloo"
    if device.startswith("cuda"):
        torch.cuda.set_device(torch.device(device))
    dist.init_process_group(backend)
    atexit.register(dist.destroy_process_group)


#: The count tables summed over ranks (``snnconv.simulate.counts``).
NEURON_STEPS = ("spikes", "membrane_updates")
SYNAPTIC_STEPS = ("synops", "input_events", "reached")
SYNAPTIC_TOTALS = ("snn_macs", "ann_part_macs", "effective_macs")


def all_reduce(
    counts: Counts, ann_correct: int, seconds: float, neurons, synaptic, device: str
) -> tuple[Counts, int, float]:
    """Sum the counts (spikes, synops, MACs of the spiking and ANN parts, correct answers)
    and the ANN's correct answers over ranks; the slowest rank's time."""
    T = counts.timesteps
    parts = [np.array([counts.images, ann_correct], np.float64), counts.correct_per_step]
    for name in neurons:
        for table in NEURON_STEPS:
            parts.append(getattr(counts, table).get(name, np.zeros(T)))
    for name in synaptic:
        for table in SYNAPTIC_STEPS:
            parts.append(getattr(counts, table).get(name, np.zeros(T)))
            parts.append([name in getattr(counts, table)])
        for table in SYNAPTIC_TOTALS:
            table = getattr(counts, table)
            parts.append([table.get(name, 0.0), name in table])
    flat = torch.as_tensor(
        np.concatenate([np.asarray(p, np.float64) for p in parts]), device=device
    )
    dist.all_reduce(flat)
    time = torch.tensor([seconds], dtype=torch.float64, device=device)
    dist.all_reduce(time, op=dist.ReduceOp.MAX)
    v = flat.cpu().numpy()
    total = Counts(T, images=int(v[0]), correct_per_step=v[2 : 2 + T].astype(np.int64))
    at = 2 + T
    for name in neurons:
        for table in NEURON_STEPS:
            getattr(total, table)[name], at = v[at : at + T].copy(), at + T
    for name in synaptic:
        for table in SYNAPTIC_STEPS:
            steps, has = v[at : at + T].copy(), v[at + T]
            at += T + 1
            if has:
                getattr(total, table)[name] = steps
        for table in SYNAPTIC_TOTALS:
            if v[at + 1]:
                getattr(total, table)[name] = float(v[at])
            at += 2
    return total, int(v[1]), float(time.item())
