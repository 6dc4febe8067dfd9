"""Memory-aware models after Lemaire et al. (ICONIP 2022, "An analytical estimation of
spiking neural networks energy efficiency"): besides the arithmetic, every memory access of
the ANN and the SNN is charged: weight reads, input reads, membrane reads and writes, bias
reads, spike traffic.

The accounting, per image (docs/energy.md has it with each count's origin):

* ANN, per synaptic layer (output-stationary: a partial sum stays in a register): per MAC a
  MAC, a weight read and an input read; per output a bias read (where there is a bias) and
  an output write.
* SNN, per synaptic layer fed spikes (event-driven scatter: each event reaches its targets'
  membranes in memory): per received spike event a spike read; per synaptic operation an
  accumulate, a weight read, a membrane read and a membrane write. Layers fed analog values
  (the first one under direct input) and a hybrid net's ANN part are charged as the ANN is,
  once per time they are computed.
* SNN, per neuron update: a membrane read, a threshold compare (an accumulate) and a
  membrane write; where the neuron receives a current every step (a bias, or a constant
  analog input) also its read and its addition; per emitted spike a spike write.

``memory-45nm`` updates every neuron at every step (a time-stepped chip);
``memory-45nm-event`` only those that at least one spike event reaches that step (an
event-driven chip). The latter is a lower bound where neurons have a bias: it treats the
bias as added lazily at the next update, and so misses a spike the bias alone would cause
between events.

Constants: 45 nm CMOS, Horowitz (ISSCC 2014): a 32-bit float MAC 4.6 pJ (multiply 3.7 +
add 0.9), a 32-bit float add 0.9 pJ, and one access of an 8 KB SRAM (64-bit word) 10 pJ,
charged for every read or write of a 32-bit value (weights, membranes, activations, biases,
spike events alike). Larger memories cost more (32 KB: 20 pJ, 1 MB: 100 pJ, DRAM 1.3-2.6 nJ
per 64 bits in the same source), so with all weights in one small SRAM this is a lower bound.
"""

from __future__ import annotations

from snnconv.simulate.energy.model import (
    Constant,
    EnergyModel,
    Term,
    computations,
    neuron_rows,
    register,
    synaptic_rows,
)
from snnconv.simulate.energy.ops_only import HOROWITZ

MAC_J, AC_J, SRAM_J = 4.6e-12, 0.9e-12, 10e-12


def analog_terms(side: str, row, macs: float, ann_part: bool = False) -> list[Term]:
    """A layer computed on analog values, ``macs`` MACs per image: the ANN's accounting."""
    c = computations(macs, row)
    terms = [
        Term(side, row.name, "MAC", MAC_J, macs, ann_part=ann_part),
        Term(side, row.name, "weight read", SRAM_J, macs, ann_part=ann_part),
        Term(side, row.name, "input read", SRAM_J, macs, ann_part=ann_part),
        Term(side, row.name, "output write", SRAM_J, row.outputs * c, ann_part=ann_part),
    ]
    if row.biases:
        terms.append(Term(side, row.name, "bias read", SRAM_J, row.outputs * c, ann_part=ann_part))
    return terms


def spiking_terms(row) -> list[Term]:
    s = row.synops_per_image or 0.0
    return [
        Term("snn", row.name, "spike read", SRAM_J, row.input_events_per_image or 0.0, True),
        Term("snn", row.name, "AC", AC_J, s, True),
        Term("snn", row.name, "weight read", SRAM_J, s, True),
        Term("snn", row.name, "membrane read", SRAM_J, s, True),
        Term("snn", row.name, "membrane write", SRAM_J, s, True),
    ]


def update_terms(row, updates: float) -> list[Term]:
    terms = [
        Term("snn", row.name, "membrane read (update)", SRAM_J, updates),
        Term("snn", row.name, "threshold compare", AC_J, updates),
        Term("snn", row.name, "membrane write (update)", SRAM_J, updates),
    ]
    if row.constant_current:
        terms += [
            Term("snn", row.name, "current read", SRAM_J, updates),
            Term("snn", row.name, "current add", AC_J, updates),
        ]
    terms.append(Term("snn", row.name, "spike write", SRAM_J, row.spikes_per_image, True))
    return terms


class MemoryAware(EnergyModel):
    mac_joules, ac_joules = MAC_J, AC_J
    source = (
        "accounting after Lemaire et al., ICONIP 2022; constants: " + HOROWITZ + ", "
        "8 KB SRAM access per 32-bit value"
    )
    constants = (
        Constant("MAC (32-bit float)", MAC_J, HOROWITZ),
        Constant("AC (32-bit float add)", AC_J, HOROWITZ),
        Constant("SRAM access (8 KB, 64-bit word)", SRAM_J, HOROWITZ),
    )

    def __init__(self, name: str, event_driven: bool):
        self.name, self.event_driven = name, event_driven
        updates = "neurons reached by a spike event" if event_driven else "every neuron"
        self.summary = f"memory-aware (weights, membranes, spikes, biases); updates {updates}"

    def terms(self, report) -> list[Term]:
        out = []
        for row in synaptic_rows(report):
            out += analog_terms("ann", row, row.ann_macs_per_image)
            if row.input_events_per_image is not None:
                out += spiking_terms(row)
            if row.snn_macs_per_image:
                out += analog_terms("snn", row, row.snn_macs_per_image)
            if row.ann_part_macs_per_image:
                out += analog_terms("snn", row, row.ann_part_macs_per_image, ann_part=True)
        for row in neuron_rows(report):
            event = row.event_driven_updates_per_image
            dense = row.neuron_updates_per_image
            out += update_terms(row, event if self.event_driven else dense)
        return out


register(MemoryAware("memory-45nm", event_driven=False))
register(MemoryAware("memory-45nm-event", event_driven=True))
