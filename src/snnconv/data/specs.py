"""Parsing of dataset specs (``SCHEME[:ARG][:SPLIT]``) and of ``--normalize`` text."""

from __future__ import annotations

import math
from dataclasses import dataclass

from snnconv.errors import InputError

from .schemes import SCHEMES

SPLITS = ("train", "test")
SPEC_HELP = (
    "valid specs: "
    + ", ".join(repr(s.form) for s in SCHEMES.values())
    + ", each optionally followed by ':train' or ':test'"
)


@dataclass(frozen=True)
class Spec:
    """A parsed dataset spec: the format, its argument (a path, or '' for digits), the split."""

    scheme: str
    arg: str
    split: str


def parse_spec(spec: str, split: str = "test") -> Spec:
    """Split ``spec`` into scheme, argument and split; a ``:train``/``:test`` suffix wins over
    ``split``."""
    if split not in SPLITS:
        raise InputError(f"unknown split {split!r}; use one of: {', '.join(SPLITS)}")
    scheme, _, arg = spec.partition(":")
    if scheme not in SCHEMES:
        raise InputError(
            f"unknown dataset scheme {scheme!r} in spec {spec!r}; valid schemes: "
            f"{', '.join(SCHEMES)} ({SPEC_HELP})"
        )
    if arg in SPLITS:
        arg, split = "", arg
    else:
        head, sep, tail = arg.rpartition(":")
        if sep and tail in SPLITS:
            arg, split = head, tail
    argument = SCHEMES[scheme].argument
    if arg and not argument:
        raise InputError(f"dataset spec {spec!r}: {scheme!r} takes no path ({SPEC_HELP})")
    if not arg and argument:
        raise InputError(f"dataset spec {spec!r} names no path; write {SCHEMES[scheme].form!r}")
    return Spec(scheme, arg, split)


def parse_normalize(text: str) -> tuple[float, float]:
    """Parse ``"MEAN,STD"`` (e.g. ``"0.5,0.25"``) into ``(mean, std)``; std must be > 0."""
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 2:
        raise InputError(
            f"normalize {text!r}: expected two numbers 'MEAN,STD', e.g. '0.1307,0.3081'"
        )
    try:
        mean, std = float(parts[0]), float(parts[1])
    except ValueError:
        raise InputError(
            f"normalize {text!r}: MEAN and STD must be numbers, e.g. '0.1307,0.3081'"
        ) from None
    check_normalize((mean, std))
    return mean, std


def check_normalize(normalize: tuple[float, float]) -> None:
    """Refuse a (mean, std) pair that would produce inf/NaN inputs."""
    mean, std = normalize
    if not (math.isfinite(mean) and math.isfinite(std)) or std <= 0:
        raise InputError(
            f"normalize (mean={mean}, std={std}): both must be finite and std must be > 0"
        )
