"""The dataset formats a spec can name: one entry per scheme, with its loader.

Adding a format is adding an entry here; parsing, ``--help`` and loading all read this table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .cifar10 import load_cifar10
from .digits import load_digits
from .mnist import load_mnist
from .npz import load_npz

Loader = Callable[[str, str], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class Scheme:
    """A spec's format: its ``name``, what follows ``name:`` (``argument``: '' for nothing,
    'PATH' or 'DIR'), and ``load(argument, split)`` returning images and labels."""

    name: str
    argument: str
    load: Loader

    @property
    def form(self) -> str:
        """How a spec of this scheme is written, e.g. ``mnist:DIR``."""
        return f"{self.name}:{self.argument}" if self.argument else self.name


SCHEMES: dict[str, Scheme] = {
    s.name: s
    for s in (
        Scheme("digits", "", lambda _argument, split: load_digits(split)),
        Scheme("npz", "PATH", lambda argument, _split: load_npz(argument)),
        Scheme("mnist", "DIR", load_mnist),
        Scheme("cifar10", "DIR", load_cifar10),
    )
}

FORMS = " | ".join(s.form for s in SCHEMES.values())
