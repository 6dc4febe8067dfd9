"""The ``snnconv`` command: verbs, and the one place errors become exit codes."""

from __future__ import annotations

import sys

import click
from rich.markup import escape

from snnconv import __version__
from snnconv import threads as cpu_threads
from snnconv.cli.output import err_console
from snnconv.errors import InputError
from snnconv.graph import GraphError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="snnconv")
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    metavar="N",
    help="CPU threads for torch and onnxruntime (default: OMP_NUM_THREADS if set, else the "
    "CPUs this process may run on, capped by its cgroup CPU quota and by the CPUs other "
    "processes leave idle). On a machine whose cores other busy processes share, fewer can "
    "be much faster: every small operation waits for its slowest thread.",
)
def cli(threads: int | None) -> None:
    """Convert trained neural networks into spiking ones, and measure them.

    \b
    snnconv demo                                     the whole path on bundled data
    snnconv inspect model.onnx                       layers, shapes, MACs, what converts
    snnconv prepare model.onnx --data SPEC -L 4 -o model.prepared.onnx   (QCFS, optional)
    snnconv convert model.onnx --calib-data SPEC     ANN -> model.snn.onnx
    snnconv simulate model.snn.onnx --data SPEC -T 32
    snnconv validate model.snn.onnx --data SPEC --min-accuracy 0.9   (CI gate)
    snnconv finetune model.snn.onnx --data SPEC -T 4 --loss stochmax -o ft.snn.onnx
    snnconv export model.snn.onnx --format nir -o model.nir

    Exit codes: 0 ok, 1 a validation limit crossed, 2 bad input or usage.
    """
    cpu_threads.apply(cpu_threads.choose_threads(threads))


def _register() -> None:
    from snnconv.cli.convert_cmd import convert_cmd
    from snnconv.cli.demo_cmd import demo_cmd
    from snnconv.cli.export_cmd import export_cmd
    from snnconv.cli.finetune_cmd import finetune_cmd
    from snnconv.cli.inspect_cmd import inspect_cmd
    from snnconv.cli.prepare_cmd import prepare_cmd
    from snnconv.cli.simulate_cmd import simulate_cmd
    from snnconv.cli.validate_cmd import validate_cmd

    for cmd in (
        demo_cmd,
        inspect_cmd,
        prepare_cmd,
        convert_cmd,
        simulate_cmd,
        validate_cmd,
        finetune_cmd,
        export_cmd,
    ):
        cli.add_command(cmd)


_register()


def main() -> None:
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except click.ClickException as e:
        e.show()
        sys.exit(2)
    except click.exceptions.Abort:  # click's form of Ctrl-C
        err_console.print("interrupted; no partial output was written")
        sys.exit(130)
    except (InputError, GraphError) as e:
        err_console.print(f"[red]error:[/red] {escape(str(e))}", highlight=False)
        sys.exit(2)
    except KeyboardInterrupt:
        err_console.print("interrupted; no partial output was written")
        sys.exit(130)
