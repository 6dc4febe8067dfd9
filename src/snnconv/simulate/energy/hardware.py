"""Named hardware presets: a chip's published energy per synaptic event, per neuron update
and per spike, applied to the SNN's exact counts.

``loihi``: Intel Loihi (14 nm), Davies et al., "Loihi: a neuromorphic manycore processor with
on-chip learning", IEEE Micro 2018 (the core's energy table): 23.6 pJ per synaptic spike
operation (the minimum), 81 pJ per active and 52 pJ per inactive neuron update (Loihi updates
every compartment every timestep), 1.7 pJ per spike within a tile. A spike that crosses tiles
costs more per tile hop (3.0 pJ east-west, 4.0 pJ north-south); the hops depend on placement,
so the spike figure is the lower end of that range. Static power is not in that table and is
left out. Layers fed analog values (the first under direct input) and a hybrid net's ANN part
cannot run as spikes on the chip: they are charged as the host would compute them, by the
``memory-45nm`` accounting; so is the ANN it is compared against. The comparison therefore sets
a 14 nm chip against a 45 nm estimate, which favours the chip.

No SpiNNaker2-class preset: no per-synaptic-event and per-neuron-update figures that could be
checked here were at hand, so none is given rather than a guess.
"""

from __future__ import annotations

from snnconv.simulate.energy.memory_aware import MemoryAware, analog_terms
from snnconv.simulate.energy.model import (
    Constant,
    EnergyModel,
    Term,
    neuron_rows,
    register,
    synaptic_rows,
)

DAVIES = "Davies et al., IEEE Micro 2018 (Loihi, 14 nm)"
SYNOP_J, ACTIVE_J, INACTIVE_J, SPIKE_J = 23.6e-12, 81e-12, 52e-12, 1.7e-12


class Loihi(EnergyModel):
    name = "loihi"
    summary = "Loihi: 23.6 pJ/synop, 81/52 pJ per active/inactive update, 1.7 pJ/spike"
    source = DAVIES + "; analog-input layers and the ANN by memory-45nm"
    mac_joules, ac_joules = MemoryAware.mac_joules, SYNOP_J
    constants = (
        Constant("synaptic spike operation (minimum)", SYNOP_J, DAVIES),
        Constant("neuron update, active", ACTIVE_J, DAVIES),
        Constant("neuron update, inactive", INACTIVE_J, DAVIES),
        Constant("spike within a tile (cross-tile: +3.0-4.0 pJ per hop)", SPIKE_J, DAVIES),
        *MemoryAware.constants,
    )

    def terms(self, report) -> list[Term]:
        out = []
        for row in synaptic_rows(report):
            out += analog_terms("ann", row, row.ann_macs_per_image)
            if row.synops_per_image:
                synops = row.synops_per_image
                out.append(Term("snn", row.name, "synaptic op", SYNOP_J, synops, spikes=True))
            if row.snn_macs_per_image:
                out += analog_terms("snn", row, row.snn_macs_per_image)
            if row.ann_part_macs_per_image:
                out += analog_terms("snn", row, row.ann_part_macs_per_image, ann_part=True)
        for row in neuron_rows(report):
            active = row.event_driven_updates_per_image
            if row.constant_current:  # a current arrives every step: every update is active
                active = row.neuron_updates_per_image
            inactive = row.neuron_updates_per_image - active
            out.append(Term("snn", row.name, "neuron update, active", ACTIVE_J, active))
            out.append(Term("snn", row.name, "neuron update, inactive", INACTIVE_J, inactive))
            out.append(Term("snn", row.name, "spike", SPIKE_J, row.spikes_per_image, True))
        return out


register(Loihi())
