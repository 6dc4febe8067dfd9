"""Options that mean the same on every verb, declared once (DESIGN: conventions)."""

from __future__ import annotations

from collections.abc import Callable

import click

from snnconv.data import FORMS, parse_normalize
from snnconv.errors import InputError
from snnconv.finetune.epochs import LR_SCHEDULES
from snnconv.simulate.encoders import ENCODINGS
from snnconv.simulate.energy import DEFAULT_MODEL, MODELS
from snnconv.simulate.memory import parse_size
from snnconv.simulate.run import SCHEDULES, SimulationSettings


def _apply(f: Callable, options: list[Callable]) -> Callable:
    for opt in reversed(options):
        f = opt(f)
    return f


def _check_normalize(ctx, param, value):
    if value:
        parse_normalize(value)  # bad text stops before any loading
    return value


def _memory_budget(ctx, param, value):
    return None if value is None else parse_size(value)  # bad text stops before any loading


def _input_shape(ctx, param, text):
    if text is None:
        return None
    try:
        shape = tuple(int(p) for p in text.split(","))
    except ValueError:
        shape = ()
    if not shape or any(d < 1 for d in shape):
        raise InputError(f"--input-shape {text!r}: expected positive integers like 1,28,28")
    return shape


def data_option(help: str) -> Callable:
    return click.option("--data", "data_spec", required=True, metavar="SPEC", help=help)


def limit_option(help: str = "Use the first N images.") -> Callable:
    return click.option("--limit", type=click.IntRange(min=1), help=help)


def normalize_option(help: str) -> Callable:
    """``--normalize MEAN,STD``, checked at parse time and kept as text (the SNN records it)."""
    return click.option("--normalize", callback=_check_normalize, metavar="MEAN,STD", help=help)


def batch_size_option(default: int = 128) -> Callable:
    return click.option(
        "--batch-size", default=default, show_default=True, type=click.IntRange(min=1)
    )


def lr_schedule_option(default: str) -> Callable:
    return click.option(
        "--lr-schedule",
        default=default,
        show_default=True,
        type=click.Choice(list(LR_SCHEDULES)),
        help="constant: --lr throughout; cosine: from --lr down to 0 by the last batch.",
    )


def device_option() -> Callable:
    return click.option("--device", default="cpu", show_default=True, help="cpu, cuda or cuda:N.")


def seed_option(help: str | None = None) -> Callable:
    return click.option("--seed", default=0, show_default=True, type=int, help=help)


def output_option(help: str, required: bool = False, metavar: str | None = None) -> Callable:
    return click.option("-o", "--output", required=required, metavar=metavar, help=help)


def force_option(help: str) -> Callable:
    return click.option("--force", is_flag=True, help=help)


def json_option(help: str) -> Callable:
    return click.option("--json", "json_path", metavar="PATH", help=help)


def model_options(f: Callable) -> Callable:
    """MODEL argument plus the options for native PyTorch input."""
    return _apply(
        f,
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
                callback=_input_shape,
                help="Per-sample input shape for PyTorch models, e.g. 1,28,28.",
            ),
            click.option(
                "--trust-pickle",
                is_flag=True,
                help="Allow loading a pickled torch module (runs code from the file).",
            ),
        ],
    )


def data_options(f: Callable) -> Callable:
    """The evaluation data of simulate and validate."""
    return _apply(
        f,
        [
            data_option(
                f"Evaluation data: {FORMS}, optionally ':train' or ':test' (default test)."
            ),
            limit_option(),
            normalize_option(
                "Apply (x - MEAN) / STD to the images, as in training (default: as recorded "
                "at conversion)."
            ),
        ],
    )


def simulation_options(f: Callable) -> Callable:
    return _apply(
        f,
        [
            click.option(
                "--timesteps",
                "-T",
                type=click.IntRange(min=1),
                help="Simulation length T (default: the T the model was converted for, "
                "or 32 if it records none).",
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
            batch_size_option(),
            device_option(),
            click.option(
                "--energy",
                type=click.Choice(list(MODELS)),
                default=DEFAULT_MODEL,
                show_default=True,
                help="Energy model: "
                + "; ".join(f"{m.name}: {m.summary}" for m in MODELS.values())
                + " (docs/energy.md).",
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
            seed_option("Seed for Poisson input."),
        ],
    )


def simulation_settings(kw: dict, timesteps: int) -> SimulationSettings:
    """The settings ``simulation_options`` gave, at ``timesteps`` (resolved per model)."""
    return SimulationSettings(
        timesteps=timesteps,
        encoding=kw["encoding"],
        schedule=kw["schedule"],
        batch_size=kw["batch_size"],
        device=kw["device"],
        energy=kw["energy"],
        seed=kw["seed"],
        exit_when_stable=kw.get("exit_when_stable"),
        memory_budget=kw.get("memory_budget"),
    )
