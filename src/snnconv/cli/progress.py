"""Progress bars on stderr (hidden when stderr is not a terminal)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from snnconv.cli.output import err_console


@contextlib.contextmanager
def progress_bar(description: str, total: int) -> Iterator[Callable[[int], None]]:
    """A rich progress bar; yields ``advance(n_images)``."""
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
def stage_progress(verb: str = "calibrating") -> Iterator[Callable[[str, int, int], None]]:
    """One bar per named stage, titled "VERB STAGE"; yields ``report(stage, done, total)``."""
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
                tasks[stage] = progress.add_task(f"{verb} {stage}", total=total)
            progress.update(tasks[stage], completed=done)

        yield report


@contextlib.contextmanager
def training_progress(epochs: int, images: int) -> Iterator[Callable[[int, float, float], None]]:
    """A bar per epoch showing the running loss and accuracy of the epoch."""
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
