"""snnconv export: write a converted SNN in another ecosystem's format (NIR)."""

from __future__ import annotations

import click
from rich.markup import escape

from snnconv.cli.options import force_option, output_option
from snnconv.cli.output import err_console
from snnconv.load import load_snn

FORMATS = ("nir",)


@click.command("export")
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="nir", show_default=True)
@output_option("The file to write.", required=True, metavar="PATH")
@force_option("Overwrite an existing output.")
@click.option(
    "--approximate",
    is_flag=True,
    help="Export IF neurons that reset to zero and start above rest (v0 != 0, a calibrated "
    "potential) as starting at rest (inexact). With reset by subtraction both export exactly.",
)
def export_cmd(model, fmt, output, force, approximate):
    """Export a converted SNN to NIR, for other simulators and neuromorphic chips.

    Spike amplitudes (thresholds) are folded into the next layers' weights and neuron bias
    currents into the preceding layer's bias, so the NIR graph computes what snnconv
    simulates. A model NIR cannot express exactly is refused with every setting that
    prevents it and the `convert --target nir` command. Needs `pip install 'snnconv[nir]'`.

    \b
    Example:
      snnconv convert model.onnx --calib-data digits --target nir -o model.snn.onnx
      snnconv export model.snn.onnx --format nir -o model.nir
    """
    from snnconv.atomic import check_writable
    from snnconv.export.nir import write_nir

    check_writable(output, force=force)
    notes = write_nir(load_snn(model), output, force=force, approximate=approximate)
    for note in notes:
        err_console.print(f"[yellow]approximated:[/yellow] {escape(note)}", highlight=False)
    err_console.print(f"wrote {output}")
