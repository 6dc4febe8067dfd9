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
from snnconv.deployment import describe as describe_deployment
from snnconv.deployment import recorded
from snnconv.graph import SYNAPTIC_OPS, Graph, all_nodes, unroll
from snnconv.report.tables import fmt_count


def _params(n) -> int:
    return int(sum(p.size for k, p in n.params.items() if k != "threshold"))


def depth(graph: Graph) -> dict:
    """Weighted (conv, linear) layers stored vs executed, and the parameters BackRes saves
    against the unrolled network."""
    flat = unroll(graph)
    stored = sum(n.op in SYNAPTIC_OPS for n in all_nodes(graph.nodes))
    executed = sum(n.op in SYNAPTIC_OPS for n in flat.nodes)
    params, unrolled = graph.param_count(), sum(_params(n) for n in flat.nodes)
    return {
        "physical_depth": stored,
        "logical_depth": executed,
        "params_unrolled": unrolled,
        "params_saved": unrolled - params,
    }


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
            "params": _params(n),
            "macs": macs.get(n.name, 0),
        }
        if n.op == "backres":
            body = n.attrs["body"]
            passes = [f"{b.name}#{r}" for b in body for r in range(1, n.attrs["repeats"] + 1)]
            row["params"] = sum(_params(b) for b in body)
            row["macs"] = sum(macs.get(p, 0) for p in passes)
            row["repeats"] = n.attrs["repeats"]
            row["mode"] = n.attrs["mode"]
            row["body"] = [{"name": b.name, "op": b.op, "inputs": b.inputs} for b in body]
        if "threshold" in n.params:
            row["threshold"] = [float(v) for v in np.ravel(n.params["threshold"])]
        nodes.append(row)
    meta = graph.metadata
    facts = {"deployment": recorded(graph)} if graph.is_snn else {}
    return {
        "kind": "snn" if graph.is_snn else "ann",
        "input_shape": list(graph.input_shape),
        "output": graph.output,
        "nodes": nodes,
        "params": graph.param_count(),
        "macs_per_image": int(sum(macs.values())),
        **depth(graph),
        "verification": {k: v for k, v in meta.items() if k.startswith("verify_")},
        "metadata": dict(meta),
        **facts,
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
            row["op"] if "repeats" not in row else f"backres ×{row['repeats']} ({row['mode']})",
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
    console.print(
        f"depth (conv/linear layers): physical {info['physical_depth']} stored, "
        f"logical {info['logical_depth']} executed"
        + (
            f" · BackRes saves {info['params_saved']:,} of {info['params_unrolled']:,} "
            "parameters of the unrolled network"
            if info["params_saved"]
            else ""
        )
    )
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
    else:
        for line in describe_deployment(info["deployment"]):
            console.print(line, highlight=False, markup=False)
    if json_path:
        write_json(json_path, info, force)
