"""Energy presets (45 nm CMOS, Horowitz ISSCC 2014) and the energy of a counted run."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EnergyPreset:
    """Energy per operation of one technology, with the source of its numbers."""

    name: str
    mac_joules: float  # one multiply-accumulate
    ac_joules: float  # one accumulate (a spike delivered to one synapse)
    source: str = "Horowitz, 'Computing's energy problem', ISSCC 2014 (45 nm CMOS)"


PRESETS = {
    p.name: p
    for p in (
        EnergyPreset("45nm-fp32", 4.6e-12, 0.9e-12),
        EnergyPreset("45nm-int32", 3.2e-12, 0.1e-12),
        EnergyPreset("45nm-fp16", 1.5e-12, 0.4e-12),
        EnergyPreset("45nm-int8", 0.23e-12, 0.03e-12),
    )
}
DEFAULT_PRESET = "45nm-fp32"
