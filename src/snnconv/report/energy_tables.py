"""Rich tables of a report's energy arithmetic (every constant, count and product of its
model, summed over layers), its break-even line and NeuroBench's metrics."""

from __future__ import annotations

from rich.table import Table

from snnconv.report.formats import fmt_count, fmt_joules, pct
from snnconv.report.record import Report


def _rate(v: float | None) -> str:
    return "none varies with spikes" if v is None else f"{v:.4f}"


def energy_table(r: Report) -> Table:
    """The model's terms, summed over layers by side and operation: constant x count =
    energy, so the totals can be redone by hand (the JSON has them per layer)."""
    e = r.energy
    t = Table(title=f"Energy arithmetic · model {e.model or e.preset} · per image")
    for col in ("side", "operation", "energy each", "count", "energy"):
        t.add_column(col, justify="left" if col in ("side", "operation") else "right")
    sums: dict[tuple, list] = {}
    for term in e.terms:
        key = (term["side"], term["what"], term["constant_joules"])
        row = sums.setdefault(key, [0.0, 0.0])
        row[0] += term["count_per_image"]
        row[1] += term["joules_per_image"]
    for (side, what, constant), (count, joules) in sums.items():
        each = f"{constant * 1e12:g} pJ"
        t.add_row(side.upper(), what, each, fmt_count(count), fmt_joules(joules))
    t.add_row("ANN", "total", "", "", fmt_joules(e.ann_joules_per_image), style="bold")
    t.add_row("SNN", "total", "", "", fmt_joules(e.snn_joules_per_image), style="bold")
    verdict = "saves energy" if e.ratio < 1 else "does not save energy"
    t.caption = (
        f"SNN / ANN = {e.ratio:.3f}: the SNN {verdict} under {e.model or e.preset}. "
        f"Firing rate {_rate(e.firing_rate)} spikes/neuron/step; break-even at "
        f"{_rate(e.break_even_firing_rate)}. Sources: {e.source}"
    )
    return t


def break_even_table(r: Report) -> Table:
    """Per synaptic layer fed spikes: its input's firing rate against the break-even rate."""
    t = Table(title=f"Break-even by layer · {r.energy.model or r.energy.preset}")
    for col in ("layer", "firing rate in", "break-even rate", "SNN / ANN"):
        t.add_column(col, justify="left" if col == "layer" else "right")
    for row in r.energy.layers:
        ann, snn = row["ann_joules_per_image"], row["snn_joules_per_image"]
        t.add_row(
            row["name"],
            f"{row['firing_rate']:.4f}",
            _rate(row["break_even_firing_rate"]),
            f"{snn / ann:.3f}" if ann else "",
        )
    t.caption = "firing rate in: spike events per input value per step (above 1 after pooling)"
    return t


def neurobench_table(r: Report) -> Table:
    nb = r.neurobench
    t = Table(title="NeuroBench metrics", show_header=False)
    t.add_column(style="bold")
    t.add_column(justify="right")
    ops = nb["synaptic_operations"]
    t.add_row("activation sparsity", pct(nb["activation_sparsity"]))
    t.add_row("synaptic operations / image, Dense", fmt_count(ops["dense"]))
    t.add_row("synaptic operations / image, Effective_MACs", fmt_count(ops["effective_macs"]))
    t.add_row("synaptic operations / image, Effective_ACs", fmt_count(ops["effective_acs"]))
    t.add_row("membrane updates / image", fmt_count(nb["membrane_updates"]))
    t.add_row("footprint", f"{nb['footprint_bytes']:,} bytes")
    t.add_row("connection sparsity", f"{nb['connection_sparsity']:.4f}")
    return t


def models_table(r: Report, energies: list) -> Table:
    """The same run under several energy models, side by side (``energies``: each model's
    ``Energy``, as ``snnconv.simulate.energy.estimate`` gives it)."""
    t = Table(title="SNN / ANN energy by model")
    for col in ("model", "ANN / image", "SNN / image", "SNN / ANN", "firing rate", "break-even"):
        t.add_column(col, justify="left" if col == "model" else "right")
    for e in energies:
        t.add_row(
            e.model,
            fmt_joules(e.ann_joules_per_image),
            fmt_joules(e.snn_joules_per_image),
            f"{e.ratio:.3f}",
            _rate(e.firing_rate),
            _rate(e.break_even_firing_rate),
        )
    t.caption = "ops-only models leave memory traffic out; docs/energy.md gives each model"
    return t
