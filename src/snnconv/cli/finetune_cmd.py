"""snnconv finetune: surrogate-gradient training of a converted SNN file."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from snnconv.cli.common import check_outputs, console, err_console, load_data
from snnconv.cli.simulate_cmd import load_snn
from snnconv.data import parse_normalize
from snnconv.finetune import FinetuneSettings, finetune, parse_loss
from snnconv.save import save_onnx


@contextlib.contextmanager
def training_progress(epochs: int, images: int) -> Iterator[Callable[[int, float, float], None]]:
    """A bar per epoch on stderr showing the running loss and accuracy of the epoch."""
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]:.4f}  acc {task.fields[acc]:.2%}"),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
    ) as progress:
        epoch, task, seen, loss_sum, correct = 0, None, 0, 0.0, 0.0

        def advance(n: int, loss: float, accuracy: float) -> None:
            nonlocal epoch, task, seen, loss_sum, correct
            if task is None or seen >= images:
                epoch += 1
                seen, loss_sum, correct = 0, 0.0, 0.0
                task = progress.add_task(
                    f"epoch {epoch}/{epochs}", total=images, loss=float("nan"), acc=0.0
                )
            seen += n
            loss_sum += loss * n
            correct += accuracy * n
            progress.update(task, advance=n, loss=loss_sum / seen, acc=correct / seen)

        yield advance


@click.command("finetune")
@click.argument("model", type=click.Path(dir_okay=False))
@click.option(
    "--data",
    "data_spec",
    required=True,
    metavar="SPEC",
    help="Training data: digits | npz:PATH | mnist:DIR | cifar10:DIR (default split: train).",
)
@click.option("--limit", type=click.IntRange(min=1), help="Train on the first N images.")
@click.option("--normalize", metavar="MEAN,STD", help="Default: as recorded at conversion.")
@click.option("--epochs", default=1, show_default=True, type=click.IntRange(min=1))
@click.option(
    "--timesteps",
    "-T",
    default=4,
    show_default=True,
    type=click.IntRange(min=1),
    help="T to unroll and train at (the latency you want).",
)
@click.option(
    "--loss",
    default="ce",
    show_default=True,
    help="ce (cross-entropy) or stochmax[:RHO] (non-target classes kept with probability "
    "RHO, default 0.5).",
)
@click.option("--lr", default=FinetuneSettings.lr, show_default=True, type=float)
@click.option("--batch-size", default=64, show_default=True, type=click.IntRange(min=1))
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda or cuda:N.")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("-o", "--output", required=True, help="Output .snn.onnx.")
@click.option("--force", is_flag=True, help="Overwrite an existing output.")
def finetune_cmd(model, data_spec, limit, normalize, output, force, loss, **kw):
    """Fine-tune a converted SNN (weights, biases, thresholds) by backpropagation through
    time with a surrogate spike gradient, to reach its accuracy in fewer timesteps.

    \b
    Example:
      snnconv finetune model.snn.onnx --data mnist:/data/fashion-mnist --limit 5000 \\
          --epochs 1 -T 4 --loss stochmax:0.5 -o model.ft.snn.onnx
    """
    check_outputs(output, force=force)
    settings = FinetuneSettings(loss=parse_loss(loss), **kw)
    settings.check()
    snn = load_snn(model)
    norm = normalize or snn.metadata.get("snnconv.normalize")
    ds = load_data(
        data_spec,
        split="train",
        normalize=parse_normalize(norm) if norm else None,
        limit=limit,
    )
    with training_progress(settings.epochs, len(ds.x)) as advance:
        trained, history = finetune(snn, ds.x, ds.y, settings, progress=advance)
    if normalize:
        trained.metadata["snnconv.normalize"] = normalize
    save_onnx(trained, output, force=force)
    err_console.print(f"wrote {output}")
    for i, (lo, acc) in enumerate(zip(history.loss, history.accuracy, strict=True), 1):
        console.print(
            f"epoch {i}: loss {lo:.4f}, training accuracy at T = {settings.timesteps}: "
            f"{100 * acc:.2f} %"
        )
