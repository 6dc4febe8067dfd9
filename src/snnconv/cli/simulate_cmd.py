"""snnconv simulate: run an SNN file on data and report."""

from __future__ import annotations

import click

from snnconv.cli.common import (
    check_outputs,
    console,
    data_options,
    load_data,
    progress_bar,
    sim_settings,
    simulation_options,
    write_json,
)
from snnconv.data import parse_normalize
from snnconv.errors import InputError
from snnconv.graph import Graph
from snnconv.load import load_model
from snnconv.report.record import Report
from snnconv.report.tables import report_view
from snnconv.simulate import simulate


def load_snn(path: str) -> Graph:
    graph = load_model(path)
    if not graph.is_snn:
        raise InputError(
            f"{path} holds no spiking neurons: it is an ANN. Convert it first: "
            f"snnconv convert {path} --calib-data SPEC"
        )
    return graph


def run_simulation(model: str, kw: dict) -> Report:
    """Load the SNN and its data (normalised as at conversion unless told otherwise), run it."""
    snn = load_snn(model)
    normalize = kw["normalize"]
    if normalize is None and "snnconv.normalize" in snn.metadata:
        normalize = parse_normalize(snn.metadata["snnconv.normalize"])
    ds = load_data(kw["data_spec"], normalize=normalize, limit=kw["limit"])
    settings = sim_settings(kw)
    settings.check()
    with progress_bar(f"simulating T={settings.timesteps}", len(ds.x)) as advance:
        return simulate(snn, ds.x, ds.y, settings, data_name=ds.name, progress=advance)


@click.command("simulate")
@click.argument("model", type=click.Path(dir_okay=False))
@data_options
@simulation_options
@click.option("--json", "json_path", metavar="PATH", help="Write the report as JSON.")
@click.option("--force", is_flag=True, help="Overwrite an existing --json file.")
@click.option("--no-layers", is_flag=True, help="Leave out the per-layer table.")
def simulate_cmd(model, json_path, force, no_layers, **kw):
    """Simulate a converted SNN for T timesteps and report accuracy, spikes and energy.

    \b
    Example:
      snnconv simulate model.snn.onnx --data mnist:/data/fashion-mnist --timesteps 32 \\
          --json report.json
    """
    check_outputs(json_path, force=force)
    report = run_simulation(model, kw)
    console.print(report_view(report, layers=not no_layers))
    if json_path:
        write_json(json_path, report.to_dict(), force)
