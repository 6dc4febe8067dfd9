"""Where the verbs print and write: the consoles, JSON files, checks before any work starts."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from rich.console import Console

from snnconv.atomic import check_writable, write_atomic

if TYPE_CHECKING:
    from snnconv.finetune.epochs import History

# Reports are tables: when piped or captured, give them room rather than 80 columns.
console = Console() if Console().is_terminal else Console(width=120)
err_console = Console(stderr=True)


def write_json(path: str, payload: dict, force: bool) -> None:
    write_atomic(path, (json.dumps(payload, indent=2) + "\n").encode(), force=force)
    err_console.print(f"wrote {path}")


def check_outputs(*paths: str | None, force: bool) -> None:
    """Refuse existing outputs before any work starts, so nothing is computed in vain."""
    for p in paths:
        if p:
            check_writable(p, force=force)


def warn(text: str) -> None:
    err_console.print(f"[yellow]warning:[/yellow] {text}", highlight=False)


def print_history(history: History, accuracy_of: str, classes: int) -> None:
    """One line per training epoch; ``accuracy_of`` says what the accuracy was measured on. A
    last epoch near chance (1 / ``classes``) is flagged: the run diverged, and the file it
    wrote is not worth converting."""
    for i, (loss, acc, s) in enumerate(
        zip(history.loss, history.accuracy, history.seconds, strict=True), 1
    ):
        console.print(
            f"epoch {i}: loss {loss:.4f}, training accuracy ({accuracy_of}) {100 * acc:.2f} %, "
            f"{s:.1f} s CPU"
        )
    if classes > 1 and history.accuracy and history.accuracy[-1] < 2 / classes:
        err_console.print(
            f"warning: the last epoch's training accuracy, {100 * history.accuracy[-1]:.2f} %, "
            f"is near chance ({100 / classes:.1f} %): training diverged; run again with a "
            "lower --lr"
        )
