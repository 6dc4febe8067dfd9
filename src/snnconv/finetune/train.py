"""The fine-tuning loop: Adam on the SNN unrolled over T steps, and its evaluation."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from snnconv.data.fit import check_images, check_labels
from snnconv.errors import InputError
from snnconv.finetune.losses import Loss
from snnconv.finetune.network import SpikingNet
from snnconv.graph import Graph
from snnconv.ops import infer_shapes

#: ``progress(images, loss, accuracy)``: images just trained on, the batch's loss and accuracy.
Progress = Callable[[int, float, float], None]


@dataclass(frozen=True)
class FinetuneSettings:
    epochs: int = 1
    timesteps: int = 4
    loss: Loss = field(default_factory=Loss)
    lr: float = 1e-4
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
            self.device,
        )


def check_training(counts: dict[str, int], lr: float, device: str) -> None:
    """What every training loop here needs of its settings: counts (by flag) of at least 1, a
    positive learning rate, and the device torch can use."""
    for flag, value in counts.items():
        if value < 1:
            raise InputError(f"{flag} must be >= 1, got {value}")
    if not lr > 0:
        raise InputError(f"--lr must be > 0, got {lr}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError("--device cuda was asked for, but torch sees no CUDA device here")


@dataclass
class History:
    """Mean training loss and accuracy (at the trained T) of each epoch."""

    loss: list[float] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)


def finetune(
    snn: Graph,
    x: np.ndarray,
    y: np.ndarray,
    settings: FinetuneSettings = FinetuneSettings(),
    *,
    progress: Progress | None = None,
) -> tuple[Graph, History]:
    """Train ``snn``'s weights, biases and thresholds on (x, y) at T = ``settings.timesteps``;
    return the trained SNN graph (its metadata records how) and the per-epoch history."""
    settings.check()
    _check_data(snn, x, y)
    device = torch.device(settings.device)
    net = SpikingNet(snn).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=settings.lr)
    order = torch.Generator().manual_seed(settings.seed)
    drops = torch.Generator(device=device).manual_seed(settings.seed + 1)
    history = History()
    for _ in range(settings.epochs):
        total_loss, correct = 0.0, 0
        for idx in torch.randperm(len(x), generator=order).split(settings.batch_size):
            xb = torch.as_tensor(x[idx.numpy()], device=device)
            yb = torch.as_tensor(y[idx.numpy()], device=device)
            logits = net(xb, settings.timesteps)[-1] / settings.timesteps
            loss = settings.loss(logits, yb, drops)
            opt.zero_grad()
            loss.backward()
            opt.step()
            batch_correct = int((logits.argmax(1) == yb).sum())
            total_loss += float(loss.detach()) * len(idx)
            correct += batch_correct
            if progress:
                progress(len(idx), float(loss.detach()), batch_correct / len(idx))
        history.loss.append(total_loss / len(x))
        history.accuracy.append(correct / len(x))
    trained = net.to_graph()
    trained.metadata["snnconv.finetune"] = json.dumps(
        {
            **asdict(settings),
            "loss": str(settings.loss),
            "images": len(x),
            "train_loss": history.loss,
            "train_accuracy": history.accuracy,
        },
        sort_keys=True,
    )
    return trained, history


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


def _check_data(snn: Graph, x: np.ndarray, y: np.ndarray) -> None:
    if len(x) == 0:
        raise InputError("no training images")
    check_images(x, snn.input_shape, "training data")
    check_labels(y, int(np.prod(infer_shapes(snn)[snn.output])), "training data")
