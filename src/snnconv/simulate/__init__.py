"""Simulation: the time-stepped engine, encoders, counters and the energy model.

The names below load on first use, so that the op specs can import the engine's value type
(``snnconv.simulate.values``) without importing the engine, which imports them."""

from __future__ import annotations

import importlib

_NAMES = {
    "Counts": "snnconv.simulate.counts",
    "Simulator": "snnconv.simulate.engine",
    "SimulationSettings": "snnconv.simulate.run",
    "simulate": "snnconv.simulate.run",
}

__all__ = ["Counts", "SimulationSettings", "Simulator", "simulate"]


def __getattr__(name: str):
    if name not in _NAMES:
        raise AttributeError(f"module 'snnconv.simulate' has no attribute {name!r}")
    return getattr(importlib.import_module(_NAMES[name]), name)
