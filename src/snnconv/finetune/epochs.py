"""What the two training loops here share (``finetune`` of an SNN, ``prepare`` of an ANN):
their settings and data checks, and one epoch over the data in a seeded random order."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from snnconv.data.fit import check_images, check_labels
from snnconv.errors import InputError
from snnconv.graph import Graph
from snnconv.ops import infer_shapes

#: (images done, loss, accuracy) of each batch, for a progress bar.
Progress = Callable[[int, float, float], None]

#: How the learning rate moves over a run's batches (optimizer, number of batches → scheduler):
#: held, or decayed along a cosine to 0 by the last batch.
Scheduler = torch.optim.lr_scheduler.LRScheduler
LR_SCHEDULES: dict[str, Callable[[torch.optim.Optimizer, int], Scheduler]] = {
    "constant": lambda opt, _batches: torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0),
    "cosine": lambda opt, batches: torch.optim.lr_scheduler.CosineAnnealingLR(opt, batches),
}


def lr_schedule(
    name: str, opt: torch.optim.Optimizer, images: int, batch_size: int, epochs: int
) -> Scheduler:
    """The scheduler ``name`` for ``epochs`` passes over ``images`` in batches of ``batch_size``."""
    return LR_SCHEDULES[name](opt, epochs * -(-images // batch_size))


@dataclass
class History:
    """Per epoch: mean training loss, training accuracy, seconds of CPU time (process time)."""

    loss: list[float] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)


def check_training(counts: dict[str, int], lr: float, schedule: str, device: str) -> None:
    """What every training loop here needs of its settings: counts (by flag) of at least 1, a
    positive learning rate, a known schedule, and the device torch can use."""
    for flag, value in counts.items():
        if value < 1:
            raise InputError(f"{flag} must be >= 1, got {value}")
    if not lr > 0:
        raise InputError(f"--lr must be > 0, got {lr}")
    if schedule not in LR_SCHEDULES:
        raise InputError(
            f"unknown --lr-schedule {schedule!r}; use one of: {', '.join(LR_SCHEDULES)}"
        )
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError("--device cuda was asked for, but torch sees no CUDA device here")


def check_data(graph: Graph, x: np.ndarray, y: np.ndarray) -> None:
    """Training images that fit ``graph``'s input, and labels within its outputs."""
    if len(x) == 0:
        raise InputError("no training images")
    check_images(x, graph.input_shape, "training data")
    check_labels(y, outputs(graph), "training data")


def outputs(graph: Graph) -> int:
    """How many values ``graph`` outputs per image (its classes)."""
    return int(np.prod(infer_shapes(graph)[graph.output]))


def run_epoch(
    x: np.ndarray,
    y: np.ndarray,
    batch_size: int,
    order: torch.Generator,
    device: torch.device,
    step: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]],
    opt: torch.optim.Optimizer,
    schedule: Scheduler,
    history: History,
    progress: Progress | None = None,
    after_step: Callable[[], None] | None = None,
) -> None:
    """One pass over (x, y) in batches drawn by ``order``: ``step(xb, yb)`` gives (logits,
    loss), then an optimizer step, a ``schedule`` step and ``after_step``. Appends the epoch to
    ``history``."""
    start = time.process_time()
    total_loss, correct = 0.0, 0
    for idx in torch.randperm(len(x), generator=order).split(batch_size):
        xb = torch.as_tensor(x[idx.numpy()], device=device)
        yb = torch.as_tensor(y[idx.numpy()], device=device)
        logits, loss = step(xb, yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
        schedule.step()
        if after_step:
            after_step()
        batch_correct = int((logits.argmax(1) == yb).sum())
        total_loss += float(loss.detach()) * len(idx)
        correct += batch_correct
        if progress:
            progress(len(idx), float(loss.detach()), batch_correct / len(idx))
    history.loss.append(total_loss / len(x))
    history.accuracy.append(correct / len(x))
    history.seconds.append(round(time.process_time() - start, 2))
