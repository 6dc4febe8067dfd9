"""The report's per-layer rows from a run's counts: spikes and firing rates of the neuron
layers; synops, MACs and the traffic the energy models need of the synaptic layers."""

from __future__ import annotations

import numpy as np

from snnconv import ops
from snnconv.report.record import LayerRecord
from snnconv.simulate.counts import Counts


def _sum(table: dict, name: str) -> float | None:
    return float(table[name].sum()) if name in table else None


def synaptic_record(sim, node, total: Counts, ann_macs: float, steps_run: float) -> LayerRecord:
    n = total.images
    weight = np.asarray(node.params["weight"])
    bias = np.asarray(node.params.get("bias", np.zeros(0)))
    input_size = int(np.prod(sim.shapes[node.inputs[0]]))
    synops = float(total.synops.get(node.name, np.zeros(1)).sum()) / n
    snn_macs = total.snn_macs.get(node.name, 0.0) / n
    ann_part_macs = total.ann_part_macs.get(node.name, 0.0) / n
    events = _sum(total.input_events, node.name)
    events = None if events is None else events / n
    effective = total.effective_macs.get(node.name)
    return LayerRecord(
        node.name,
        node.op,
        synops_per_image=synops,
        ann_macs_per_image=float(ann_macs),
        snn_macs_per_image=snn_macs,
        ann_part_macs_per_image=ann_part_macs,
        input_size=input_size,
        outputs=int(np.prod(sim.shapes[node.name])),
        synapses=int(sim.fanouts[node.name].sum().item()) * sim.shapes[node.inputs[0]][0],
        weights=int(weight.size),
        zero_weights=int((weight == 0).sum()),
        biases=int(bias.size) if np.any(bias != 0) else 0,
        input_events_per_image=events,
        input_firing_rate=None if events is None else events / (input_size * steps_run),
        weight_reads_per_image=synops + snn_macs + ann_part_macs,
        effective_macs_per_image=None if effective is None else effective / n,
    )


def neuron_record(sim, node, total: Counts, steps_run: float, by_name: dict) -> LayerRecord:
    n = total.images
    neurons = int(np.prod(sim.shapes[node.name]))
    spikes = float(total.spikes[node.name].sum()) / n
    dense = neurons * steps_run
    source = by_name.get(node.inputs[0])
    reached = _sum(total.reached, source.name) if source is not None else None
    own_bias = np.any(np.asarray(node.params.get("bias", 0.0)) != 0)
    # a current every step: the synaptic layer's bias or its analog input; unknown through
    # wiring ops (adds, pooling), so counted as such
    constant = (
        source is None
        or bool(own_bias)
        or bool(source.biases)
        or bool(source.snn_macs_per_image)
        or source.input_events_per_image is None
    )
    return LayerRecord(
        node.name,
        node.op,
        neurons,
        spikes,
        spikes / (neurons * steps_run),
        source=node.inputs[0],
        neuron_updates_per_image=dense,
        event_driven_updates_per_image=dense if reached is None else reached / n,
        membrane_updates_per_image=_sum(total.membrane_updates, node.name) / n,
        constant_current=constant,
    )


def layer_records(sim, total: Counts, steps_run: float) -> list[LayerRecord]:
    """One row per neuron or synaptic layer of the graph as run (BackRes passes are their
    own rows, ``name#r``), in graph order."""
    ann_macs = ops.macs(sim.graph, sim.shapes)
    rows, synaptic = [], {}
    for node in sim.graph:
        if node.op == "if_neuron":
            rows.append(neuron_record(sim, node, total, steps_run, synaptic))
        elif node.name in ann_macs:
            synaptic[node.name] = synaptic_record(sim, node, total, ann_macs[node.name], steps_run)
            rows.append(synaptic[node.name])
    return rows
