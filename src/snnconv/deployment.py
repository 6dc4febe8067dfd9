"""Where a converted SNN can run: its spike kind, and whether NIR expresses it exactly.

``deployment(snn)`` is what ``convert`` prints, the ``.snn.onnx`` metadata records
(``snnconv.deployment``), the ``simulate``/``validate`` reports carry as ``deployment`` and
``inspect`` shows. Every blocker is listed at once, grouped by the setting that causes it, with
the nodes it affects and what to pass instead, so one reconversion fixes them all.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from snnconv.graph import Graph, Node, all_nodes
from snnconv.neurons import kind_of


def spike_kind(node: Node) -> str:
    """``binary`` (0/1) or ``signed`` (-1/0/1) spikes of an ``if_neuron``, as its kind says."""
    return kind_of(node).spikes


@dataclass(frozen=True)
class Blocker:
    """One setting (or model structure) that NIR cannot express, and the nodes it affects."""

    setting: str  # what the model has, e.g. "--reset subtract" or "op concat"
    reason: str
    instead: str  # what to pass (or change) instead
    nodes: list[str] = field(default_factory=list)
    approximable: bool = False  # export --approximate may drop it (changing the model)


# What each op needs to be NIR-exact: a function node -> [(setting, reason, instead, approx)].
_Check = Callable[[Node], list[tuple[str, str, str, bool]]]
_CHECKS: dict[str, _Check] = {}


def _check(*ops: str):
    def register(fn: _Check) -> _Check:
        for op in ops:
            _CHECKS[op] = fn
        return fn

    return register


@_check("if_neuron")
def _neuron(node: Node) -> list[tuple[str, str, str, bool]]:
    found = []
    kind = kind_of(node)
    if not kind.nir:
        found.append((f"--neuron {kind.name}", f"NIR has no {kind.label}", "--neuron if", False))
    # Reset by subtraction exports as a loop that starts at 0 wherever the neuron starts
    # (snnconv.export.nir_neurons). NIR's IF would need v_reset = -start, and consumers
    # disagree on where an IF starts (snnTorch at 0, Norse at v_reset).
    if node.attrs.get("reset") != "subtract":
        if node.attrs.get("v0", 0.0) != 0.0:
            found.append(
                (
                    f"--v0 {node.attrs['v0']:g} with --reset zero",
                    f"initial membrane v0 = {node.attrs['v0']:g} x threshold; NIR's IF starts "
                    "at rest",
                    "--reset subtract (or --v0 0)",
                    True,
                )
            )
        if "potential" in node.params:
            found.append(
                (
                    "--calibrate …+potential with --reset zero",
                    "a calibrated initial membrane potential; NIR's IF starts at rest",
                    "--reset subtract (or --calibrate search+bias)",
                    True,
                )
            )
    return found


@_check("maxpool_gate", "maxpool")
def _maxpool(node: Node) -> list[tuple[str, str, str, bool]]:
    return [("--maxpool gate", "NIR has no max pool", "--maxpool avg", False)]


def _structure(reason: str, instead: str) -> _Check:
    return lambda node: [(f"op {node.op}", reason, instead, False)]


_CHECKS.update(
    {
        "concat": _structure("NIR has no concatenation", "a model without concat"),
        "reshape": _structure("NIR has only Flatten", "flatten instead of reshape"),
        "hybrid_boundary": _structure(
            "a hybrid net's ANN part does not spike", "convert without --hybrid-after/--ann-layers"
        ),
        "backres": _structure(
            "NIR has no block run repeatedly with shared weights", "a model without BackRes"
        ),
        "affine": _structure(
            "a batch norm not folded into a conv/linear layer",
            "batch norm right after a conv or linear layer",
        ),
    }
)
#: Ops NIR expresses whatever their settings (geometry is checked when exporting).
NIR_OPS = frozenset({"conv", "linear", "avgpool", "global_avgpool", "flatten", "add"})


def blockers(snn: Graph) -> list[Blocker]:
    """Everything in ``snn`` that NIR cannot express exactly, grouped by setting."""
    grouped: dict[tuple, Blocker] = {}
    for node in all_nodes(snn.nodes):
        if node.op in NIR_OPS:
            continue
        check = _CHECKS.get(node.op, _structure("NIR has no equivalent op", "a supported op"))
        for setting, reason, instead, approx in check(node):
            b = grouped.setdefault(
                (setting, instead), Blocker(setting, reason, instead, approximable=approx)
            )
            b.nodes.append(node.name)
    return list(grouped.values())


def deployment(snn: Graph) -> dict:
    """``{"spikes": "binary"|"signed", "nir_exact": bool, "blockers": [...]}``."""
    kinds = {spike_kind(n) for n in all_nodes(snn.nodes) if n.op == "if_neuron"}
    found = blockers(snn)
    return {
        "spikes": "signed" if "signed" in kinds else "binary",
        "nir_exact": not found,
        "blockers": [asdict(b) for b in found],
    }


def recorded(snn: Graph) -> dict:
    """The deployment facts of a model: from its metadata if recorded at conversion, else
    computed (models converted before the facts were recorded, NIR imports)."""
    text = snn.metadata.get("snnconv.deployment")
    return json.loads(text) if text else deployment(snn)


def describe(facts: dict) -> list[str]:
    """The facts as lines for people (convert, inspect, export)."""
    head = f"spikes: {facts['spikes']} · NIR exact: {'yes' if facts['nir_exact'] else 'no'}"
    lines = [head]
    for b in facts["blockers"]:
        nodes = ", ".join(b["nodes"][:4]) + (
            f" (+{len(b['nodes']) - 4})" if len(b["nodes"]) > 4 else ""
        )
        lines.append(f"  {b['setting']}: {b['reason']}; use {b['instead']} [{nodes}]")
    return lines


def nir_command(snn: Graph) -> str:
    """The ``convert`` command that makes a NIR-exact SNN from the same ANN."""
    source = snn.metadata.get("source_name") or "MODEL.onnx"
    return f"snnconv convert {source} --calib-data SPEC --target nir -o model.snn.onnx"
