"""Simulation: the time-stepped engine, encoders, counters and the energy model."""

from snnconv.simulate.engine import Counts, Simulator
from snnconv.simulate.run import SimulationSettings, simulate

__all__ = ["Counts", "SimulationSettings", "Simulator", "simulate"]
