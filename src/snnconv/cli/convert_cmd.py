"""snnconv convert: ANN -> SNN file."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import click
from click.core import ParameterSource

from snnconv import threads
from snnconv.cli.options import (
    batch_size_option,
    force_option,
    model_options,
    normalize_option,
    output_option,
    seed_option,
)
from snnconv.cli.output import check_outputs, console, err_console
from snnconv.cli.progress import progress_bar, stage_progress
from snnconv.convert import ConversionSettings, convert, prepared_defaults
from snnconv.convert.hybrid import BOUNDARIES
from snnconv.convert.maxpool import MAXPOOL_MODES
from snnconv.convert.neurons import NEURONS, RESETS
from snnconv.convert.targets import TARGETS, apply_target
from snnconv.data import load_dataset
from snnconv.data.fit import check_images
from snnconv.deployment import describe, recorded
from snnconv.graph import all_nodes
from snnconv.load import load_input_model
from snnconv.neurons import kind_of
from snnconv.save import save_onnx
from snnconv.simulate import SimulationSettings, simulate

PREDICTION_IMAGES = 512


def default_output(model: str | None, factory: str | None) -> str:
    if model:
        p = Path(model)
        return str(p.with_name(p.name.split(".")[0] + ".snn.onnx"))
    return factory.replace(":", "_").replace(".", "_") + ".snn.onnx"


@click.command("convert")
@model_options
@click.option(
    "--calib-data",
    required=True,
    metavar="SPEC",
    help="Calibration images (default split: train), e.g. mnist:DIR or npz:PATH.",
)
@click.option(
    "--calib-limit",
    default=1000,
    show_default=True,
    type=click.IntRange(min=1),
    help="Calibrate on the first N images.",
)
@normalize_option("Apply (x - MEAN) / STD, as in training (recorded in the SNN for later verbs).")
@click.option(
    "--threshold",
    default=ConversionSettings.threshold,
    show_default=True,
    help="max | percentile:P | mse | spikenorm | qcfs. mse fits the rate error at "
    "--target-timesteps; spikenorm (Sengupta et al. 2019) sets each layer, in order, to the "
    "largest input current it gets in the SNN over --target-timesteps steps; qcfs takes the "
    "thresholds λ of a model from snnconv prepare. A prepared model defaults to --threshold "
    "qcfs --neuron if --calibrate search+bias --target-timesteps L (options given win).",
)
@click.option("--per-channel", is_flag=True, help="One threshold per channel, not per layer.")
@click.option(
    "--target-timesteps",
    default=32,
    show_default=True,
    type=click.IntRange(min=1),
    help="The T you will simulate: --threshold mse/spikenorm and --calibrate fit it.",
)
@click.option(
    "--calibrate",
    default=ConversionSettings.calibrate,
    show_default=True,
    metavar="STEPS",
    help="Layer-wise calibration at the target T after the thresholds, steps joined by +: "
    "search (rescale each layer's threshold, in order, to fit the ANN's output), bias "
    "(correct each layer's mean output by a constant input current, Li et al. 2021), "
    "potential (add that gap x T to the initial membrane: spikes come earlier); none: "
    "thresholds only.",
)
@click.option(
    "--search-passes",
    type=click.IntRange(min=1),
    default=ConversionSettings.search_passes,
    show_default=True,
    metavar="N",
    help="Passes of --calibrate search through the layers: each further pass searches every "
    "layer again with the later layers' scales in place. With --neuron if, 2 gained 0.55-2.1 "
    "points on the deep vgg16 bench net at T = 8 (per channel; docs/latency.md), for about "
    "1.6x the conversion time.",
)
@click.option(
    "--neuron",
    type=click.Choice((*NEURONS, "auto")),
    default=ConversionSettings.neuron,
    show_default=True,
    help="if: integrate-and-fire, spikes 0/1 (any neuromorphic chip). signed: IF that also "
    "emits -1 to take back a spike it has fired (Wang et al. 2022); far closer to the ANN at "
    "few timesteps on residual nets, needs hardware that carries signed spikes, no NIR "
    "export. auto: convert with both, keep the one whose output at the target T fits the "
    "ANN's best on calibration data (a kind more than 2x behind the other before the "
    "layer-wise steps is not calibrated further; else twice the conversion time).",
)
@click.option("--reset", type=click.Choice(RESETS), default="subtract", show_default=True)
@click.option(
    "--v0",
    default=0.5,
    show_default=True,
    type=float,
    help="Initial membrane as a fraction of the threshold.",
)
@click.option(
    "--maxpool",
    type=click.Choice(MAXPOOL_MODES),
    default="gate",
    show_default=True,
    help="gate: per window, a spike whenever the largest spike count so far grows (the max "
    "pool of the rates at every step); winner: pass the spikes of the input that has fired "
    "most so far (the former gate); avg: replace by average "
    "pooling (changes the ANN); relu: the same max from relus, max(a, b) = a + relu(b - a), "
    "2x2 stride-2 pools only (IF neurons NIR expresses; others become average pools).",
)
@click.option(
    "--hybrid-after",
    metavar="NODE",
    help="Hybrid ANN-SNN: spiking up to NODE (a node name from snnconv inspect), ANN after it.",
)
@click.option(
    "--ann-layers",
    type=click.IntRange(min=1),
    help="Hybrid ANN-SNN: the last K weighted layers form the ANN part.",
)
@click.option(
    "--boundary",
    type=click.Choice(BOUNDARIES),
    default="rate",
    show_default=True,
    help="What the ANN part reads: rate x threshold of the boundary spikes, or the mean "
    "membrane input of a boundary layer that does not fire.",
)
@click.option(
    "--target",
    type=click.Choice(tuple(TARGETS)),
    default="snnconv",
    show_default=True,
    help="Where the SNN will run. nir: exactly what NIR expresses (binary IF, max pools from "
    "relus; --reset subtract exports as an Integrator/Threshold loop with --v0 as a lower "
    "firing level, --reset zero as NIR's IF at rest, v0 0), calibrated under those "
    "constraints; overrides --neuron and --maxpool.",
)
@batch_size_option()
@seed_option()
@output_option("Output .snn.onnx (default: MODEL with .snn.onnx).")
@force_option("Overwrite an existing output.")
def convert_cmd(
    model,
    torch_factory,
    weights,
    input_shape,
    trust_pickle,
    calib_data,
    calib_limit,
    normalize,
    batch_size,
    output,
    force,
    **conversion,
):
    """Convert a trained ANN into an SNN, with thresholds calibrated on data.

    \b
    Example:
      snnconv convert model.onnx --calib-data mnist:/data/fashion-mnist -o model.snn.onnx
    """
    output = output or default_output(model, torch_factory)
    check_outputs(output, force=force)
    settings = ConversionSettings(**conversion)
    settings.check()
    settings = apply_target(settings)
    err_console.print(f"torch threads: {threads.current()}")
    graph = load_input_model(
        model,
        torch_factory=torch_factory,
        weights=weights,
        input_shape=input_shape,
        trust_pickle=trust_pickle,
    )
    ds = load_dataset(
        calib_data,
        split="train",
        normalize=normalize,
        limit=calib_limit,
    )
    check_images(ds.x, graph.input_shape, f"--calib-data {calib_data}")
    settings = _for_prepared(graph, conversion, settings)
    with stage_progress() as report:
        snn = convert(graph, ds.x, settings, batch_size=batch_size, progress=report)
    if normalize:
        snn.metadata["snnconv.normalize"] = normalize
    save_onnx(snn, output, force=force)
    err_console.print(f"wrote {output}")
    neurons = [n for n in all_nodes(snn.nodes) if n.op == "if_neuron"]  # BackRes bodies too
    console.print(
        f"[green]converted[/green] {len(neurons)} activation layers to "
        f"{' and '.join(sorted({kind_of(n).label for n in neurons}))} neurons: "
        f"threshold {settings.threshold}{' per channel' if settings.per_channel else ''}, "
        f"layer-wise calibration {settings.calibrate}, target T = {settings.target_timesteps}, "
        f"reset {settings.reset}, v0 {settings.v0}; {len(ds.x)} calibration images"
    )
    if "snnconv.neuron_choice" in snn.metadata:
        choice = json.loads(snn.metadata["snnconv.neuron_choice"])
        dropped = [k for k in choice.get("before_steps", {}) if k not in choice["output_error"]]
        console.print(
            f"--neuron auto chose {choice['chosen']}: output error against the ANN at "
            f"T = {settings.target_timesteps} "
            + ", ".join(f"{k} {e:.4g}" for k, e in choice["output_error"].items())
            + "".join(
                f"; {k} {choice['before_steps'][k]:.4g} before the layer-wise steps, "
                "too far behind to calibrate"
                for k in dropped
            )
        )
    if "snnconv.stage_seconds" in snn.metadata:
        stages = json.loads(snn.metadata["snnconv.stage_seconds"])
        console.print(
            "conversion time per stage: " + ", ".join(f"{k} {v:.1f} s" for k, v in stages.items())
        )
    if "snnconv.threshold_scales" in snn.metadata:
        scales = json.loads(snn.metadata["snnconv.threshold_scales"])
        console.print(
            "threshold search kept these multiples of the initial thresholds: "
            + ", ".join(f"{name} ×{s:.2f}" for name, s in scales.items())
        )
    for line in describe(recorded(snn)):
        console.print(line, highlight=False, markup=False)
    predict(snn, ds, settings.target_timesteps, batch_size)


def _for_prepared(graph, conversion: dict, settings: ConversionSettings) -> ConversionSettings:
    """A prepared ANN's defaults (``--threshold qcfs``, ``--neuron if``, T = L, ...) for the
    options the user left at theirs."""
    ctx = click.get_current_context()
    defaults = {
        k: v
        for k, v in prepared_defaults(graph).items()
        if ctx.get_parameter_source(k) in (ParameterSource.DEFAULT, None)
    }
    if not defaults:
        return settings
    err_console.print(
        "a prepared (QCFS) model: "
        + ", ".join(f"--{k.replace('_', '-')} {v}" for k, v in defaults.items())
    )
    settings = replace(ConversionSettings(**conversion), **defaults)
    settings.check()
    return apply_target(settings)


def predict(snn, ds, timesteps: int, batch_size: int) -> None:
    """Simulate on (part of) the calibration set: what the user can expect at their T."""
    n = min(len(ds.x), PREDICTION_IMAGES)
    with progress_bar(f"checking at T={timesteps}", n) as advance:
        r = simulate(
            snn,
            ds.x[:n],
            ds.y[:n],
            SimulationSettings(timesteps=timesteps, batch_size=batch_size),
            data_name=ds.name,
            progress=advance,
        )
    console.print(
        f"on {n} calibration images at T = {timesteps}: SNN {100 * r.snn_accuracy:.2f} %, "
        f"ANN {100 * r.ann_accuracy:.2f} % (calibration data flatters; check held-out data "
        "with snnconv simulate)"
    )
