"""snnconv simulate: run an SNN file on data and report."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from snnconv.atomic import write_atomic
from snnconv.cli.common import (
    check_outputs,
    console,
    data_options,
    err_console,
    load_data,
    progress_bar,
    sim_settings,
    simulation_options,
    write_json,
)
from snnconv.convert.hybrid import BOUNDARIES, cut_points, make_hybrid
from snnconv.data import Dataset, parse_normalize
from snnconv.errors import InputError
from snnconv.graph import SYNAPTIC_OPS, Graph
from snnconv.load import load_model
from snnconv.report.html import render_html
from snnconv.report.plots import plot_paths, render_all, require_matplotlib, write_plots
from snnconv.report.record import Report
from snnconv.report.tables import fmt_count, fmt_joules, report_view
from snnconv.simulate import SimulationSettings, distributed, simulate
from snnconv.simulate.distributed import is_main_process


def load_snn(path: str) -> Graph:
    graph = load_model(path)
    if not graph.is_snn:
        raise InputError(
            f"{path} holds no spiking neurons: it is an ANN. Convert it first: "
            f"snnconv convert {path} --calib-data SPEC"
        )
    return graph


def prepare(model: str, kw: dict) -> tuple[Graph, Dataset, SimulationSettings]:
    """Load the SNN and its data (normalised as at conversion unless told otherwise)."""
    snn = load_snn(model)
    normalize = kw["normalize"]
    if normalize is None and "snnconv.normalize" in snn.metadata:
        normalize = parse_normalize(snn.metadata["snnconv.normalize"])
    ds = load_data(kw["data_spec"], normalize=normalize, limit=kw["limit"])
    settings = sim_settings(kw)
    settings.check()
    return snn, ds, settings


def run(snn: Graph, ds: Dataset, settings: SimulationSettings, label: str = "") -> Report:
    """Simulate with a progress bar (under torchrun: rank 0's shard, on rank 0 only)."""
    world = distributed.world()
    if world and not is_main_process():
        return simulate(snn, ds.x, ds.y, settings, data_name=ds.name)
    shown = len(ds.x) if world is None else len(range(len(ds.x))[world.shard(len(ds.x))])
    with progress_bar(f"simulating {label}T={settings.timesteps}", shown) as advance:
        return simulate(snn, ds.x, ds.y, settings, data_name=ds.name, progress=advance)


def run_simulation(model: str, kw: dict) -> Report:
    return run(*prepare(model, kw))


def hybrid_sweep(snn: Graph, ds: Dataset, settings: SimulationSettings, boundary: str) -> dict:
    """Every boundary position, from all-spiking to all-ANN: accuracy, energy, spikes."""
    if any(n.op == "hybrid_boundary" for n in snn):
        raise InputError("--sweep-hybrid needs a plain SNN, not one already made hybrid")
    neurons = {n.name for n in snn if n.op == "if_neuron"}
    cuts = [c for c in reversed(cut_points(snn)) if c in neurons or c == snn.input_name]
    rows = []
    for cut in [None, *cuts]:
        graph = snn if cut is None else make_hybrid(snn, cut, boundary)
        r = run(graph, ds, settings, label=f"{cut or 'all spiking'} · ")
        rows.append(
            {
                "after": cut or "(all spiking)",
                "ann_layers": sum(n.op in SYNAPTIC_OPS for n in graph.nodes[_first_ann(graph) :]),
                "snn_accuracy": r.snn_accuracy,
                "spikes_per_image": r.spikes_per_image,
                "synops_per_image": r.synops_per_image,
                "snn_part_joules_per_image": r.energy.snn_part_joules_per_image,
                "ann_part_joules_per_image": r.energy.ann_part_joules_per_image,
                "snn_joules_per_image": r.energy.snn_joules_per_image,
                "ratio": r.energy.ratio,
            }
        )
    return {
        "schema": "snnconv.sweep/1",
        "timesteps": settings.timesteps,
        "boundary": boundary,
        "ann_accuracy": r.ann_accuracy,
        "rows": rows,
    }


def _first_ann(graph: Graph) -> int:
    """Index of the first node of a hybrid net's ANN part (len(nodes) when there is none)."""
    return next(
        (i for i, n in enumerate(graph.nodes) if n.op == "hybrid_boundary"), len(graph.nodes)
    )


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
@click.option("--json", "json_path", metavar="PATH", help="Write the report as JSON.")
@click.option(
    "--plot",
    "plot_dir",
    metavar="DIR",
    help="Write PNG plots (accuracy by timestep, spikes, energy per layer) into DIR.",
)
@click.option("--html", "html_path", metavar="PATH", help="Write a self-contained HTML report.")
@click.option("--force", is_flag=True, help="Overwrite existing --json/--plot/--html files.")
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
        sweep = hybrid_sweep(*prepare(model, kw), boundary)
        if not is_main_process():
            return
        console.print(sweep_table(sweep))
        if json_path:
            write_json(json_path, sweep, force)
        return
    report = run_simulation(model, kw)
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
