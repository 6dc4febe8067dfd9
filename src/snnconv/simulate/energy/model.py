"""The energy-model registry, and what a model gives: terms that each name an operation,
its energy, its count per image and their product, so the arithmetic can be redone by hand.

A model reads the engine's exact counts through the report's per-layer records
(``snnconv.report.record.LayerRecord``) and returns ``Term``s for the ANN and for the SNN.
``estimate`` sums them into the report's ``Energy``, with the break-even firing rate
(``snnconv.simulate.energy.break_even``)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Term:
    """One line of the arithmetic: ``count_per_image`` operations of ``what`` in ``layer``,
    ``constant_joules`` each. ``spikes``: the count grows with the spikes (synaptic events,
    spike traffic), so it scales along the break-even line; ``ann_part``: the SNN's cost of a
    hybrid net's ANN part."""

    side: str  # "ann" or "snn"
    layer: str
    what: str
    constant_joules: float
    count_per_image: float
    spikes: bool = False
    ann_part: bool = False

    @property
    def joules_per_image(self) -> float:
        return self.constant_joules * self.count_per_image


@dataclass(frozen=True)
class Constant:
    """A named energy per operation and where the figure comes from."""

    what: str
    joules: float
    source: str


class EnergyModel:
    """A model: ``name`` (what ``--energy`` takes), a one-line ``summary``, its ``source``,
    its ``constants``, and ``terms(report)``. ``mac_joules`` and ``ac_joules`` are the
    energies of one MAC and one synaptic accumulate it charges (kept in the report)."""

    name: str
    summary: str
    source: str
    constants: tuple[Constant, ...]
    mac_joules: float
    ac_joules: float

    def terms(self, report) -> list[Term]:
        raise NotImplementedError


MODELS: dict[str, EnergyModel] = {}
DEFAULT_MODEL = "45nm-fp32"


def register(model: EnergyModel) -> EnergyModel:
    if model.name in MODELS:
        raise ValueError(f"energy model {model.name!r} is registered twice")
    MODELS[model.name] = model
    return model


def unregister(name: str) -> None:
    """Remove a model (for tests that register a toy one)."""
    MODELS.pop(name)


def total(terms: Iterable[Term], side: str) -> float:
    return sum(t.joules_per_image for t in terms if t.side == side)


def synaptic_rows(report) -> list:
    return [row for row in report.layers if row.ann_macs_per_image is not None]


def neuron_rows(report) -> list:
    return [row for row in report.layers if row.neurons is not None]


def computations(macs_per_image: float | None, row) -> float:
    """How often per image a layer was computed on analog values (once where its input is
    static, every step otherwise): its MACs over the MACs of one pass."""
    per_pass = row.ann_macs_per_image or 0.0
    return (macs_per_image or 0.0) / per_pass if per_pass else 0.0
