"""snnconv inspect: what a model holds and what converts."""

from __future__ import annotations

import click
import numpy as np
from rich.table import Table

from snnconv import ops
from snnconv.cli.common import (
    check_outputs,
    console,
    load_input_model,
    model_options,
    write_json,
)
from snnconv.graph import Graph
from snnconv.report.tables import fmt_count


def describe(graph: Graph) -> dict:
    """The facts ``inspect`` prints, as plain data (also its JSON)."""
    shapes = ops.infer_shapes(graph)
    macs = ops.macs(graph, shapes)
    nodes = []
    for n in graph:
        row = {
            "name": n.name,
            "op": n.op,
            "inputs": n.inputs,
            "shape": list(shapes[n.name]),
            "params": int(sum(p.size for k, p in n.params.items() if k != "threshold")),
            "macs": macs.get(n.name, 0),
        }
        if "threshold" in n.params:
            row["threshold"] = [float(v) for v in np.ravel(n.params["threshold"])]
        nodes.append(row)
    meta = graph.metadata
    return {
        "kind": "snn" if graph.is_snn else "ann",
        "input_shape": list(graph.input_shape),
        "output": graph.output,
        "nodes": nodes,
        "params": graph.param_count(),
        "macs_per_image": int(sum(macs.values())),
        "verification": {k: v for k, v in meta.items() if k.startswith("verify_")},
        "metadata": dict(meta),
    }


@click.command("inspect")
@model_options
@click.option("--json", "json_path", metavar="PATH", help="Write the description as JSON.")
@click.option("--force", is_flag=True, help="Overwrite an existing --json file.")
def inspect_cmd(model, torch_factory, weights, input_shape, trust_pickle, json_path, force):
    """Show a model's layers, shapes, parameters and MACs, and whether it converts.

    Loading checks the graph against onnxruntime; an op snnconv cannot convert is listed
    with its node name (exit 2).

    \b
    Example:
      snnconv inspect model.onnx
    """
    check_outputs(json_path, force=force)
    graph = load_input_model(model, torch_factory, weights, input_shape, trust_pickle)
    info = describe(graph)
    t = Table(
        title=f"{model or torch_factory} · {info['kind'].upper()} · input "
        f"{'×'.join(map(str, info['input_shape']))}"
    )
    for col in ("node", "op", "inputs", "output shape", "params", "MACs", "threshold"):
        t.add_column(col, justify="right" if col in ("params", "MACs") else "left")
    for row in info["nodes"]:
        th = row.get("threshold")
        t.add_row(
            row["name"],
            row["op"],
            ", ".join(row["inputs"]),
            "×".join(map(str, row["shape"])),
            fmt_count(row["params"]) if row["params"] else "",
            fmt_count(row["macs"]) if row["macs"] else "",
            ""
            if th is None
            else (f"{th[0]:.4g}" if len(th) == 1 else f"{len(th)} ch, {min(th):.3g}…{max(th):.3g}"),
        )
    console.print(t)
    console.print(f"parameters: {info['params']:,} · MACs per image: {info['macs_per_image']:,}")
    v = info["verification"]
    if v:
        console.print(
            "matches onnxruntime: [green]yes[/green] "
            f"(max abs diff {v.get('verify_max_abs_diff')}, "
            f"relative {v.get('verify_max_rel_diff')}, {v.get('verify_samples')} random inputs)"
            if v.get("verify_ok") == "true"
            else "matches onnxruntime: [red]no[/red]"
        )
    if info["kind"] == "ann":
        console.print("[green]every op converts[/green]: run snnconv convert")
    if json_path:
        write_json(json_path, info, force)
