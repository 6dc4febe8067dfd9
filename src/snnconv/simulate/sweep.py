"""The hybrid sweep: every ANN-SNN boundary position, from all-spiking to all-ANN."""

from __future__ import annotations

from collections.abc import Callable

from snnconv.convert.hybrid import cut_points, make_hybrid
from snnconv.data import Dataset
from snnconv.errors import InputError
from snnconv.graph import SYNAPTIC_OPS, Graph
from snnconv.simulate import distributed
from snnconv.simulate.run import SimulationSettings, simulate

ALL_SPIKING = "(all spiking)"


def hybrid_sweep(
    snn: Graph,
    ds: Dataset,
    settings: SimulationSettings,
    boundary: str = "rate",
    *,
    progress: Callable[[str, int, int], None] | None = None,
) -> dict:
    """Simulate ``snn`` made hybrid after each neuron layer (and not at all): accuracy,
    spikes, synops and energy per position, as the ``snnconv.sweep/1`` JSON.

    ``progress(position, done, total)`` follows each simulation (``total``: the images this
    process simulates, its shard under torchrun)."""
    if any(n.op == "hybrid_boundary" for n in snn):
        raise InputError("--sweep-hybrid needs a plain SNN, not one already made hybrid")
    neurons = {n.name for n in snn if n.op == "if_neuron"}
    cuts = [c for c in reversed(cut_points(snn)) if c in neurons or c == snn.input_name]
    total = distributed.local_images(len(ds.x))
    rows = []
    for cut in [None, *cuts]:
        graph = snn if cut is None else make_hybrid(snn, cut, boundary)
        label = cut or ALL_SPIKING
        advance = None
        if progress:
            done = 0

            def advance(n: int, label: str = label) -> None:
                nonlocal done
                done += n
                progress(label, done, total)

        r = simulate(graph, ds.x, ds.y, settings, data_name=ds.name, progress=advance)
        rows.append(
            {
                "after": label,
                "ann_layers": sum(n.op in SYNAPTIC_OPS for n in graph.nodes[_first_ann(graph) :]),
                "snn_accuracy": r.snn_accuracy,
                "spikes_per_image": r.spikes_per_image,
                "synops_per_image": r.synops_per_image,
                "snn_part_joules_per_image": r.energy.snn_part_joules_per_image,
                "ann_part_joules_per_image": r.energy.ann_part_joules_per_image,
                "snn_joules_per_image": r.energy.snn_joules_per_image,
                "ratio": r.energy.ratio,
            }
        )
    return {
        "schema": "snnconv.sweep/1",
        "timesteps": settings.timesteps,
        "boundary": boundary,
        "ann_accuracy": r.ann_accuracy,
        "rows": rows,
    }


def _first_ann(graph: Graph) -> int:
    """Index of the first node of a hybrid net's ANN part (len(nodes) when there is none)."""
    return next(
        (i for i, n in enumerate(graph.nodes) if n.op == "hybrid_boundary"), len(graph.nodes)
    )
