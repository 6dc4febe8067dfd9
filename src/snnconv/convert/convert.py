"""The conversion entry point: prepare the ANN, calibrate thresholds, place neurons."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass

import numpy as np

from snnconv import neurons

# steps and search as modules, not names: they import the simulator, whose package imports
# this one.
from snnconv.calibrate import parse_method, search, steps
from snnconv.calibrate.steps import parse_layerwise
from snnconv.calibrate.thresholds import CalibrationContext
from snnconv.convert.fold import fold_affine
from snnconv.convert.hybrid import (
    BOUNDARIES,
    cut_for_ann_layers,
    make_hybrid,
    refuse_ann_only_ops,
)
from snnconv.convert.maxpool import MAXPOOL_MODES, MAXPOOL_PASSES, pool_after_activation
from snnconv.convert.neurons import NEURONS, RESETS, to_neurons
from snnconv.convert.targets import apply_target
from snnconv.data.fit import check_images
from snnconv.deployment import deployment
from snnconv.errors import InputError
from snnconv.graph import ACTIVATION_OPS, Graph, unroll

__all__ = ["ConversionSettings", "convert", "parse_layerwise", "prepare_ann"]

#: ``--neuron auto`` runs the layer-wise steps only for the kinds whose output error before
#: them is within this factor of the best kind's (None: for all). On the bench nets a kind
#: this far behind never won after the steps (docs/speed.md); it halves a residual net's
#: conversion, where binary IF starts 3-9x behind signed neurons.
AUTO_MARGIN: float | None = 2.0


@dataclass(frozen=True)
class ConversionSettings:
    """Everything that decides the converted SNN; stored in its metadata as JSON."""

    threshold: str = "mse"
    per_channel: bool = False
    target_timesteps: int = 32
    neuron: str = "auto"  # one of NEURONS, or "auto": the one whose output fits the ANN's best
    reset: str = "subtract"
    v0: float = 0.5
    maxpool: str = "gate"
    calibrate: str = "search+bias"  # layer-wise steps at target_timesteps; "none" to skip
    calibration_images: int = 512  # images used by bias/potential correction and spikenorm
    #: passes of the threshold search through the layers, each from the last one's scales
    search_passes: int = 1
    hybrid_after: str | None = None  # spiking up to this node, ANN after it
    ann_layers: int | None = None  # or: the last K weighted layers form the ANN part
    boundary: str = "rate"  # what crosses into the ANN part: "rate" or "membrane"
    seed: int = 0
    target: str = "snnconv"  # a deployment target of convert.targets.TARGETS

    def check(self) -> None:
        try:
            parse_method(self.threshold)
        except InputError as e:
            raise InputError(f"--threshold: {e}") from None
        if self.reset not in RESETS:
            raise InputError(f"--reset must be one of {', '.join(RESETS)}, got {self.reset!r}")
        if self.neuron not in (*NEURONS, "auto"):
            raise InputError(
                f"--neuron must be one of {', '.join(NEURONS)} or auto, got {self.neuron!r}"
            )
        if self.neuron != "auto" and self.reset not in neurons.kind(self.neuron).resets:
            raise InputError(neurons.kind(self.neuron).reset_needs)
        if self.maxpool not in MAXPOOL_MODES:
            raise InputError(
                f"--maxpool must be one of {', '.join(MAXPOOL_MODES)}, got {self.maxpool!r}"
            )
        parse_layerwise(self.calibrate)
        if self.hybrid_after is not None and self.ann_layers is not None:
            raise InputError("give --hybrid-after or --ann-layers, not both")
        if self.boundary not in BOUNDARIES:
            raise InputError(
                f"--boundary must be one of {', '.join(BOUNDARIES)}, got {self.boundary!r}"
            )
        if not 0.0 <= self.v0 < 1.0:
            raise InputError(f"--v0 is a fraction of the threshold in [0, 1), got {self.v0}")
        if self.target_timesteps < 1:
            raise InputError(f"--target-timesteps must be >= 1, got {self.target_timesteps}")
        if self.search_passes < 1:
            raise InputError(f"--search-passes must be >= 1, got {self.search_passes}")


def prepare_ann(graph: Graph, maxpool: str = "gate") -> Graph:
    """The ANN the SNN will approximate: batch norm folded, max pools after activations, and
    (with ``maxpool="avg"``) max pools replaced by average pools."""
    g = pool_after_activation(fold_affine(graph))
    return MAXPOOL_PASSES[maxpool](g)


class StageTimer:
    """Seconds spent per conversion stage, in the order the stages first ran: wall time, and
    this process's CPU time (what a busy machine distorts least)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.cpu_seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        start, cpu = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            spent, cpu = time.perf_counter() - start, time.process_time() - cpu
            self.seconds[stage] = self.seconds.get(stage, 0.0) + spent
            self.cpu_seconds[stage] = self.cpu_seconds.get(stage, 0.0) + cpu


