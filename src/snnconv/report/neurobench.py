"""NeuroBench's metrics by their names and definitions (Yik et al., "The neurobench framework
for benchmarking neuromorphic computing algorithms and systems", Nature Communications
2025), from a report's exact counts, so figures compare with NeuroBench's published ones.

* ``activation_sparsity``: zero activations over all activations of the spiking layers,
  over every timestep: 1 - spikes / (neurons x steps).
* ``synaptic_operations`` per image: ``dense``, every synapse of every layer at every step
  (the MACs less those on padding; a hybrid net's ANN part once); ``effective_macs``, the
  MACs of layers fed non-binary values whose input and weight are both non-zero, at every
  step they are evaluated (a layer on the static input image counts at each step, as
  NeuroBench's per-step hooks see it);
  ``effective_acs``, the synaptic operations of spikes (events x fan-out; NeuroBench leaves
  out zero weights too, so the two agree where ``connection_sparsity`` is 0).
* ``membrane_updates`` per image: every membrane at the first step, then each one that
  changes (a non-zero current or a spike).
* ``footprint_bytes``: the bytes of every parameter (weights, biases, thresholds).
* ``connection_sparsity``: zero weights over all weights of the conv and linear layers.
"""

from __future__ import annotations

import numpy as np

from snnconv.graph import Graph
from snnconv.report.record import Report


def steps_run(r: Report) -> float:
    return float(r.timesteps if r.early_exit is None else r.early_exit.mean_steps)


def metrics(r: Report, graph: Graph) -> dict:
    T = steps_run(r)
    neurons = [row for row in r.layers if row.neurons is not None]
    synaptic = [row for row in r.layers if row.ann_macs_per_image is not None]
    activations = sum(row.neurons for row in neurons) * T
    spikes = sum(row.spikes_per_image for row in neurons)
    dense = effective_macs = 0.0
    for row in synaptic:
        part = row.ann_part_macs_per_image or 0.0
        dense += row.synapses * T if not part else part
        if row.effective_macs_per_image is not None and row.snn_macs_per_image:
            evaluations = row.snn_macs_per_image / row.ann_macs_per_image
            effective_macs += row.effective_macs_per_image * T / evaluations
        effective_macs += part
    weights = sum(row.weights for row in synaptic)
    zeros = sum(row.zero_weights for row in synaptic)
    footprint = sum(
        np.asarray(p).size * np.asarray(p).dtype.itemsize for n in graph for p in n.params.values()
    )
    return {
        "activation_sparsity": 1.0 - spikes / activations if activations else 0.0,
        "synaptic_operations": {
            "dense": dense,
            "effective_macs": effective_macs,
            "effective_acs": sum(row.synops_per_image or 0.0 for row in synaptic),
        },
        "membrane_updates": sum(row.membrane_updates_per_image for row in neurons),
        "footprint_bytes": int(footprint),
        "connection_sparsity": zeros / weights if weights else 0.0,
    }
