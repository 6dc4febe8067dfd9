"""One self-contained HTML page of a report: the tables, and the plots inlined as base64 PNG."""

from __future__ import annotations

import base64
from html import escape

from snnconv.report.plots import render_all
from snnconv.report.record import Report
from snnconv.report.tables import accuracy_label, fmt_count, fmt_joules, layer_rows, pct

_STYLE = """
body{font-family:system-ui,sans-serif;max-width:1000px;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.3em .6em}
td.n{text-align:right;font-variant-numeric:tabular-nums}th{background:#f3f3f3}
img{max-width:100%;display:block;margin:1em 0}caption{text-align:left;font-weight:bold}
"""


def _table(caption: str, header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="n">{escape(c)}</td>' if i else f"<td>{escape(c)}</td>"
            for i, c in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><caption>{escape(caption)}</caption><tr>{head}</tr>{body}</table>"


def _summary(r: Report) -> str:
    e = r.energy
    rows = [
        ["ANN accuracy", pct(r.ann_accuracy)],
        [accuracy_label(r), pct(r.snn_accuracy)],
        ["drop vs ANN", f"{r.accuracy_drop_points:.2f} points"],
        ["spikes / image", fmt_count(r.spikes_per_image)],
        ["synaptic ops / image", fmt_count(r.synops_per_image)],
        ["ANN MACs / image", fmt_count(r.ann_macs_per_image)],
        ["SNN MACs / image (analog input)", fmt_count(r.snn_macs_per_image)],
        [f"energy / image, ANN ({e.preset})", fmt_joules(e.ann_joules_per_image)],
        [f"energy / image, SNN ({e.preset})", fmt_joules(e.snn_joules_per_image)],
        ["SNN / ANN energy", f"{e.ratio:.3f}"],
    ]
    if r.ann_part_macs_per_image:
        rows[-1:-1] = [
            ["hybrid: MACs / image of the ANN part", fmt_count(r.ann_part_macs_per_image)],
            ["hybrid: energy / image, spiking part", fmt_joules(e.snn_part_joules_per_image)],
            ["hybrid: energy / image, ANN part", fmt_joules(e.ann_part_joules_per_image)],
        ]
    if e.firing_rate is not None:
        be = e.break_even_firing_rate
        rows.append(["firing rate (spikes / neuron / step)", f"{e.firing_rate:.4f}"])
        rows.append(["break-even firing rate", "none" if be is None else f"{be:.4f}"])
    return _table("Summary", ["quantity", "value"], rows)


def _layers(r: Report) -> str:
    header, rows = layer_rows(r)
    return _table("Per layer", header, rows)


def _accuracy(r: Report) -> str:
    rows = [
        [str(t), pct(a), f"{100 * (a - r.ann_accuracy):+.2f}"]
        for t, a in enumerate(r.accuracy_per_step, start=1)
    ]
    return _table("Accuracy by timestep", ["t", "SNN accuracy", "vs ANN (points)"], rows)


def render_html(r: Report, pngs: dict[str, bytes] | None = None) -> str:
    """The page for ``r``; ``pngs`` (from ``render_all``) are made here when not given."""
    pngs = render_all(r) if pngs is None else pngs
    images = "".join(
        f'<img alt="{escape(name)}" src="data:image/png;base64,{base64.b64encode(data).decode()}">'
        for name, data in pngs.items()
    )
    title = f"snnconv report: {r.model or 'model'} on {r.data or 'data'}"
    return (
        f'<!doctype html><html><head><meta charset="utf-8"><title>{escape(title)}</title>'
        f"<style>{_STYLE}</style></head><body><h1>{escape(title)}</h1>"
        f"<p>{r.images} images, T = {r.timesteps}, {escape(r.encoding)} input, "
        f"{escape(r.schedule)} schedule; energy preset {escape(r.energy.preset)} "
        f"({escape(r.energy.source)}).</p>"
        f"{_summary(r)}{images}{_layers(r)}{_accuracy(r)}</body></html>\n"
    )
