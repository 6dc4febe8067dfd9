"""The break-even line: the firing rate at which the SNN's energy would equal the ANN's.

Under a model, the SNN's energy is ``fixed + varying``, where ``varying`` is the terms that
grow with the spikes (synaptic events, spike traffic) and ``fixed`` the rest (neuron
updates, analog-input layers). Scaling every spike count by ``a`` scales ``varying`` by
``a``; the SNN breaks even at ``a* = (E_ANN - fixed) / varying``, i.e. at a firing rate of
``a*`` times the one measured. It is 0 where the fixed part alone already costs more than the
ANN (no firing rate saves energy), and None where nothing varies with the spikes.

Per synaptic layer fed spikes, the same with that layer's ANN energy, its own SNN terms and
the updates of the neurons it feeds, against the firing rate of its input."""

from __future__ import annotations

from snnconv.simulate.energy.model import Term


def rate(ann_joules: float, terms: list[Term], firing_rate: float | None) -> float | None:
    varying = sum(t.joules_per_image for t in terms if t.spikes)
    fixed = sum(t.joules_per_image for t in terms if not t.spikes)
    if not varying or firing_rate is None:
        return None
    return max(0.0, (ann_joules - fixed) / varying) * firing_rate


def per_layer(report, terms: list[Term]) -> list[dict]:
    """One entry per synaptic layer fed spikes: its ANN and SNN energy, its input's firing
    rate and the rate at which the two would be equal."""
    fed_by = {r.name: r.source for r in report.layers if r.neurons is not None}
    rows = []
    for row in report.layers:
        if row.input_firing_rate is None:
            continue
        mine = [
            t
            for t in terms
            if t.side == "snn"
            and (t.layer == row.name or (fed_by.get(t.layer) == row.name and not t.spikes))
        ]
        ann = sum(t.joules_per_image for t in terms if t.side == "ann" and t.layer == row.name)
        rows.append(
            {
                "name": row.name,
                "ann_joules_per_image": ann,
                "snn_joules_per_image": sum(t.joules_per_image for t in mine),
                "firing_rate": row.input_firing_rate,
                "break_even_firing_rate": rate(ann, mine, row.input_firing_rate),
            }
        )
    return rows
