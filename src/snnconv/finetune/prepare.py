"""``snnconv prepare``: fine-tune an ANN with quantisation clip-floor-shift activations (QCFS,
Bu et al., ICLR 2022), so that binary IF neurons reproduce it at few timesteps.

Every ReLU / clipped ReLU becomes a ``qcfs`` layer with L levels and a trainable threshold λ
(per layer or per channel), initialised by the ``mse`` observer at T = L with a half-threshold
start: the λ whose QCFS quantisation of the calibration activations is closest to them. Batch
norm is folded into the layer before it first (the prepared ANN has no batch statistics to
keep), max pools move after the activations (they commute with it), then the whole ANN
(weights, biases, λ) trains with Adam and cross-entropy, the floor passing its gradient
straight through.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F

from snnconv.calibrate.observe import observe_thresholds
from snnconv.calibrate.thresholds import MseMethod
from snnconv.convert import prepare_ann
from snnconv.errors import InputError
from snnconv.finetune.epochs import (
    History,
    Progress,
    check_data,
    check_training,
    lr_schedule,
    run_epoch,
)
from snnconv.finetune.trainable_ann import TrainableAnn
from snnconv.graph import ACTIVATION_OPS, BLOCK_OPS, Graph, Node
from snnconv.ops import infer_shapes

#: Images the λ observers sample (the first of the training data).
INIT_IMAGES = 1024


@dataclass(frozen=True)
class PrepareSettings:
    levels: int = 4
    epochs: int = 3
    #: Along the cosine, 4e-3 gave both bench nets a better prepared ANN and SNN than 1e-3 or
    #: 2e-3 (docs/latency.md, "The ResNet-style net at T = 4").
    lr: float = 4e-3
    lr_schedule: str = "cosine"
    batch_size: int = 64
    per_channel: bool = False
    device: str = "cpu"
    seed: int = 0

    def check(self) -> None:
        check_training(
            {"--levels": self.levels, "--epochs": self.epochs, "--batch-size": self.batch_size},
            self.lr,
            self.lr_schedule,
            self.device,
        )


def to_qcfs(
    ann: Graph,
    x: np.ndarray,
    levels: int,
    *,
    per_channel: bool = False,
    batch_size: int = 128,
) -> Graph:
    """``ann`` (batch norm folded, max pools after activations) with every activation a QCFS
    layer whose λ the ``mse`` observer chose on ``x`` for L = ``levels``."""
    _refuse(ann)
    g = prepare_ann(ann)
    thresholds = observe_thresholds(
        g, x, MseMethod(), per_channel=per_channel, timesteps=levels, v0=0.5, batch_size=batch_size
    )
    _replace(g.nodes, lambda name: thresholds[name], levels)
    g.validate()
    infer_shapes(g)
    return g


def _replace(nodes: list[Node], threshold, levels: int) -> None:
    for i, n in enumerate(nodes):
        if n.op in ACTIVATION_OPS:
            nodes[i] = Node(
                n.name, "qcfs", n.inputs, {"levels": levels}, {"threshold": threshold(n.name)}
            )
        elif n.op in BLOCK_OPS:
            # one λ per body layer, shared by the passes as its weights are: the largest pass's
            _replace(n.attrs["body"], _widest(n, threshold), levels)


def _widest(block: Node, threshold) -> Callable[[str], np.ndarray]:
    def widest(name: str) -> np.ndarray:
        rows = [threshold(f"{name}#{r}") for r in range(1, block.attrs["repeats"] + 1)]
        width = max(r.size for r in rows)
        return np.max([np.broadcast_to(r, (width,)) for r in rows], axis=0).astype(np.float32)

    return widest


def _refuse(ann: Graph) -> None:
    if ann.is_snn:
        raise InputError("prepare takes an ANN; this model already has spiking neurons")
    done = [n.name for n in ann if n.op == "qcfs"]
    if done:
        raise InputError(
            f"the model is already prepared (node {done[0]!r} is a QCFS layer); prepare the "
            "original ANN again to change --levels"
        )
    if not any(n.op in ACTIVATION_OPS for n in ann):
        raise InputError("the model has no ReLU or clipped ReLU to prepare")


def prepare(
    ann: Graph,
    x: np.ndarray,
    y: np.ndarray,
    settings: PrepareSettings = PrepareSettings(),
    *,
    progress: Progress | None = None,
    on_epoch: Callable[[int, Graph], None] | None = None,
) -> tuple[Graph, History]:
    """Replace the activations of ``ann`` by QCFS layers and fine-tune it on (x, y); return
    the prepared ANN (its metadata records how, ``snnconv.prepare``) and the history.
    ``on_epoch(epoch, graph)`` is told of the prepared graph after each epoch."""
    settings.check()
    check_data(ann, x, y)
    torch.manual_seed(settings.seed)
    g = to_qcfs(ann, x[:INIT_IMAGES], settings.levels, per_channel=settings.per_channel)
    device = torch.device(settings.device)
    net = TrainableAnn(g).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=settings.lr)
    schedule = lr_schedule(settings.lr_schedule, opt, len(x), settings.batch_size, settings.epochs)
    order = torch.Generator().manual_seed(settings.seed)
    history = History()

    def step(xb: torch.Tensor, yb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = net(xb)
        return logits, F.cross_entropy(logits, yb)

    for epoch in range(1, settings.epochs + 1):
        run_epoch(
            x,
            y,
            settings.batch_size,
            order,
            device,
            step,
            opt,
            schedule,
            history,
            progress,
            net.clamp_thresholds,
        )
        if on_epoch:
            on_epoch(epoch, _finish(net, ann, settings, len(x), history))
    return _finish(net, ann, settings, len(x), history), history


def _finish(net: TrainableAnn, ann: Graph, settings, images: int, history) -> Graph:
    g = net.to_graph()
    g.metadata = {
        **{k: v for k, v in ann.metadata.items() if not k.startswith("verify_")},
        "snnconv.prepare": json.dumps(
            {
                **asdict(settings),
                "images": images,
                "train_loss": history.loss,
                "train_accuracy": history.accuracy,
                "seconds_per_epoch": history.seconds,
            },
            sort_keys=True,
        ),
    }
    return g


@torch.no_grad()
def ann_accuracy(ann: Graph, x: np.ndarray, y: np.ndarray, batch_size: int = 256) -> float:
    """The ANN's accuracy on (x, y)."""
    net = TrainableAnn(ann).eval()
    correct = 0
    for start in range(0, len(x), batch_size):
        out = net(torch.as_tensor(x[start : start + batch_size]))
        correct += int((out.argmax(1) == torch.as_tensor(y[start : start + batch_size])).sum())
    return correct / len(x)


__all__ = ["PrepareSettings", "ann_accuracy", "prepare", "to_qcfs"]
