"""What the CLI verbs share: options that mean the same everywhere, loading, progress, output."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from snnconv.atomic import check_writable, write_atomic
from snnconv.data import Dataset, load_dataset, parse_normalize
from snnconv.errors import InputError
from snnconv.graph import Graph
from snnconv.load import load_model, load_torch
from snnconv.simulate.encoders import ENCODINGS
from snnconv.simulate.energy import DEFAULT_PRESET, PRESETS
from snnconv.simulate.memory import parse_size
from snnconv.simulate.run import SCHEDULES, SimulationSettings

# Reports are tables: when piped or captured, give them room rather than 80 columns.
console = Console() if Console().is_terminal else Console(width=120)
err_console = Console(stderr=True)


def _normalize(ctx, param, value):
    return parse_normalize(value) if value else None


def _memory_budget(ctx, param, value):
    return None if value is None else parse_size(value)  # bad text stops before any loading


def model_options(f: Callable) -> Callable:
    """MODEL argument plus the options for native PyTorch input."""
    for opt in reversed(
        [
            click.argument("model", required=False, type=click.Path(dir_okay=False)),
            click.option(
                "--torch",
                "torch_factory",
                metavar="MODULE:FACTORY",
                help="A PyTorch model built by calling FACTORY from MODULE (instead of MODEL).",
            ),
            click.option(
                "--weights",
                type=click.Path(exists=True, dir_okay=False),
                help="A state_dict for --torch, loaded with weights_only=True.",
            ),
            click.option(
                "--input-shape",
                metavar="C,H,W",
                help="Per-sample input shape for PyTorch models, e.g. 1,28,28.",
            ),
            click.option(
                "--trust-pickle",
                is_flag=True,
                help="Allow loading a pickled torch module (runs code from the file).",
            ),
        ]
    ):
        f = opt(f)
    return f


def load_input_model(model, torch_factory, weights, input_shape, trust_pickle) -> Graph:
    if bool(model) == bool(torch_factory):
        raise InputError("give either a MODEL file or --torch MODULE:FACTORY (exactly one)")
    shape = _parse_shape(input_shape) if input_shape else None
    if torch_factory:
        return load_torch(
            torch_factory, input_shape=shape, weights=weights, trust_pickle=trust_pickle
        )
    if not Path(model).exists():
        raise InputError(f"model file {model} does not exist")
    if Path(model).suffix.lower() == ".onnx":
        return load_model(model)
    return load_model(model, input_shape=shape, weights=weights, trust_pickle=trust_pickle)


def _parse_shape(text: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(p) for p in text.split(","))
    except ValueError:
        shape = ()
    if not shape or any(d < 1 for d in shape):
        raise InputError(f"--input-shape {text!r}: expected positive integers like 1,28,28")
    return shape


def data_options(f: Callable) -> Callable:
    for opt in reversed(
        [
            click.option(
                "--data",
                "data_spec",
                required=True,
                metavar="SPEC",
                help="Evaluation data: digits | npz:PATH | mnist:DIR | cifar10:DIR, "
                "optionally ':train' or ':test' (default test).",
            ),
            click.option("--limit", type=click.IntRange(min=1), help="Use the first N images."),
            click.option(
                "--normalize",
                callback=_normalize,
                metavar="MEAN,STD",
                help="Apply (x - MEAN) / STD to the images, as in training.",
            ),
        ]
    ):
        f = opt(f)
    return f


def simulation_options(f: Callable) -> Callable:
    for opt in reversed(
        [
            click.option(
                "--timesteps",
                "-T",
                default=32,
                show_default=True,
                type=click.IntRange(min=1),
                help="Simulation length T.",
            ),
            click.option(
                "--encoding",
                type=click.Choice(ENCODINGS),
                default="direct",
                show_default=True,
                help="direct: the image is the first layer's "
                "current every step; poisson: seeded Bernoulli spikes.",
            ),
            click.option(
                "--schedule",
                type=click.Choice(SCHEDULES),
                default="layer",
                show_default=True,
                help="layer: all steps of a layer at once "
                "(fastest); step: one step at a time. Results are identical (on CUDA, to "
                "rounding: cuDNN picks its kernels by batch size).",
            ),
            click.option(
                "--batch-size", default=128, show_default=True, type=click.IntRange(min=1)
            ),
            click.option("--device", default="cpu", show_default=True, help="cpu, cuda or cuda:N."),
            click.option(
                "--energy",
                type=click.Choice(list(PRESETS)),
                default=DEFAULT_PRESET,
                show_default=True,
                help="Energy-per-operation preset.",
            ),
            click.option(
                "--exit-when-stable",
                metavar="K",
                type=click.IntRange(min=1),
                help="Early exit: stop simulating each image once its prediction has held "
                "for K steps; accuracy, counts and energy are then those of the steps run.",
            ),
            click.option(
                "--memory-budget",
                metavar="SIZE",
                callback=_memory_budget,
                help="Memory the simulation may plan for, e.g. 512MB or 2GiB (default: half "
                "the free memory). Time is folded into the batch in shorter chunks to stay "
                "within it; results are identical (on CUDA, to rounding).",
            ),
            click.option(
                "--seed", default=0, show_default=True, type=int, help="Seed for Poisson input."
            ),
        ]
    ):
        f = opt(f)
    return f


def sim_settings(kw: dict) -> SimulationSettings:
    return SimulationSettings(
        timesteps=kw["timesteps"],
        encoding=kw["encoding"],
        schedule=kw["schedule"],
        batch_size=kw["batch_size"],
        device=kw["device"],
        energy=kw["energy"],
        seed=kw["seed"],
        exit_when_stable=kw.get("exit_when_stable"),
        memory_budget=kw.get("memory_budget"),
    )


def load_data(spec: str, *, split: str = "test", normalize=None, limit=None) -> Dataset:
    ds = load_dataset(spec, split=split, normalize=normalize, limit=limit)
    if len(ds.x) == 0:
        raise InputError(f"dataset {spec!r} holds no images")
    return ds


@contextlib.contextmanager
def progress_bar(description: str, total: int) -> Iterator[Callable[[int], None]]:
    """A rich progress bar on stderr; yields ``advance(n_images)``."""
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("images"),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
        disable=not err_console.is_terminal,
    ) as progress:
        task = progress.add_task(description, total=total)
        yield lambda n: progress.advance(task, n)


@contextlib.contextmanager
def stage_progress() -> Iterator[Callable[[str, int, int], None]]:
    """Progress bars on stderr, one per named stage; yields ``report(stage, done, total)``."""
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
        disable=not err_console.is_terminal,
    ) as progress:
        tasks: dict[str, int] = {}

        def report(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = progress.add_task(f"calibrating {stage}", total=total)
            progress.update(tasks[stage], completed=done)

        yield report


def write_json(path: str, payload: dict, force: bool) -> None:
    write_atomic(path, (json.dumps(payload, indent=2) + "\n").encode(), force=force)
    err_console.print(f"wrote {path}")


def check_outputs(*paths: str | None, force: bool) -> None:
    """Refuse existing outputs before any work starts, so nothing is computed in vain."""
    for p in paths:
        if p:
            check_writable(p, force=force)
