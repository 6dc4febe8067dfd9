"""Energy models: a registry (``MODELS``) of classes that each turn the engine's exact counts
into the energy of the ANN and of the SNN, term by term (``estimate``).

Built in: ops-only ``45nm-*`` (Horowitz 2014), memory-aware ``memory-45nm`` and
``memory-45nm-event`` (after Lemaire et al. 2022), and the ``loihi`` hardware preset
(Davies et al. 2018). docs/energy.md gives each one's equations, constants and sources."""

from __future__ import annotations

from dataclasses import asdict

from snnconv.report.record import Energy
from snnconv.simulate.energy import hardware, memory_aware, ops_only  # noqa: F401 (register)
from snnconv.simulate.energy.break_even import per_layer, rate
from snnconv.simulate.energy.model import (
    DEFAULT_MODEL,
    MODELS,
    Constant,
    EnergyModel,
    Term,
    neuron_rows,
    register,
    total,
    unregister,
)
from snnconv.simulate.energy.ops_only import PRESETS, EnergyPreset

DEFAULT_PRESET = DEFAULT_MODEL

__all__ = [
    "DEFAULT_MODEL",
    "DEFAULT_PRESET",
    "MODELS",
    "PRESETS",
    "Constant",
    "EnergyModel",
    "EnergyPreset",
    "Term",
    "estimate",
    "register",
    "unregister",
]


def estimate(model: EnergyModel | str, report):
    """The report's ``Energy`` under ``model``: totals, the hybrid split, every term, and the
    break-even firing rate in total and per layer."""
    model = MODELS[model] if isinstance(model, str) else model
    terms = model.terms(report)
    ann_j = total(terms, "ann")
    snn_j = total(terms, "snn")
    ann_part_j = sum(t.joules_per_image for t in terms if t.side == "snn" and t.ann_part)
    rows = neuron_rows(report)
    updates = sum(r.neuron_updates_per_image or 0.0 for r in rows)
    firing = sum(r.spikes_per_image or 0.0 for r in rows) / updates if updates else None
    snn_terms = [t for t in terms if t.side == "snn"]
    return Energy(
        preset=model.name,
        source=model.source,
        mac_joules=model.mac_joules,
        ac_joules=model.ac_joules,
        ann_joules_per_image=ann_j,
        snn_joules_per_image=snn_j,
        ratio=snn_j / ann_j if ann_j else float("nan"),
        snn_part_joules_per_image=snn_j - ann_part_j,
        ann_part_joules_per_image=ann_part_j,
        model=model.name,
        firing_rate=firing,
        break_even_firing_rate=rate(ann_j, snn_terms, firing),
        constants=[asdict(c) for c in model.constants],
        terms=[{**asdict(t), "joules_per_image": t.joules_per_image} for t in terms],
        layers=per_layer(report, terms),
    )
