"""Ops-only models (45 nm CMOS, Horowitz ISSCC 2014): MACs x E_MAC for the ANN; synaptic
operations x E_AC plus the MACs of analog-input layers (and of a hybrid net's ANN part) x
E_MAC for the SNN. Memory traffic and neuron updates are left out, which flatters the SNN."""

from __future__ import annotations

from dataclasses import dataclass

from snnconv.simulate.energy.model import Constant, EnergyModel, Term, register, synaptic_rows

HOROWITZ = "Horowitz, 'Computing's energy problem', ISSCC 2014 (45 nm CMOS)"


@dataclass(frozen=True)
class EnergyPreset:
    """Energy per operation of one technology, with the source of its numbers."""

    name: str
    mac_joules: float  # one multiply-accumulate
    ac_joules: float  # one accumulate (a spike delivered to one synapse)
    source: str = HOROWITZ


class OpsOnly(EnergyModel):
    def __init__(self, preset: EnergyPreset):
        self.preset = preset
        self.name, self.source = preset.name, preset.source
        self.mac_joules, self.ac_joules = preset.mac_joules, preset.ac_joules
        self.summary = (
            f"operations only, MAC {preset.mac_joules * 1e12:g} pJ, "
            f"AC {preset.ac_joules * 1e12:g} pJ"
        )
        self.constants = (
            Constant("MAC", preset.mac_joules, preset.source),
            Constant("AC", preset.ac_joules, preset.source),
        )

    def terms(self, report) -> list[Term]:
        mac, ac = self.mac_joules, self.ac_joules
        out = []
        for row in synaptic_rows(report):
            out.append(Term("ann", row.name, "MAC", mac, row.ann_macs_per_image))
            if row.synops_per_image:
                out.append(Term("snn", row.name, "AC", ac, row.synops_per_image, spikes=True))
            if row.snn_macs_per_image:
                out.append(Term("snn", row.name, "MAC", mac, row.snn_macs_per_image))
            if row.ann_part_macs_per_image:
                out.append(
                    Term("snn", row.name, "MAC", mac, row.ann_part_macs_per_image, ann_part=True)
                )
        return out


# Horowitz's figures: fp32 mult 3.7 + add 0.9; int32 3.1 + 0.1; fp16 1.1 + 0.4; int8 0.2 + 0.03
PRESETS = {
    p.name: p
    for p in (
        EnergyPreset("45nm-fp32", 4.6e-12, 0.9e-12),
        EnergyPreset("45nm-int32", 3.2e-12, 0.1e-12),
        EnergyPreset("45nm-fp16", 1.5e-12, 0.4e-12),
        EnergyPreset("45nm-int8", 0.23e-12, 0.03e-12),
    )
}
for _preset in PRESETS.values():
    register(OpsOnly(_preset))