def convert(
    graph: Graph,
    calib_x: np.ndarray,
    settings: ConversionSettings = ConversionSettings(),
    *,
    batch_size: int = 128,
    progress: Callable[[str, int, int], None] | None = None,
) -> Graph:
    """Convert an ANN graph into an SNN graph with thresholds calibrated on ``calib_x``.

    ``progress(stage, done, total)`` is told of each batch of images calibrated
    (stage "thresholds"), each layer searched (stage "threshold scales") and each layer
    corrected (stage "layers"); with ``--neuron auto`` the layer-wise stages carry the
    neuron kind, e.g. "layers (signed)".

    The SNN's metadata ``snnconv.stage_seconds`` holds the seconds each stage took (JSON):
    ``thresholds``, each stage of layer-wise steps (``search``, ``bias``, ...; with the kind
    under ``--neuron auto``), and ``neuron choice`` (under ``auto``: comparing the kinds
    before the steps, which drops a kind AUTO_MARGIN behind, and after them);
    ``snnconv.stage_cpu_seconds`` their CPU seconds.
    """
    settings.check()
    settings = apply_target(settings)
    check_images(calib_x, graph.input_shape, "calibration data")
    timer = StageTimer()
    ann = prepare_ann(graph, settings.maxpool)
    method = parse_method(settings.threshold)
    auto = settings.neuron == "auto"
    kinds = (
        [k for k in NEURONS if settings.reset in neurons.kind(k).resets]
        if auto
        else [settings.neuron]
    )
    total = len(calib_x) if method.progress_unit == "images" else _layers(ann) * len(kinds)
    ctx = CalibrationContext(
        per_channel=settings.per_channel,
        timesteps=settings.target_timesteps,
        v0=settings.v0,
        reset=settings.reset,
        calibration_images=settings.calibration_images,
        batch_size=batch_size,
        seed=settings.seed,
        progress=_stage(progress, "thresholds", total),
        to_neurons=to_neurons,
    )
    with timer("thresholds"):
        place = method.fit(ann, calib_x, ctx)
    targets = steps.AnnTargets(ann, calib_x)
    with timer("thresholds"):
        placed = {kind: _hybrid(place(kind), settings) for kind in kinds}
    before = {}
    if auto and AUTO_MARGIN is not None and parse_layerwise(settings.calibrate):
        with timer("neuron choice"):
            before = _errors(placed, targets, settings.target_timesteps, batch_size)
    # all of them where the errors do not compare (NaN)
    contenders = [k for k in kinds if not before or _within(before[k], before)] or kinds
    snns = {}
    for kind in contenders:
        tag = f" ({kind})" if auto else ""
        snns[kind] = _layerwise(
            placed[kind], settings, targets, batch_size, progress, timer, tag, before.get(kind)
        )
    if auto:
        with timer("neuron choice"):
            snn = _choose_neuron(snns, targets, settings.target_timesteps, batch_size, before)
    else:
        snn = snns[settings.neuron]
    snn.metadata = {
        **graph.metadata,
        **snn.metadata,
        "snnconv.conversion": json.dumps(asdict(settings), sort_keys=True),
        "snnconv.calibration_images": str(len(calib_x)),
        "snnconv.stage_seconds": json.dumps({k: round(v, 3) for k, v in timer.seconds.items()}),
        "snnconv.stage_cpu_seconds": json.dumps(
            {k: round(v, 3) for k, v in timer.cpu_seconds.items()}
        ),
        "snnconv.deployment": json.dumps(deployment(snn)),
    }
    return snn


