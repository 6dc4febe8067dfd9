"""snnconv validate: a CI gate on a converted model."""

from __future__ import annotations

import sys

import click
from rich.table import Table

from snnconv.cli.options import data_options, force_option, json_option, simulation_options
from snnconv.cli.output import check_outputs, console, write_json
from snnconv.cli.simulation import prepare, run
from snnconv.report.tables import summary_table
from snnconv.simulate.distributed import is_main_process
from snnconv.validate import Limit, check_limits, validation_record


def verdict_table(checks: list[Limit]) -> Table:
    t = Table(title="Validation")
    for col in ("limit", "allowed", "measured", "verdict"):
        t.add_column(col, justify="left" if col == "limit" else "right")
    fmt = {
        "min_accuracy": lambda v: f"≥ {100 * v:.2f} %" if v is not None else "",
        "max_drop": lambda v: f"≤ {v:.2f} points",
        "max_synops": lambda v: f"≤ {v:,.0f}",
        "max_energy_ratio": lambda v: f"≤ {v:.3f}",
    }
    shown = {
        "min_accuracy": lambda v: f"{100 * v:.2f} %",
        "max_drop": lambda v: f"{v:.2f} points",
        "max_synops": lambda v: f"{v:,.0f}",
        "max_energy_ratio": lambda v: f"{v:.3f}",
    }
    for c in checks:
        t.add_row(
            c.name,
            fmt[c.name](c.limit),
            shown[c.name](c.measured),
            "[green]pass[/green]" if c.passed else "[red]FAIL[/red]",
        )
    return t


@click.command("validate")
@click.argument("model", type=click.Path(dir_okay=False))
@data_options
@simulation_options
@click.option(
    "--min-accuracy",
    type=click.FloatRange(0, 1),
    help="Lowest SNN accuracy allowed at T, as a fraction (0.95).",
)
@click.option(
    "--max-drop",
    type=click.FloatRange(min=0),
    help="Largest drop below the ANN allowed, in percentage points (1.0).",
)
@click.option(
    "--max-synops", type=click.FloatRange(min=0), help="Most synaptic operations per image allowed."
)
@click.option(
    "--max-energy-ratio",
    type=click.FloatRange(min=0),
    help="Largest SNN / ANN energy ratio allowed.",
)
@json_option("Write the report with each limit and its verdict as JSON.")
@force_option("Overwrite an existing --json file.")
def validate_cmd(
    model, min_accuracy, max_drop, max_synops, max_energy_ratio, json_path, force, **kw
):
    """Re-simulate a converted SNN and fail (exit 1) when it crosses a limit.

    Exit codes: 0 all limits hold, 1 a limit is crossed, 2 bad input.

    \b
    Example:
      snnconv validate model.snn.onnx --data npz:test.npz -T 32 \\
          --min-accuracy 0.9 --max-drop 1.0 --max-energy-ratio 0.5
    """
    if all(v is None for v in (min_accuracy, max_drop, max_synops, max_energy_ratio)):
        raise click.UsageError(
            "give at least one limit: --min-accuracy, --max-drop, --max-synops or "
            "--max-energy-ratio"
        )
    check_outputs(json_path, force=force)
    report = run(*prepare(model, kw))
    checks = check_limits(
        report,
        min_accuracy=min_accuracy,
        max_drop=max_drop,
        max_synops=max_synops,
        max_energy_ratio=max_energy_ratio,
    )
    passed = all(c.passed for c in checks)
    if is_main_process():  # under torchrun every rank holds the same report and verdict
        console.print(summary_table(report))
        console.print(verdict_table(checks))
        console.print("[green]PASS[/green]" if passed else "[red]FAIL[/red]: a limit is crossed")
        if json_path:
            write_json(json_path, validation_record(report, checks), force)
    sys.exit(0 if passed else 1)
