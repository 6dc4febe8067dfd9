"""Threshold methods: how each neuron layer's firing threshold is set, one class per method.

``max`` (Diehl 2015), ``percentile:P`` (Rueckauer 2017) and ``mse`` (Li 2021: the threshold
that minimises the error between an activation and its rate after T steps) are statistics of
the ANN's activations (``ObservedMethod``: the samples ``observe_thresholds`` collects);
``spikenorm`` (Sengupta 2019) needs the SNN itself and registers from ``spikenorm.py``.

Every method is one class registered under its name in ``METHODS``; ``parse_method`` reads a
``--threshold`` string through that registry. A method's ``fit`` calibrates once on the ANN
and returns a ``Placement``: what turns the ANN into an SNN for one neuron kind, so that
``--neuron auto`` calibrates once for every kind it tries.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, Protocol

import numpy as np

from snnconv.calibrate.observe import observe_thresholds
from snnconv.errors import InputError
from snnconv.graph import Graph

METHODS: dict[str, type[ThresholdMethod]] = {}


def register(cls: type[ThresholdMethod]) -> type[ThresholdMethod]:
    """Class decorator: make a threshold method available under ``cls.name``."""
    METHODS[cls.name] = cls
    return cls


@dataclass(frozen=True)
class CalibrationContext:
    """What a method may need besides the ANN and the images (from ``ConversionSettings``)."""

    per_channel: bool = False
    timesteps: int = 32
    v0: float = 0.5
    reset: str = "subtract"
    calibration_images: int = 512
    batch_size: int = 128
    seed: int = 0
    progress: Callable[[int], None] | None = None
    #: ``to_neurons(ann, thresholds, reset, v0, neuron)``: how the converter places neurons
    #: (``snnconv.convert.neurons.to_neurons``); handed in, since the converter calls this
    to_neurons: Callable[..., Graph] | None = None


class Placement(Protocol):
    def __call__(self, neuron: str) -> Graph:
        """The SNN with neurons of kind ``neuron`` (one of ``convert.neurons.NEURONS``)."""


@dataclass(frozen=True)
class ThresholdMethod:
    """A threshold method. Subclasses set ``name`` and register; ``parse`` reads the text
    after ``name:`` (none by default)."""

    name: ClassVar[str]
    usage: ClassVar[str] = ""  # how to write it, where it takes an argument
    #: the progress unit ``fit`` reports in: "images" observed, or "layers" set
    progress_unit: ClassVar[str] = "images"

    @classmethod
    def parse(cls, arg: str, text: str) -> ThresholdMethod:
        if arg:
            raise InputError(f"threshold method {cls.name!r} takes no argument (got {text!r})")
        return cls()

    def __str__(self) -> str:
        return self.name

    def fit(self, ann: Graph, x: np.ndarray, ctx: CalibrationContext) -> Placement:
        raise NotImplementedError


@dataclass(frozen=True)
class ObservedMethod(ThresholdMethod):
    """A method that picks each threshold from a sample of the ANN's activations."""

    def choose(self, values: np.ndarray, maximum: float, timesteps: int, v0: float) -> float:
        """One threshold from the positive ``values`` sampled (``maximum`` > 0 their max)."""
        raise NotImplementedError

    def fit(self, ann: Graph, x: np.ndarray, ctx: CalibrationContext) -> Placement:
        thresholds = observe_thresholds(
            ann,
            x,
            self,
            per_channel=ctx.per_channel,
            timesteps=ctx.timesteps,
            v0=ctx.v0,
            batch_size=ctx.batch_size,
            seed=ctx.seed,
            progress=ctx.progress,
        )
        return lambda neuron: ctx.to_neurons(ann, thresholds, ctx.reset, ctx.v0, neuron)


@register
@dataclass(frozen=True)
class MaxMethod(ObservedMethod):
    name: ClassVar[str] = "max"

    def choose(self, values, maximum, timesteps, v0) -> float:
        return float(maximum)


