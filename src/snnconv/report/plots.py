"""Pictures of a report: anytime accuracy, spiking activity, energy per layer (PNG bytes).

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
    """Energy per image of each synaptic layer: ANN (MACs) against SNN (synops + MACs, the
    MACs of a hybrid net's ANN part included)."""
    plt = _pyplot()
    e = r.energy
    rows = [row for row in r.layers if row.ann_macs_per_image is not None]
    names = [row.name for row in rows]
    ann = [row.ann_macs_per_image * e.mac_joules for row in rows]
    snn = [
        (row.synops_per_image or 0.0) * e.ac_joules
        + ((row.snn_macs_per_image or 0.0) + (row.ann_part_macs_per_image or 0.0)) * e.mac_joules
        for row in rows
    ]
    unit, scale = ("µJ", 1e6) if max(ann + snn, default=0.0) >= 1e-7 else ("nJ", 1e9)
    ann, snn = [j * scale for j in ann], [j * scale for j in snn]
    fig, ax = plt.subplots(figsize=(8, 0.5 * len(rows) + 2))
    y = range(len(rows))
    ax.barh([i - 0.2 for i in y], ann, height=0.4, label="ANN (MACs)", color="tab:red")
    ax.barh([i + 0.2 for i in y], snn, height=0.4, label="SNN (synops + MACs)", color="tab:green")
    ax.set_yticks(list(y), names)
    ax.invert_yaxis()
    ax.set_xlabel(f"energy per image ({unit})")
    cost = f"MAC {e.mac_joules * 1e12:g} pJ, AC {e.ac_joules * 1e12:g} pJ"
    ax.set_title(f"Energy per layer, {e.preset} ({cost})")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(loc="lower right")
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
