"""Threshold methods: from a layer's activation sample to its firing threshold(s).

``max`` (Diehl 2015), ``percentile:P`` (Rueckauer 2017) and ``mse`` (Li 2021: the threshold
that minimises the error between an activation and its rate after T steps) come from the
ANN's activations; ``spikenorm`` (Sengupta 2019) needs the SNN itself and lives in
``spikenorm.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from snnconv.errors import InputError

METHODS = ("max", "percentile", "mse", "spikenorm")


@dataclass(frozen=True)
class ThresholdMethod:
    name: str
    percentile: float = 99.99

    def __str__(self) -> str:
        return f"percentile:{self.percentile:g}" if self.name == "percentile" else self.name


def parse_method(text: str) -> ThresholdMethod:
    """Parse ``max``, ``mse``, ``spikenorm``, ``percentile`` or ``percentile:P`` (0 < P <= 100)."""
    name, _, arg = text.partition(":")
    if name not in METHODS:
        raise InputError(
            f"unknown threshold method {text!r}: "
            "use max, percentile:P (e.g. percentile:99.99), mse or spikenorm"
        )
    if name != "percentile":
        if arg:
            raise InputError(f"threshold method {name!r} takes no argument (got {text!r})")
        return ThresholdMethod(name)
    if not arg:
        return ThresholdMethod(name)
    try:
        p = float(arg)
    except ValueError:
        p = -1.0
    if not 0 < p <= 100:
        raise InputError(f"percentile must be a number in (0, 100], got {arg!r} in {text!r}")
    return ThresholdMethod(name, p)


def rate_quantise(a: np.ndarray, threshold: float, timesteps: int, v0: float) -> np.ndarray:
    """What an IF neuron (reset by subtraction) driven by a constant ``a`` emits in T steps,
    as an activation: ``threshold * spikes / T``."""
    spikes = np.clip(np.floor(a * timesteps / threshold + v0), 0, timesteps)
    return spikes * (threshold / timesteps)


def mse_threshold(values: np.ndarray, maximum: float, timesteps: int, v0: float) -> float:
    """The threshold in (0, max] minimising the T-step rate-quantisation error on ``values``."""
    if values.size == 0 or maximum <= 0:
        return float(maximum) if maximum > 0 else 1.0
    candidates = maximum * np.linspace(0.05, 1.0, 96)
    errors = [np.mean((values - rate_quantise(values, c, timesteps, v0)) ** 2) for c in candidates]
    return float(candidates[int(np.argmin(errors))])


def choose_threshold(
    values: np.ndarray, maximum: float, method: ThresholdMethod, timesteps: int, v0: float
) -> float:
    """One threshold from one sample; a layer that never fired gets the threshold 1."""
    if maximum <= 0 or values.size == 0:
        return 1.0
    if method.name == "max":
        return float(maximum)
    if method.name == "percentile":
        return float(np.percentile(values, method.percentile))
    if method.name == "spikenorm":
        raise ValueError("spikenorm thresholds come from the SNN: use calibrate.spikenorm")
    return mse_threshold(values, float(maximum), timesteps, v0)