def _hybrid(snn: Graph, settings) -> Graph:
    """The hybrid cut, if the settings ask for one (only the spiking part is calibrated)."""
    if settings.ann_layers is not None:
        cut = cut_for_ann_layers(snn, settings.ann_layers, settings.boundary)
        snn = make_hybrid(snn, cut, settings.boundary)
    elif settings.hybrid_after is not None:
        snn = make_hybrid(snn, settings.hybrid_after, settings.boundary)
    refuse_ann_only_ops(snn)
    return snn


def _layerwise(
    snn: Graph, settings, targets, batch_size, progress, timer, tag: str, error: float | None
) -> Graph:
    """The layer-wise steps on ``snn`` (hybrid-cut already); ``error``: its output error on
    the search images, where measured."""
    ctx = steps.StepContext(
        timesteps=settings.target_timesteps,
        calibration_images=settings.calibration_images,
        batch_size=batch_size,
        targets=targets,
        progress=lambda stage, total: _stage(progress, stage + tag, total),
        search_passes=settings.search_passes,
        start_error=error,
    )
    timed = lambda stage: timer(stage + tag)
    return steps.run_steps(snn, parse_layerwise(settings.calibrate), ctx, timed)


def _within(error: float, errors: dict[str, float]) -> bool:
    return error <= AUTO_MARGIN * min(errors.values())


def _errors(snns: dict[str, Graph], targets, timesteps: int, batch_size: int) -> dict:
    """Each SNN's output error against the ANN's at T on the search images."""
    n = min(search.SEARCH_IMAGES, len(targets.x))
    x, target = targets.x[:n], targets.output(n)
    return {
        kind: search.output_error(snn, x, target, timesteps, batch_size)
        for kind, snn in snns.items()
    }


def _choose_neuron(
    snns: dict[str, Graph], targets, timesteps: int, batch_size: int, before: dict
) -> Graph:
    """``--neuron auto``: keep the SNN whose output at the target T is closest (mean squared
    error) to the ANN's on the search images; binary IF on a tie. Signed neurons fit a
    residual net far better at few timesteps, and a plain net no better or worse while
    spiking more (docs/latency.md), so it is measured, per net and T, rather than fixed.
    ``before``: each kind's error before the layer-wise steps, where they were measured; a
    kind more than AUTO_MARGIN times the best one's there was not calibrated further."""
    errors = _errors(snns, targets, timesteps, batch_size)
    chosen = min(errors, key=errors.get)
    snn = snns[chosen]
    record = {"chosen": chosen, "output_error": _rounded(errors)}
    if before:
        record["before_steps"] = _rounded(before)
    snn.metadata["snnconv.neuron_choice"] = json.dumps(record)
    return snn


def _rounded(errors: dict[str, float]) -> dict[str, float]:
    return {k: float(f"{e:.6g}") for k, e in errors.items()}


def _layers(ann: Graph) -> int:
    return sum(n.op in ACTIVATION_OPS for n in unroll(ann))


def _stage(progress, stage: str, total: int) -> Callable[[int], None] | None:
    if progress is None:
        return None
    done = 0

    def advance(n: int) -> None:
        nonlocal done
        done += n
        progress(stage, done, total)

    return advance
