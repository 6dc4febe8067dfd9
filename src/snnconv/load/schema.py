"""Each node's declared interface, checked before its handler runs: how many inputs and
outputs it takes, which attributes it has, their types, which are required.

ONNX ops are checked against the ONNX schema of the model's opset; snnconv's own domain
(what ``save.py`` writes) has no ONNX schema, so its ops are declared here.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import onnx
from onnx.defs import SchemaError

from snnconv.load.registry import SNN_DOMAIN
from snnconv.ops.qcfs import ANN_DOMAIN

_A = onnx.AttributeProto


@dataclass(frozen=True)
class Interface:
    """What a node of one op may look like; ``name`` is how messages call the op."""

    name: str
    attributes: dict[str, tuple[int, bool]]  # attribute -> (AttributeProto type, required)
    min_inputs: int
    max_inputs: int
    min_outputs: int = 1


_POOL = {
    "kernel_shape": (_A.INTS, True),
    "strides": (_A.INTS, False),
    "pads": (_A.INTS, False),
    "dilations": (_A.INTS, False),
    "ceil_mode": (_A.INT, False),
    "auto_pad": (_A.STRING, False),
}

#: snnconv's domain ops, as ``save.py`` writes them.
SNN_INTERFACES = {
    "IF": Interface(
        "snnconv.IF",
        {
            "reset": (_A.STRING, True),
            "v0": (_A.FLOAT, True),
            "signed": (_A.INT, False),
            "clip_max": (_A.FLOAT, False),
            "qcfs_levels": (_A.INT, False),
            "qcfs_threshold": (_A.FLOATS, False),
        },
        min_inputs=2,  # input, threshold; then optional bias, potential
        max_inputs=4,
    ),
    "HybridBoundary": Interface("snnconv.HybridBoundary", {"mode": (_A.STRING, False)}, 1, 1),
    "MaxPoolGate": Interface("snnconv.MaxPoolGate", {**_POOL, "rule": (_A.STRING, False)}, 1, 1),
    "BackRes": Interface(
        "snnconv.BackRes",
        {"repeats": (_A.INT, True), "mode": (_A.STRING, False), "body": (_A.GRAPH, True)},
        1,
        1,
    ),
}


#: ANN ops snnconv writes as model-local functions (``snnconv.ops.qcfs``).
ANN_INTERFACES = {"QCFS": Interface("snnconv.ann.QCFS", {"levels": (_A.INT, True)}, 2, 2)}
_DOMAINS = {SNN_DOMAIN: SNN_INTERFACES, ANN_DOMAIN: ANN_INTERFACES}


@cache
def interface(domain: str, op_type: str, opset: int) -> Interface | None:
    """The interface of ``op_type`` at ``opset``; None for an op without a schema (such a
    node has no handler either and is reported as unsupported)."""
    if domain in _DOMAINS:
        return _DOMAINS[domain].get(op_type)
    try:
        s = onnx.defs.get_schema(op_type, max_inclusive_version=opset, domain="")
    except SchemaError:
        return None
    attributes = {n: (int(a.type), bool(a.required)) for n, a in s.attributes.items()}
    return Interface(
        f"{op_type} (opset {s.since_version})", attributes, s.min_input, s.max_input, s.min_output
    )


def _type_name(t: int) -> str:
    return _A.AttributeType.Name(t) if t in _A.AttributeType.values() else f"type {t}"


def interface_problem(node: onnx.NodeProto, domain: str, opset: int) -> str | None:
    """What is wrong with ``node`` against its op's interface, or None."""
    spec = interface(domain, node.op_type, opset)
    if spec is None:
        return None
    inputs, outputs = len(node.input), len(node.output)
    if not spec.min_inputs <= inputs <= spec.max_inputs:
        few = "too few" if inputs < spec.min_inputs else "too many"
        takes = (
            spec.min_inputs
            if spec.min_inputs == spec.max_inputs
            else (f"{spec.min_inputs} to {spec.max_inputs}")
        )
        return f"{few} inputs ({inputs}); {spec.name} takes {takes}"
    if outputs < spec.min_outputs:
        return f"too few outputs ({outputs}); {spec.name} has {spec.min_outputs}"
    for a in node.attribute:
        if a.name not in spec.attributes:
            known = ", ".join(sorted(spec.attributes)) or "none"
            return f"attribute {a.name!r} is not an attribute of {spec.name} (it has: {known})"
        want = spec.attributes[a.name][0]
        if a.type != want:
            return (
                f"attribute {a.name!r} is of type {_type_name(a.type)}; {spec.name} "
                f"takes {_type_name(want)}"
            )
    present = {a.name for a in node.attribute}
    for name, (t, required) in spec.attributes.items():
        if required and name not in present:
            return f"required attribute {name!r} ({_type_name(t)}) is missing"
    return None
