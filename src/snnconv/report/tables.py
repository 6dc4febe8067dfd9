"""Rich tables for people; the JSON record is for machines."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table

from snnconv.report import energy_tables
from snnconv.report.formats import fmt_count, fmt_joules, pct
from snnconv.report.record import Report

__all__ = ["fmt_count", "fmt_joules", "pct", "report_view"]


def accuracy_label(r: Report) -> str:
    """What ``snn_accuracy`` is: at T, or with early exit when each image stopped."""
    if r.early_exit is None:
        return f"SNN accuracy at T = {r.timesteps}"
    return f"SNN accuracy, early exit (mean {r.early_exit.mean_steps:.2f} steps)"


def summary_table(r: Report) -> Table:
    """The headline numbers: accuracy, drop, spikes, synops, energy, throughput."""
    t = Table(title=f"SNN simulation · {r.images} images · T = {r.timesteps}", show_header=False)
    t.add_column(style="bold")
    t.add_column(justify="right")
    t.add_row("ANN accuracy", pct(r.ann_accuracy))
    t.add_row(accuracy_label(r), pct(r.snn_accuracy))
    t.add_row("drop vs ANN", f"{r.accuracy_drop_points:.2f} points")
    t.add_row("spikes / image", fmt_count(r.spikes_per_image))
    t.add_row("synaptic ops / image", fmt_count(r.synops_per_image))
    t.add_row("MACs / image, SNN (analog input)", fmt_count(r.snn_macs_per_image))
    hybrid = "hybrid" in r.conversion
    if hybrid:
        t.add_row("MACs / image, ANN part", fmt_count(r.ann_part_macs_per_image))
    t.add_row("ANN MACs / image", fmt_count(r.ann_macs_per_image))
    e = r.energy
    t.add_row(f"energy / image, ANN ({e.preset})", fmt_joules(e.ann_joules_per_image))
    t.add_row(f"energy / image, SNN ({e.preset})", fmt_joules(e.snn_joules_per_image))
    if hybrid:
        t.add_row("  of which spiking part", fmt_joules(e.snn_part_joules_per_image))
        t.add_row("  of which ANN part", fmt_joules(e.ann_part_joules_per_image))
    t.add_row("SNN / ANN energy", f"{e.ratio:.3f}")
    if e.firing_rate is not None:
        be = e.break_even_firing_rate
        t.add_row("firing rate (spikes / neuron / step)", f"{e.firing_rate:.4f}")
        t.add_row("break-even firing rate", "none" if be is None else f"{be:.4f}")
    t.add_row(
        "throughput",
        f"{r.throughput.images_per_s:,.0f} images/s · "
        f"{r.throughput.image_steps_per_s:,.0f} image·steps/s",
    )
    t.caption = (
        (
            f"hybrid: spiking up to {r.conversion['hybrid']['after']}, "
            f"{r.conversion['hybrid']['boundary']} boundary; "
            if hybrid
            else ""
        )
        + f"{r.encoding} input, {r.schedule}-by-{r.schedule} schedule; energy model "
        f"{e.model or e.preset}: MAC {e.mac_joules * 1e12:g} pJ, AC {e.ac_joules * 1e12:g} pJ"
        f" ({e.source})"
    )
    return t


def accuracy_table(r: Report) -> Table:
    """Accuracy at powers of two up to T (and T itself): the anytime curve at a glance."""
    steps = sorted(
        {t for t in (1, 2, 4, 8, 16, 32, 64, 128, 256, 512) if t <= r.timesteps} | {r.timesteps}
    )
    t = Table(title="Accuracy by timestep")
    t.add_column("t", justify="right")
    t.add_column("SNN accuracy", justify="right")
    t.add_column("vs ANN", justify="right")
    for s in steps:
        a = r.accuracy_per_step[s - 1]
        t.add_row(str(s), pct(a), f"{100 * (a - r.ann_accuracy):+.2f}")
    return t


def layer_rows(r: Report) -> tuple[list[str], list[list[str]]]:
    """Column names and formatted cells of the per-layer table (shared with the HTML page)."""
    columns = [
        "layer",
        "op",
        "neurons",
        "spikes/img",
        "firing rate",
        "synops/img",
        "ANN MACs/img",
        "SNN MACs/img",
    ]
    hybrid = "hybrid" in r.conversion
    if hybrid:
        columns.append("ANN-part MACs/img")
    rows = []
    for row in r.layers:
        cells = [
            row.name,
            row.op,
            _opt(row.neurons, lambda v: f"{v:,}"),
            _opt(row.spikes_per_image, fmt_count),
            _opt(row.firing_rate, lambda v: f"{v:.4f}"),
            _opt(row.synops_per_image, fmt_count),
            _opt(row.ann_macs_per_image, fmt_count),
            _opt(row.snn_macs_per_image, fmt_count),
        ]
        if hybrid:
            cells.append(_opt(row.ann_part_macs_per_image, fmt_count))
        rows.append(cells)
    return columns, rows


def layer_table(r: Report) -> Table:
    """One row per neuron or synaptic layer."""
    t = Table(title="Per layer")
    columns, rows = layer_rows(r)
    for col in columns:
        t.add_column(col, justify="left" if col in ("layer", "op") else "right")
    for cells in rows:
        t.add_row(*cells)
    return t


def _opt(value, fmt) -> str:
    return "" if value is None else fmt(value)


def early_exit_table(r: Report) -> Table:
    e = r.early_exit
    t = Table(
        title=f"Early exit · stop when the prediction holds for {e.stable_steps} steps",
        show_header=False,
    )
    t.add_column(style="bold")
    t.add_column(justify="right")
    t.add_row("accuracy", pct(e.accuracy))
    t.add_row("mean steps", f"{e.mean_steps:.2f} of {r.timesteps}")
    t.add_row("spikes / image", fmt_count(e.spikes_per_image))
    t.add_row("synaptic ops / image", fmt_count(e.synops_per_image))
    t.add_row(f"energy / image, SNN ({r.energy.preset})", fmt_joules(e.snn_joules_per_image))
    t.add_row("SNN / ANN energy", f"{e.ratio:.3f}")
    return t


def report_view(r: Report, *, layers: bool = True) -> Group:
    """The tables of a report, ready for ``console.print``."""
    parts = [summary_table(r), accuracy_table(r)]
    if r.early_exit is not None:
        parts.append(early_exit_table(r))
    if layers:
        parts.append(layer_table(r))
        parts.append(energy_tables.energy_table(r))
        if r.energy.layers:
            parts.append(energy_tables.break_even_table(r))
    if r.neurobench:
        parts.append(energy_tables.neurobench_table(r))
    return Group(*parts)
