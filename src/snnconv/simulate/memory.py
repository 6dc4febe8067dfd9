"""Will a simulation fit in memory? An estimate from shapes, checked before any work.

The engine folds a chunk of steps into the batch (all T with ``chunk = T``, one with the step
schedule), so a run holds about two layers' activations (a layer's input and its output) for
chunk × batch samples, plus working copies. Refusing up front beats being OOM-killed mid-run.
"""

from __future__ import annotations

import math
import os

import torch

from snnconv.errors import InputError
from snnconv.graph import Graph
from snnconv.ops import infer_shapes

#: Working copies (membranes, spikes, synaptic currents) on top of the two activations.
OVERHEAD = 3
BYTES = 4  # float32


def bytes_per_image(graph: Graph, steps_at_once: int) -> int:
    """Roughly the peak bytes one image adds to a run that folds ``steps_at_once`` steps."""
    sizes = sorted((math.prod(s) for s in infer_shapes(graph).values()), reverse=True)
    return sum(sizes[:2]) * steps_at_once * BYTES * OVERHEAD


def estimate_peak_bytes(graph: Graph, steps_at_once: int, batch_size: int) -> int:
    """Roughly the peak bytes of simulating ``batch_size`` images, ``steps_at_once`` steps
    folded into the batch."""
    return bytes_per_image(graph, steps_at_once) * batch_size


def available_bytes(device: str = "cpu") -> int | None:
    """Memory free for a new allocation on ``device``, or None when it cannot be known."""
    if device.startswith("cuda"):
        try:
            return int(torch.cuda.mem_get_info(torch.device(device))[0])
        except (RuntimeError, AssertionError, ValueError):
            return None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_fits(graph: Graph, steps_at_once: int, batch_size: int, device: str) -> None:
    """Refuse a run whose estimated peak exceeds the memory available on ``device``."""
    available = available_bytes(device)
    if available is None:
        return
    per_image = bytes_per_image(graph, steps_at_once)
    need = per_image * batch_size
    if need <= available:
        return
    fits = available // per_image if per_image else batch_size
    advice = (
        f"use --batch-size {fits} or less"
        if fits >= 1
        else "even one image does not fit: use --schedule step"
    )
    raise InputError(
        f"simulating {batch_size} images, {steps_at_once} steps at once, needs about "
        f"{need / 1e9:.3g} GB "
        f"but {device} has {available / 1e9:.3g} GB available; {advice}"
    )
