"""snnconv simulate: run an SNN file on data and report."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from snnconv.atomic import write_atomic
from snnconv.cli.options import (
    data_options,
    force_option,
    json_option,
    simulation_options,
)
from snnconv.cli.output import check_outputs, console, err_console, write_json
from snnconv.cli.progress import stage_progress
from snnconv.cli.simulation import prepare, run
from snnconv.convert.hybrid import BOUNDARIES
from snnconv.errors import InputError
from snnconv.report.html import render_html
from snnconv.report.plots import plot_paths, render_all, require_matplotlib, write_plots
from snnconv.report.record import Report
from snnconv.report.tables import fmt_count, fmt_joules, report_view
from snnconv.simulate.distributed import is_main_process
from snnconv.simulate.sweep import hybrid_sweep


def sweep_table(sweep: dict) -> Table:
    t = Table(
        title=f"Hybrid sweep · T = {sweep['timesteps']} · boundary {sweep['boundary']} · "
        f"ANN accuracy {100 * sweep['ann_accuracy']:.2f} %"
    )
    for col in (
        "spiking up to",
        "ANN layers",
        "accuracy",
        "spikes/img",
        "energy SNN part",
        "energy ANN part",
        "total",
        "vs ANN",
    ):
        t.add_column(col, justify="left" if col == "spiking up to" else "right")
    for row in sweep["rows"]:
        t.add_row(
            row["after"],
            str(row["ann_layers"]),
            f"{100 * row['snn_accuracy']:.2f} %",
            fmt_count(row["spikes_per_image"]),
            fmt_joules(row["snn_part_joules_per_image"]),
            fmt_joules(row["ann_part_joules_per_image"]),
            fmt_joules(row["snn_joules_per_image"]),
            f"{row['ratio']:.3f}",
        )
    return t


@click.command("simulate")
@click.argument("model", type=click.Path(dir_okay=False))
@data_options
@simulation_options
@json_option("Write the report as JSON.")
@click.option(
    "--plot",
    "plot_dir",
    metavar="DIR",
    help="Write PNG plots (accuracy by timestep, spikes, energy per layer) into DIR.",
)
@click.option("--html", "html_path", metavar="PATH", help="Write a self-contained HTML report.")
@force_option("Overwrite existing --json/--plot/--html files.")
@click.option("--no-layers", is_flag=True, help="Leave out the per-layer table.")
@click.option(
    "--sweep-hybrid",
    is_flag=True,
    help="Simulate every hybrid boundary position, from all-spiking to all-ANN, "
    "and print one row each (the JSON holds the same rows).",
)
@click.option(
    "--boundary",
    type=click.Choice(BOUNDARIES),
    default="rate",
    show_default=True,
    help="Boundary kind used by --sweep-hybrid.",
)
def simulate_cmd(
    model, json_path, plot_dir, html_path, force, no_layers, sweep_hybrid, boundary, **kw
):
    """Simulate a converted SNN for T timesteps and report accuracy, spikes and energy.

    \b
    Example:
      snnconv simulate model.snn.onnx --data mnist:/data/fashion-mnist --timesteps 32 \\
          --json report.json --plot plots/ --html report.html
    """
    check_visual_outputs(plot_dir, html_path, force)
    check_outputs(json_path, force=force)
    if sweep_hybrid:
        if plot_dir or html_path:
            raise InputError("--plot and --html draw one simulation; leave them out of a sweep")
        snn, ds, settings = prepare(model, kw)
        if not is_main_process():
            hybrid_sweep(snn, ds, settings, boundary)
            return
        with stage_progress(f"simulating T={settings.timesteps} ·") as progress:
            sweep = hybrid_sweep(snn, ds, settings, boundary, progress=progress)
        console.print(sweep_table(sweep))
        if json_path:
            write_json(json_path, sweep, force)
        return
    report = run(*prepare(model, kw))
    if not is_main_process():
        return
    console.print(report_view(report, layers=not no_layers))
    if json_path:
        write_json(json_path, report.to_dict(), force)
    write_visuals(report, plot_dir, html_path, force)


def check_visual_outputs(plot_dir: str | None, html_path: str | None, force: bool) -> None:
    """Before simulating: matplotlib is there, and no output would be overwritten unasked."""
    if not (plot_dir or html_path):
        return
    require_matplotlib()
    if plot_dir:
        if Path(plot_dir).exists() and not Path(plot_dir).is_dir():
            raise InputError(f"--plot {plot_dir} is a file; give a folder")
        if not Path(plot_dir).parent.exists():
            raise InputError(f"--plot: folder {Path(plot_dir).parent} does not exist")
        if Path(plot_dir).is_dir():
            check_outputs(*(str(p) for p in plot_paths(plot_dir)), force=force)
    check_outputs(html_path, force=force)


def write_visuals(report: Report, plot_dir: str | None, html_path: str | None, force) -> None:
    if not (plot_dir or html_path):
        return
    pngs = render_all(report)
    if plot_dir:
        write_plots(plot_dir, pngs, force=force)
        err_console.print(f"wrote {len(pngs)} plots to {plot_dir}")
    if html_path:
        write_atomic(html_path, render_html(report, pngs).encode(), force=force)
        err_console.print(f"wrote {html_path}")
