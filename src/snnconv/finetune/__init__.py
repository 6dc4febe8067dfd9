"""Fine-tuning a converted SNN with surrogate gradients (BPTT), cross-entropy or stochmax."""

from snnconv.finetune.losses import LOSSES, Loss, parse_loss
from snnconv.finetune.network import SpikingNet
from snnconv.finetune.train import FinetuneSettings, evaluate, finetune

__all__ = [
    "LOSSES",
    "FinetuneSettings",
    "Loss",
    "SpikingNet",
    "evaluate",
    "finetune",
    "parse_loss",
]
