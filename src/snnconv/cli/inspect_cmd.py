"""snnconv inspect: what a model holds and what converts."""

from __future__ import annotations

import click
from rich.table import Table

from snnconv.cli.options import force_option, json_option, model_options
from snnconv.cli.output import check_outputs, console, write_json
from snnconv.deployment import describe as describe_deployment
from snnconv.describe import describe
from snnconv.load import load_input_model
from snnconv.report.tables import fmt_count


@click.command("inspect")
@model_options
@json_option("Write the description as JSON.")
@force_option("Overwrite an existing --json file.")
def inspect_cmd(model, torch_factory, weights, input_shape, trust_pickle, json_path, force):
    """Show a model's layers, shapes, parameters and MACs, and whether it converts.

    Loading checks the graph against onnxruntime; an op snnconv cannot convert is listed
    with its node name (exit 2).

    \b
    Example:
      snnconv inspect model.onnx
    """
    check_outputs(json_path, force=force)
    graph = load_input_model(
        model,
        torch_factory=torch_factory,
        weights=weights,
        input_shape=input_shape,
        trust_pickle=trust_pickle,
    )
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
