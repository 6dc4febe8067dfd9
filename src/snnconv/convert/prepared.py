"""How a prepared ANN (``snnconv prepare``: QCFS layers) converts unless told otherwise."""

from __future__ import annotations

from typing import Any

from snnconv.calibrate.prepared import prepared_levels
from snnconv.graph import Graph

#: λ as the thresholds, binary IF neurons (what QCFS prepares for), and the layer-wise steps
#: on top (docs/latency.md, "Preparing the ANN": they add points at T <= L).
PREPARED = {"threshold": "qcfs", "neuron": "if", "calibrate": "search+bias"}


def prepared_defaults(graph: Graph) -> dict[str, Any]:
    """``ConversionSettings`` fields for a prepared ANN, target T = L included; {} for a
    model that was not prepared. ``ConversionSettings(**prepared_defaults(graph))``."""
    levels = prepared_levels(graph)
    return {} if levels is None else {**PREPARED, "target_timesteps": levels}
