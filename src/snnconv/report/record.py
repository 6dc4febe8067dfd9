"""The result record of a simulation: a dataclass that is also the versioned JSON report."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

SCHEMA = "snnconv.report/1"


@dataclass
class LayerRecord:
    """One row per neuron layer (spikes) or synaptic layer (synops, MACs); the fields that do
    not apply to a row's kind are None."""

    name: str
    op: str
    neurons: int | None = None
    spikes_per_image: float | None = None
    firing_rate: float | None = None  # spikes per neuron per timestep
    synops_per_image: float | None = None
    ann_macs_per_image: float | None = None
    snn_macs_per_image: float | None = None  # spiking part, layers fed analog values
    ann_part_macs_per_image: float | None = None  # the ANN part of a hybrid net
    # -- what the energy models read (snnconv.simulate.energy), per image ----------------
    # synaptic rows: sizes per pass, and the traffic counted
    input_size: int | None = None  # input values per step
    outputs: int | None = None  # output values per pass
    synapses: int | None = None  # (input, output) pairs it connects: MACs less padding
    weights: int | None = None
    zero_weights: int | None = None
    biases: int | None = None
    input_events_per_image: float | None = None  # spike events received (spiking input)
    input_firing_rate: float | None = None  # spike events per input value per step
    weight_reads_per_image: float | None = None  # SNN: one per synop and per MAC
    effective_macs_per_image: float | None = None  # analog input: non-zero input x weight
    # neuron rows
    source: str | None = None  # the node whose output the layer integrates
    neuron_updates_per_image: float | None = None  # dense: every neuron, every step
    event_driven_updates_per_image: float | None = None  # reached by >= 1 event that step
    membrane_updates_per_image: float | None = None  # NeuroBench's: membranes that changed
    constant_current: bool | None = None  # a bias or constant analog input every step


@dataclass
class Energy:
    """Energy per image of the ANN and the SNN under one energy model (joules), with every
    term of its arithmetic (``snnconv.simulate.energy``). ``preset`` is the model's name,
    kept for scripts that read it; ``firing_rate`` is spikes per neuron per step over all
    neuron layers and ``break_even_firing_rate`` the one at which SNN and ANN energy would
    be equal (0: none; None: nothing varies with the spikes)."""

    preset: str
    source: str
    mac_joules: float
    ac_joules: float
    ann_joules_per_image: float
    snn_joules_per_image: float  # the whole converted net: spiking part + ANN part
    ratio: float  # SNN energy / ANN energy
    snn_part_joules_per_image: float  # ACs x E_AC + MACs of analog-input layers x E_MAC
    ann_part_joules_per_image: float  # MACs of a hybrid net's ANN part x E_MAC
    model: str = ""
    firing_rate: float | None = None
    break_even_firing_rate: float | None = None
    constants: list[dict[str, Any]] = field(default_factory=list)  # what, joules, source
    # side, layer, what, constant_joules, count_per_image, joules_per_image, spikes, ann_part
    terms: list[dict[str, Any]] = field(default_factory=list)
    # per synaptic layer fed spikes: energies, firing_rate, break_even_firing_rate
    layers: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class EarlyExit:
    """A run where each image stops once its last ``stable_steps`` predictions agree."""

    stable_steps: int
    accuracy: float
    mean_steps: float
    steps_histogram: list[int]  # images stopping at step 1, 2, ..., T
    spikes_per_image: float
    synops_per_image: float
    snn_macs_per_image: float
    snn_joules_per_image: float
    ratio: float  # SNN energy with early exit / ANN energy


@dataclass
class Throughput:
    """How fast the SNN was simulated (wall clock of the simulation loop)."""

    images_per_s: float
    image_steps_per_s: float
    seconds: float


@dataclass
class Report:
    """Everything one simulation measured; ``to_json`` is the stable, versioned report."""

    model: str
    data: str
    images: int
    timesteps: int
    encoding: str
    schedule: str
    ann_accuracy: float
    snn_accuracy: float
    accuracy_per_step: list[float]
    spikes_per_image: float
    synops_per_image: float
    ann_macs_per_image: float
    snn_macs_per_image: float
    ann_part_macs_per_image: float
    energy: Energy
    throughput: Throughput
    layers: list[LayerRecord] = field(default_factory=list)
    conversion: dict[str, Any] = field(default_factory=dict)
    early_exit: EarlyExit | None = None
    chunk: int | None = None  # timesteps folded into the batch at once
    memory_budget_bytes: int | None = None  # --memory-budget (None: the default, a share of free)
    # spike kind, NIR exactness and blockers (snnconv.deployment)
    deployment: dict[str, Any] = field(default_factory=dict)
    # NeuroBench's metrics by their names (snnconv.report.neurobench)
    neurobench: dict[str, Any] = field(default_factory=dict)
    schema: str = SCHEMA

    @property
    def accuracy_drop_points(self) -> float:
        """ANN accuracy minus SNN accuracy, in percentage points."""
        return 100.0 * (self.ann_accuracy - self.snn_accuracy)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        return {"schema": d.pop("schema"), **d}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)
