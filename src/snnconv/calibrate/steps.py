"""Layer-wise calibration steps: what ``--calibrate`` runs after the thresholds, at the target T.

Each step is one class registered under its name in ``LAYER_STEPS``, in the order steps run.
All of them simulate in the loop through ``LayerWalk``. Steps of one ``stage`` share a walk:
``bias`` and ``potential`` correct each layer in turn (bias first), so that ``potential``
measures what the bias left.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import groupby
from typing import ClassVar

import numpy as np
import torch

from snnconv.calibrate import layerwise, search
from snnconv.errors import InputError
from snnconv.graph import ACTIVATION_OPS, Graph, unroll
from snnconv.ops import ann_forward


@dataclass
class AnnTargets:
    """The ANN's outputs and activations on the first n calibration images, computed once per
    conversion: every step, and every neuron kind ``--neuron auto`` tries, compares with them."""

    ann: Graph  # batch norm folded
    x: np.ndarray
    _outputs: dict[int, torch.Tensor] = field(default_factory=dict, repr=False)
    _activations: dict[int, dict[str, torch.Tensor]] = field(default_factory=dict, repr=False)

    def output(self, n: int) -> torch.Tensor:
        """The ANN's output on ``x[:n]``, flattened to n x outputs."""
        if n not in self._outputs:
            out = ann_forward(unroll(self.ann), torch.as_tensor(self.x[:n]))[0]
            self._outputs[n] = out.flatten(1)
        return self._outputs[n]

    def activations(self, n: int) -> dict[str, torch.Tensor]:
        """The unrolled ANN's activations on ``x[:n]``, keyed as the neurons that replace them."""
        if n not in self._activations:
            flat = unroll(self.ann)
            names = [m.name for m in flat if m.op in ACTIVATION_OPS]
            self._activations[n] = ann_forward(flat, torch.as_tensor(self.x[:n]), keep=names)[1]
        return self._activations[n]


@dataclass(frozen=True)
class StepContext:
    timesteps: int
    calibration_images: int
    batch_size: int
    targets: AnnTargets
    progress: Callable[[str, int], Callable[[int], None] | None]  # (stage, total) -> advance
    search_passes: int = 1
    #: The output error on the search images (``search.output_error``) of the SNN the steps
    #: start from, where the caller measured it.
    start_error: float | None = None


class LayerStep:
    """One ``--calibrate`` step. ``apply`` runs the steps ``names`` of this step's stage (this
    one among them) on ``snn`` and returns the calibrated SNN."""

    name: ClassVar[str]
    stage: ClassVar[str]  # also the progress stage

    @classmethod
    def apply(cls, snn: Graph, names: tuple[str, ...], ctx: StepContext) -> Graph:
        raise NotImplementedError


LAYER_STEPS: dict[str, type[LayerStep]] = {}


def register(cls: type[LayerStep]) -> type[LayerStep]:
    LAYER_STEPS[cls.name] = cls
    return cls


@register
class Search(LayerStep):
    name = "search"
    stage = "threshold scales"

    @classmethod
    def apply(cls, snn, names, ctx):
        n = min(search.SEARCH_IMAGES, len(ctx.targets.x))
        advance = ctx.progress(cls.stage, _layers(snn) * ctx.search_passes)
        total: dict[str, float] = {}
        # Each further pass searches every layer again with the later layers' scales in place.
        for done in range(ctx.search_passes):
            snn, scales = search.search_thresholds(
                snn,
                ctx.targets.ann,
                ctx.targets.x[:n],
                ctx.timesteps,
                batch_size=ctx.batch_size,
                progress=advance,
                target=ctx.targets.output(n),
                start_error=None if done else ctx.start_error,
            )
            total = {k: total.get(k, 1.0) * v for k, v in scales.items()}
        snn.metadata["snnconv.threshold_scales"] = json.dumps(
            {k: round(v, 4) for k, v in total.items()}
        )
        return snn


class _Correction(LayerStep):
    stage = "layers"

    @classmethod
    def apply(cls, snn, names, ctx):
        n = min(ctx.calibration_images, len(ctx.targets.x))
        return layerwise.calibrate_layers(
            snn,
            ctx.targets.ann,
            ctx.targets.x[:n],
            ctx.timesteps,
            names,
            batch_size=ctx.batch_size,
            progress=ctx.progress(cls.stage, _layers(snn)),
            activations=ctx.targets.activations(n),
        )


@register
class Bias(_Correction):
    name = "bias"


@register
class Potential(_Correction):
    name = "potential"


def parse_layerwise(text: str) -> tuple[str, ...]:
    """``none``, or steps of LAYER_STEPS joined by ``+`` (e.g. ``search+bias``); they run in
    LAYER_STEPS order whatever order they are written in."""
    if text == "none":
        return ()
    steps = text.split("+")
    unknown = [s for s in steps if s not in LAYER_STEPS]
    if unknown or len(set(steps)) != len(steps):
        raise InputError(
            f"--calibrate must be none or steps from {', '.join(LAYER_STEPS)} joined by + "
            f"(e.g. search+bias), got {text!r}"
        )
    return tuple(s for s in LAYER_STEPS if s in steps)


def stages(steps: tuple[str, ...]) -> list[tuple[str, tuple[str, ...]]]:
    """The steps grouped into the walks that run them: (stage's step names joined by +, names)."""
    grouped = groupby(steps, key=lambda s: LAYER_STEPS[s].stage)
    return [("+".join(g), g) for g in (tuple(names) for _, names in grouped)]


def run_steps(snn: Graph, steps: tuple[str, ...], ctx: StepContext, timer) -> Graph:
    """Run ``steps`` (as ``parse_layerwise`` gives them) in order, each stage timed by
    ``timer(name)`` (a context manager)."""
    for label, names in stages(steps):
        with timer(label):
            snn = LAYER_STEPS[names[0]].apply(snn, names, ctx)
    return snn


def _layers(snn: Graph) -> int:
    return sum(n.op == "if_neuron" for n in unroll(snn))
