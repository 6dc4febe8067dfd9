"""What simulate and validate share: options -> the SNN, its data and settings -> a run."""

from __future__ import annotations

from snnconv.cli.options import simulation_settings
from snnconv.cli.output import warn
from snnconv.cli.progress import progress_bar
from snnconv.data import Dataset
from snnconv.evaluation import choose_timesteps, load_evaluation
from snnconv.graph import Graph
from snnconv.report.record import Report
from snnconv.simulate import SimulationSettings, simulate
from snnconv.simulate.distributed import is_main_process, local_images


def prepare(model: str, kw: dict) -> tuple[Graph, Dataset, SimulationSettings]:
    """The SNN, its data and the settings that ``data_options`` and ``simulation_options``
    gave; T defaults to the model's target T."""
    snn, ds = load_evaluation(model, kw["data_spec"], normalize=kw["normalize"], limit=kw["limit"])
    timesteps, warning = choose_timesteps(snn, kw["timesteps"])
    if warning and is_main_process():
        warn(warning)
    settings = simulation_settings(kw, timesteps)
    settings.check()
    return snn, ds, settings


def run(snn: Graph, ds: Dataset, settings: SimulationSettings) -> Report:
    """Simulate, with a progress bar on the main process (under torchrun: over its shard)."""
    if not is_main_process():
        return simulate(snn, ds.x, ds.y, settings, data_name=ds.name)
    shown = local_images(len(ds.x))
    with progress_bar(f"simulating T={settings.timesteps}", shown) as advance:
        return simulate(snn, ds.x, ds.y, settings, data_name=ds.name, progress=advance)
