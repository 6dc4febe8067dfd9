"""Deployment targets: what the converted SNN must run on, as constraints on its settings.

``snnconv`` (the default) is snnconv's own simulator: every neuron kind and setting. ``nir``
makes an SNN that NIR (nir >= 1.0.6) expresses exactly as its spec defines its nodes: binary
IF neurons, 2x2 max pools built from relus (``--maxpool relu``; other pools averaged), biases
inside the conv/linear layers. Reset by subtraction (the default) exports as NIR's Integrator
-> Threshold loop, its initial membrane (``--v0``, a calibrated potential) as a lower firing
level; reset to zero as NIR's IF, which starts at rest (``--v0 0``).
Calibration (mse thresholds at the target T, threshold search, bias currents) runs after the
constraints, so it fits the SNN that NIR will run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from snnconv.errors import InputError

if TYPE_CHECKING:
    from snnconv.convert.convert import ConversionSettings


@dataclass(frozen=True)
class Target:
    name: str
    description: str
    constrain: Callable[[ConversionSettings], ConversionSettings]


def _any(settings: ConversionSettings) -> ConversionSettings:
    return settings


def _nir(settings: ConversionSettings) -> ConversionSettings:
    """Force what NIR expresses; refuse what the user asked for explicitly that it cannot."""
    if settings.neuron == "signed":
        raise InputError("--target nir needs binary spikes: drop --neuron signed")
    if settings.hybrid_after is not None or settings.ann_layers is not None:
        raise InputError("--target nir: a hybrid net's ANN part is not expressible in NIR")
    # relu max pools: on the Fashion-MNIST VGG-style net at T = 16, 86.4 % against 65.6 % with
    # average pools (bench/nir_target.py, reset to zero, v0 = 0). Reset by subtraction keeps
    # v0 and the calibration (the export writes them exactly); NIR's IF starts at rest.
    if settings.reset == "subtract":
        return replace(settings, neuron="if", maxpool="relu")
    if "potential" in settings.calibrate.split("+"):
        raise InputError(
            "--target nir --reset zero: NIR's IF starts at rest, so --calibrate cannot include "
            "potential (use search+bias, or --reset subtract)"
        )
    return replace(settings, neuron="if", maxpool="relu", v0=0.0)


TARGETS: dict[str, Target] = {
    t.name: t
    for t in (
        Target("snnconv", "snnconv's simulator: any neuron kind and setting", _any),
        Target("nir", "exactly what NIR expresses: binary IF, relu max pools", _nir),
    )
}


def apply_target(settings: ConversionSettings) -> ConversionSettings:
    """The settings under their target's constraints."""
    target = TARGETS.get(settings.target)
    if target is None:
        raise InputError(f"--target must be one of {', '.join(TARGETS)}, got {settings.target!r}")
    return target.constrain(settings)
