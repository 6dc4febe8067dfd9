"""Pictures of a report: anytime accuracy, spiking activity, energy per layer and the
break-even line (PNG bytes).

matplotlib is an optional extra (`pip install 'snnconv[plot]'`); it runs headless (Agg).
"""

from __future__ import annotations

import io
from pathlib import Path

from snnconv.atomic import write_atomic
from snnconv.errors import InputError
from snnconv.report.record import Report

PLOT_HINT = "plots need matplotlib: pip install 'snnconv[plot]'"


def require_matplotlib() -> None:
    """Fail early, before any simulation, when --plot/--html cannot be honoured."""
    try:
        import matplotlib  # noqa: F401
    except ImportError as e:
        raise InputError(PLOT_HINT) from e


def _pyplot():
    require_matplotlib()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=110)
    _pyplot().close(fig)
    return buf.getvalue()


def accuracy_plot(r: Report) -> bytes:
    """SNN accuracy at every timestep against the ANN's, in percent."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4))
    steps = range(1, r.timesteps + 1)
    ax.plot(steps, [100 * a for a in r.accuracy_per_step], marker=".", label="SNN")
    ax.axhline(100 * r.ann_accuracy, color="tab:red", ls="--", label="ANN")
    ax.set_xlabel("timestep t")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(f"Accuracy by timestep ({r.images} images, {r.encoding} input)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    return _png(fig)


def activity_plot(r: Report) -> bytes:
    """Spikes per image and firing rate of each neuron layer, side by side."""
    plt = _pyplot()
    rows = [row for row in r.layers if row.spikes_per_image is not None]
    names = [row.name for row in rows]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 0.45 * len(rows) + 2))
    a.barh(names, [row.spikes_per_image for row in rows], color="tab:blue")
    a.set_xlabel("spikes per image")
    a.set_title(f"Spikes per layer (T = {r.timesteps})")
    b.barh(names, [row.firing_rate for row in rows], color="tab:orange")
    b.set_xlabel("firing rate (spikes / neuron / timestep)")
    b.set_title("Firing rate per layer")
    b.set_yticklabels([])
    for ax in (a, b):
        ax.invert_yaxis()
        ax.grid(axis="x", alpha=0.3)
    return _png(fig)


def energy_plot(r: Report) -> bytes:
    """Left: energy per image of each layer under the report's model, ANN against SNN (the
    model's terms summed per layer; neuron updates and spike writes are their neuron layer's).
    Right: each spike-fed synaptic layer's input firing rate against its break-even rate, and
    the whole net's."""
    plt = _pyplot()
    e = r.energy
    charged = {t["layer"] for t in e.terms}
    names = [row.name for row in r.layers if row.name in charged]  # in graph order
    names += sorted(charged - set(names))
    per = {(t["side"], t["layer"]): 0.0 for t in e.terms}
    for t in e.terms:
        per[(t["side"], t["layer"])] += t["joules_per_image"]
    ann = [per.get(("ann", n), 0.0) for n in names]
    snn = [per.get(("snn", n), 0.0) for n in names]
    unit, scale = ("µJ", 1e6) if max(ann + snn, default=0.0) >= 1e-7 else ("nJ", 1e9)
    rows = e.layers + [
        {"name": "whole net", "firing_rate": e.firing_rate,
         "break_even_firing_rate": e.break_even_firing_rate}
    ]  # fmt: skip
    height = 0.5 * max(len(names), len(rows)) + 2
    fig, (a, b) = plt.subplots(1, 2, figsize=(13, height))
    y = range(len(names))
    a.barh([i - 0.2 for i in y], [j * scale for j in ann], height=0.4, label="ANN", color="tab:red")
    a.barh(
        [i + 0.2 for i in y], [j * scale for j in snn], height=0.4, label="SNN", color="tab:green"
    )
    a.set_yticks(list(y), names)
    a.set_xlabel(f"energy per image ({unit})")
    a.set_title(f"Energy per layer, {e.model or e.preset}")
    a.legend(loc="lower right")
    y = range(len(rows))
    b.barh(
        [i - 0.2 for i in y],
        [row["firing_rate"] or 0.0 for row in rows],
        height=0.4,
        label="firing rate",
        color="tab:blue",
    )
    b.barh([i + 0.2 for i in y], [row["break_even_firing_rate"] or 0.0 for row in rows],
           height=0.4, label="break-even rate", color="tab:gray")  # fmt: skip
    b.set_yticks(list(y), [row["name"] for row in rows])
    b.set_xlabel("spike events per input value per step")
    b.set_title("Where the SNN stands against its break-even line")
    b.legend(loc="lower right")
    for ax in (a, b):
        ax.invert_yaxis()
        ax.grid(axis="x", alpha=0.3)
    return _png(fig)


PLOTS = {"accuracy.png": accuracy_plot, "activity.png": activity_plot, "energy.png": energy_plot}


def render_all(r: Report) -> dict[str, bytes]:
    """Every picture of the report, by file name."""
    return {name: plot(r) for name, plot in PLOTS.items()}


def plot_paths(folder: str | Path) -> list[Path]:
    """The files ``write_plots`` writes into ``folder``."""
    return [Path(folder) / name for name in PLOTS]


def write_plots(folder: str | Path, pngs: dict[str, bytes], *, force: bool = False) -> None:
    """Write the pictures into ``folder`` (made if missing), each atomically."""
    Path(folder).mkdir(exist_ok=True)
    for name, data in pngs.items():
        write_atomic(Path(folder) / name, data, force=force)
