"""The fine-tuning loop: Adam on the SNN unrolled over T steps, and its evaluation."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from snnconv.errors import InputError
from snnconv.finetune.distillation import Distillation, Teacher
from snnconv.finetune.epochs import (
    History,
    Progress,
    check_data,
    check_training,
    lr_schedule,
    outputs,
    run_epoch,
)
from snnconv.finetune.losses import Loss
from snnconv.finetune.network import SpikingNet
from snnconv.graph import Graph


@dataclass(frozen=True)
class FinetuneSettings:
    epochs: int = 1
    timesteps: int = 4
    loss: Loss = field(default_factory=Loss)
    #: How the loss mixes in the teacher's outputs, where ``finetune`` is given a teacher.
    distillation: Distillation = field(default_factory=Distillation)
    lr: float = 3e-4
    lr_schedule: str = "cosine"
    batch_size: int = 64
    device: str = "cpu"
    seed: int = 0

    def check(self) -> None:
        check_training(
            {
                "--epochs": self.epochs,
                "--timesteps": self.timesteps,
                "--batch-size": self.batch_size,
            },
            self.lr,
            self.lr_schedule,
            self.device,
        )
        self.distillation.check()


def finetune(
    snn: Graph,
    x: np.ndarray,
    y: np.ndarray,
    settings: FinetuneSettings = FinetuneSettings(),
    *,
    teacher: Graph | None = None,
    progress: Progress | None = None,
) -> tuple[Graph, History]:
    """Train ``snn``'s weights, biases and thresholds on (x, y) at T = ``settings.timesteps``;
    return the trained SNN graph (its metadata records how) and the per-epoch history.

    With a ``teacher`` ANN (typically the one ``snn`` was converted from), the loss mixes in
    distillation from its outputs on the same images (``settings.distillation``)."""
    settings.check()
    check_data(snn, x, y)
    if teacher is not None:
        _check_teacher(teacher, snn)
    device = torch.device(settings.device)
    net = SpikingNet(snn).to(device)
    distil = None if teacher is None else Teacher(teacher, settings.distillation, device)
    opt = torch.optim.Adam(net.parameters(), lr=settings.lr)
    schedule = lr_schedule(settings.lr_schedule, opt, len(x), settings.batch_size, settings.epochs)
    order = torch.Generator().manual_seed(settings.seed)
    drops = torch.Generator(device=device).manual_seed(settings.seed + 1)
    history = History()

    def step(xb: torch.Tensor, yb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = net(xb, settings.timesteps)[-1] / settings.timesteps
        loss = settings.loss(logits, yb, drops)
        return logits, loss if distil is None else distil(loss, logits, xb)

    for _ in range(settings.epochs):
        run_epoch(x, y, settings.batch_size, order, device, step, opt, schedule, history, progress)
    trained = net.to_graph()
    record = asdict(settings)
    if teacher is None:
        del record["distillation"]
    else:
        record["teacher"] = teacher.metadata.get("source_name", "")
    trained.metadata["snnconv.finetune"] = json.dumps(
        {
            **record,
            "loss": str(settings.loss),
            "images": len(x),
            "train_loss": history.loss,
            "train_accuracy": history.accuracy,
            "seconds_per_epoch": history.seconds,
        },
        sort_keys=True,
    )
    return trained, history


def _check_teacher(teacher: Graph, snn: Graph) -> None:
    """A teacher is an ANN that takes the SNN's input and gives as many outputs."""
    if teacher.is_snn:
        raise InputError(
            "--teacher must be an ANN (the one the SNN was converted from); it has spiking neurons"
        )
    if tuple(teacher.input_shape) != tuple(snn.input_shape):
        raise InputError(
            f"--teacher takes inputs of shape {tuple(teacher.input_shape)}, the SNN "
            f"{tuple(snn.input_shape)}"
        )
    counts = outputs(teacher), outputs(snn)
    if counts[0] != counts[1]:
        raise InputError(f"--teacher has {counts[0]} outputs, the SNN {counts[1]}")


@torch.no_grad()
def evaluate(
    snn: Graph | SpikingNet,
    x: np.ndarray,
    y: np.ndarray,
    timesteps: int,
    *,
    batch_size: int = 128,
    device: str = "cpu",
) -> np.ndarray:
    """Accuracy at every step 1..T of the differentiable forward (argmax of V(t))."""
    net = snn if isinstance(snn, SpikingNet) else SpikingNet(snn)
    net = net.to(device)
    correct = np.zeros(timesteps, np.int64)
    for start in range(0, len(x), batch_size):
        xb = torch.as_tensor(x[start : start + batch_size], device=device)
        yb = torch.as_tensor(y[start : start + batch_size], device=device)
        v = net(xb, timesteps)
        correct += (v.argmax(-1) == yb.view(1, -1)).sum(1).cpu().numpy()
    return correct / len(x)
