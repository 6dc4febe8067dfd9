"""snnconv demo: the whole path on the bundled digits model and data, offline."""

from __future__ import annotations

import json

import click

from snnconv import neurons, threads
from snnconv.cli.options import force_option, json_option, output_option
from snnconv.cli.output import check_outputs, console, err_console, write_json
from snnconv.cli.progress import progress_bar, stage_progress
from snnconv.convert import ConversionSettings, convert
from snnconv.data import asset_path, load_dataset
from snnconv.load import load_onnx
from snnconv.report.energy_tables import models_table
from snnconv.report.tables import report_view
from snnconv.save import save_onnx
from snnconv.simulate import SimulationSettings, simulate
from snnconv.simulate.energy import estimate

ENERGY_MODELS = ("45nm-fp32", "memory-45nm", "memory-45nm-event", "loihi")

DEMO_MODEL = "digits_cnn.onnx"
DEMO_MODELS = {"cnn": DEMO_MODEL, "backres": "digits_backres.onnx"}


@click.command("demo")
@click.option("--timesteps", "-T", default=32, show_default=True, type=click.IntRange(min=1))
@output_option("Also save the converted SNN here.")
@json_option("Write the report as JSON.")
@force_option("Overwrite existing outputs.")
@click.option(
    "--model",
    "model_kind",
    type=click.Choice(sorted(DEMO_MODELS)),
    default="cnn",
    show_default=True,
    help="cnn: the residual CNN; backres: a CNN whose middle block runs 3 times with shared "
    "weights (a backward residual connection, folded into one backres node).",
)
def demo_cmd(timesteps, output, json_path, force, model_kind):
    """Load the bundled digits CNN, convert it, simulate it and print the report.

    Runs offline in well under a minute: a residual CNN (conv, batch norm, residual add,
    pooling) trained on scikit-learn's 8×8 digits, calibrated on the training split and
    simulated on the 500 test images. ``--model backres`` runs the bundled BackRes example
    instead (scripts/train_backres_model.py).

    \b
    Example:
      snnconv demo -T 16 -o digits.snn.onnx --json demo.json
      snnconv demo --model backres
    """
    check_outputs(output, json_path, force=force)
    err_console.print(f"torch threads: {threads.current()}")
    name = DEMO_MODELS[model_kind]
    path = asset_path(name)
    graph = load_onnx(path)
    console.print(
        f"[bold]1/3 load[/bold] {name}: {len(graph.nodes)} nodes, "
        f"{graph.param_count():,} parameters, matches onnxruntime "
        f"(max abs diff {graph.metadata.get('verify_max_abs_diff')})"
    )
    train = load_dataset("digits", split="train")
    test = load_dataset("digits", split="test")
    settings = ConversionSettings(target_timesteps=timesteps)
    with stage_progress() as report:
        snn = convert(graph, train.x, settings, progress=report)
    chosen = json.loads(snn.metadata["snnconv.neuron_choice"])["chosen"]
    console.print(
        f"[bold]2/3 convert[/bold] thresholds {settings.threshold}, layer-wise calibration "
        f"{settings.calibrate}, {neurons.kind(chosen).spikes} IF neurons "
        f"(--neuron auto), for T = {timesteps}, on {len(train.x)} training images"
    )
    if output:
        save_onnx(snn, output, force=force)
        console.print(f"wrote {output}")
    with progress_bar(f"simulating T={timesteps}", len(test.x)) as advance:
        report = simulate(
            snn,
            test.x,
            test.y,
            SimulationSettings(timesteps=timesteps),
            data_name="digits:test",
            progress=advance,
        )
    console.print(f"[bold]3/3 simulate[/bold] {len(test.x)} test images, T = {timesteps}")
    console.print(report_view(report))
    # ops-only against memory-aware, and the hardware preset, on the same counts
    console.print(models_table(report, [estimate(m, report) for m in ENERGY_MODELS]))
    if json_path:
        write_json(json_path, report.to_dict(), force)
