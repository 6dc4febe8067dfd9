"""Fine-tuning a converted SNN with surrogate gradients (BPTT), cross-entropy or stochmax, and
optionally distillation from an ANN teacher."""

from snnconv.finetune.distillation import Distillation
from snnconv.finetune.losses import LOSSES, Loss, parse_loss
from snnconv.finetune.network import SpikingNet
from snnconv.finetune.train import FinetuneSettings, evaluate, finetune

__all__ = [
    "LOSSES",
    "Distillation",
    "FinetuneSettings",
    "Loss",
    "SpikingNet",
    "evaluate",
    "finetune",
    "parse_loss",
]
