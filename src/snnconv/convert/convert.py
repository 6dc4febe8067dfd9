"""The conversion entry point: prepare the ANN, calibrate thresholds, place neurons."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace

import numpy as np
import torch

# layerwise, search and spikenorm as modules, not names: they import the simulator, whose
# package imports this one.
from snnconv.calibrate import calibrate, layerwise, parse_method, search, spikenorm
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
from snnconv.graph import Graph, unroll
from snnconv.ops import ann_forward

#: Layer-wise calibration steps after the thresholds, in the order they run.
LAYERWISE_STEPS = ("search", "bias", "potential")


def parse_layerwise(text: str) -> tuple[str, ...]:
    """``none``, or steps of LAYERWISE_STEPS joined by ``+`` (e.g. ``search+bias``); they
    run in LAYERWISE_STEPS order whatever order they are written in."""
    if text == "none":
        return ()
    steps = text.split("+")
    unknown = [s for s in steps if s not in LAYERWISE_STEPS]
    if unknown or len(set(steps)) != len(steps):
        raise InputError(
            f"--calibrate must be none or steps from {', '.join(LAYERWISE_STEPS)} joined by + "
            f"(e.g. search+bias), got {text!r}"
        )
    return tuple(s for s in LAYERWISE_STEPS if s in steps)


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
        if self.neuron == "signed" and self.reset != "subtract":
            raise InputError("--neuron signed needs --reset subtract (a -1 gives back a threshold)")
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


def prepare_ann(graph: Graph, maxpool: str = "gate") -> Graph:
    """The ANN the SNN will approximate: batch norm folded, max pools after activations, and
    (with ``maxpool="avg"``) max pools replaced by average pools."""
    g = pool_after_activation(fold_affine(graph))
    return MAXPOOL_PASSES[maxpool](g)


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
    corrected (stage "layers").
    """
    settings.check()
    settings = apply_target(settings)
    check_images(calib_x, graph.input_shape, "calibration data")
    if settings.neuron == "auto":
        return _choose_neuron(graph, calib_x, settings, batch_size, progress)
    ann = prepare_ann(graph, settings.maxpool)
    snn = _thresholds(ann, calib_x, settings, batch_size, progress)
    # The hybrid cut comes before layer-wise calibration: only the spiking part is calibrated.
    if settings.ann_layers is not None:
        cut = cut_for_ann_layers(snn, settings.ann_layers, settings.boundary)
        snn = make_hybrid(snn, cut, settings.boundary)
    elif settings.hybrid_after is not None:
        snn = make_hybrid(snn, settings.hybrid_after, settings.boundary)
    refuse_ann_only_ops(snn)
    steps = parse_layerwise(settings.calibrate)
    layers = sum(n.op == "if_neuron" for n in unroll(snn))
    scales = None
    if "search" in steps:
        snn, scales = search.search_thresholds(
            snn,
            ann,
            calib_x[: search.SEARCH_IMAGES],
            settings.target_timesteps,
            batch_size=batch_size,
            progress=_stage(progress, "threshold scales", layers),
        )
    corrections = tuple(s for s in steps if s in ("bias", "potential"))
    if corrections:
        snn = layerwise.calibrate_layers(
            snn,
            ann,
            calib_x[: settings.calibration_images],
            settings.target_timesteps,
            corrections,
            batch_size=batch_size,
            progress=_stage(progress, "layers", layers),
        )
    if scales is not None:
        snn.metadata["snnconv.threshold_scales"] = json.dumps(
            {k: round(v, 4) for k, v in scales.items()}
        )
    snn.metadata = {
        **graph.metadata,
        **snn.metadata,
        "snnconv.conversion": json.dumps(asdict(settings), sort_keys=True),
        "snnconv.calibration_images": str(len(calib_x)),
        "snnconv.deployment": json.dumps(deployment(snn)),
    }
    return snn


def _choose_neuron(graph: Graph, calib_x: np.ndarray, settings, batch_size, progress) -> Graph:
    """``--neuron auto``: convert with each neuron kind and keep the SNN whose output at the
    target T is closest (mean squared error) to the ANN's on the search images; binary IF
    on a tie. Signed neurons fit a residual net far better at few timesteps, and a plain
    net no better or worse while spiking more (docs/latency.md), so it is measured, per net
    and T, rather than fixed."""
    kinds = NEURONS if settings.reset == "subtract" else ("if",)  # signed needs subtraction
    x = torch.as_tensor(calib_x[: search.SEARCH_IMAGES])
    target = ann_forward(prepare_ann(graph, settings.maxpool), x)[0].flatten(1)
    snns, errors = {}, {}
    for kind in kinds:
        tagged = (
            None if progress is None else (lambda st, d, n, k=kind: progress(f"{st} ({k})", d, n))
        )
        snns[kind] = convert(
            graph, calib_x, replace(settings, neuron=kind), batch_size=batch_size, progress=tagged
        )
        errors[kind] = search.output_error(snns[kind], x, target, settings.target_timesteps)
    chosen = min(errors, key=errors.get)
    snn = snns[chosen]
    snn.metadata["snnconv.conversion"] = json.dumps(asdict(settings), sort_keys=True)
    snn.metadata["snnconv.neuron_choice"] = json.dumps(
        {"chosen": chosen, "output_error": {k: float(f"{e:.6g}") for k, e in errors.items()}}
    )
    return snn


def _thresholds(ann: Graph, calib_x: np.ndarray, settings, batch_size, progress) -> Graph:
    """The ANN with neurons in place of activations, at their calibrated thresholds."""
    method = parse_method(settings.threshold)
    if method.name == "spikenorm":
        # Placeholders first: spikenorm sets the thresholds in order, simulating the SNN.
        ones = defaultdict(lambda: np.ones(1, np.float32))
        snn = to_neurons(ann, ones, settings.reset, settings.v0, settings.neuron)
        layers = sum(n.op == "if_neuron" for n in unroll(snn))
        return spikenorm.spikenorm_thresholds(
            snn,
            calib_x[: settings.calibration_images],
            settings.target_timesteps,
            per_channel=settings.per_channel,
            batch_size=batch_size,
            progress=_stage(progress, "thresholds", layers),
        )
    thresholds = calibrate(
        ann,
        calib_x,
        method,
        per_channel=settings.per_channel,
        timesteps=settings.target_timesteps,
        v0=settings.v0,
        batch_size=batch_size,
        seed=settings.seed,
        progress=_stage(progress, "thresholds", len(calib_x)),
    )
    return to_neurons(ann, thresholds, settings.reset, settings.v0, settings.neuron)


def _stage(progress, stage: str, total: int) -> Callable[[int], None] | None:
    if progress is None:
        return None
    done = 0

    def advance(n: int) -> None:
        nonlocal done
        done += n
        progress(stage, done, total)

    return advance