@register
@dataclass(frozen=True)
class PercentileMethod(ObservedMethod):
    name: ClassVar[str] = "percentile"
    usage: ClassVar[str] = "percentile:P (e.g. percentile:99.99)"
    percentile: float = 99.99

    @classmethod
    def parse(cls, arg: str, text: str) -> ThresholdMethod:
        if not arg:
            return cls()
        try:
            p = float(arg)
        except ValueError:
            p = -1.0
        if not 0 < p <= 100:
            raise InputError(f"percentile must be a number in (0, 100], got {arg!r} in {text!r}")
        return cls(p)

    def __str__(self) -> str:
        return f"percentile:{self.percentile:g}"

    def choose(self, values, maximum, timesteps, v0) -> float:
        return float(np.percentile(values, self.percentile))


@register
@dataclass(frozen=True)
class MseMethod(ObservedMethod):
    name: ClassVar[str] = "mse"

    def choose(self, values, maximum, timesteps, v0) -> float:
        return mse_threshold(values, float(maximum), timesteps, v0)


def parse_method(text: str) -> ThresholdMethod:
    """Parse a ``--threshold`` value: a registered name, with ``:ARG`` where it takes one
    (``max``, ``mse``, ``spikenorm``, ``percentile`` or ``percentile:P``, 0 < P <= 100)."""
    name, _, arg = text.partition(":")
    if name not in METHODS:
        *first, last = [m.usage or m.name for m in METHODS.values()]
        raise InputError(f"unknown threshold method {text!r}: use {', '.join(first)} or {last}")
    return METHODS[name].parse(arg, text)


def rate_quantise(a: np.ndarray, threshold: float, timesteps: int, v0: float) -> np.ndarray:
    """What an IF neuron (reset by subtraction) driven by a constant ``a`` emits in T steps,
    as an activation: ``threshold * spikes / T``."""
    spikes = np.clip(np.floor(a * timesteps / threshold + v0), 0, timesteps)
    return spikes * (threshold / timesteps)


def mse_threshold(values: np.ndarray, maximum: float, timesteps: int, v0: float) -> float:
    """The threshold in (0, max] minimising the T-step rate-quantisation error on ``values``
    (``rate_quantise``)."""
    if values.size == 0 or maximum <= 0:
        return float(maximum) if maximum > 0 else 1.0
    candidates = maximum * np.linspace(0.05, 1.0, 96)
    return float(candidates[int(np.argmin(quantisation_errors(values, candidates, timesteps, v0)))])


def quantisation_errors(
    values: np.ndarray, thresholds: np.ndarray, timesteps: int, v0: float
) -> np.ndarray:
    """Mean squared ``rate_quantise`` error of ``values`` for each threshold, from one sort:
    level k >= 1 holds the values from (k - v0) * threshold / T up (T: all above), so each
    threshold's error is a sum over T + 1 runs of the sorted values, read off prefix sums of
    a and a**2 (float64)."""
    a = np.sort(values.astype(np.float64))
    s1 = np.concatenate([[0.0], np.cumsum(a)])
    s2 = np.concatenate([[0.0], np.cumsum(a * a)])
    th = np.asarray(thresholds, np.float64)[:, None]
    k = np.arange(1, timesteps + 1, dtype=np.float64)
    # runs[:, j]: where level j starts (j = 0..T), then the end
    starts = np.searchsorted(a, ((k - v0) * th / timesteps).ravel()).reshape(len(th), -1)
    runs = np.concatenate(
        [np.zeros((len(th), 1), np.int64), starts, np.full_like(th, len(a), np.int64)], 1
    )
    lo, hi = runs[:, :-1], runs[:, 1:]
    q = np.arange(timesteps + 1) * th / timesteps  # each level's value
    n = hi - lo
    total = (s2[hi] - s2[lo]) - 2 * q * (s1[hi] - s1[lo]) + n * q * q
    return total.sum(1) / len(a)
