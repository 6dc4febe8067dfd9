"""The SNN's own ops: ``if_neuron`` (its kind in ``snnconv.neurons``), ``hybrid_boundary``
(the running mean a hybrid net's ANN part reads) and ``backres`` (a block run R times with
shared weights; the engine and the forward pass run it unrolled, ``graph.unroll``)."""

from __future__ import annotations

import onnx
from onnx import helper

from snnconv.graph import Graph, Node
from snnconv.ops.forward import ann_forward
from snnconv.ops.spec import OpSpec, register


def _keep_shape(n: Node, xs):
    return xs[0]


def _write_if(w, n: Node) -> None:
    inputs = [n.inputs[0], w.param(n, "threshold")]
    # Optional inputs by position: an empty name stands for an absent bias.
    if "bias" in n.params or "potential" in n.params:
        inputs.append(w.param(n, "bias") if "bias" in n.params else "")
    if "potential" in n.params:
        inputs.append(w.param(n, "potential"))
    attrs = {k: (list(v) if isinstance(v, tuple) else v) for k, v in n.attrs.items()}
    w.emit_snn(n, "IF", inputs, **attrs)


def _write_backres(w, n: Node) -> None:
    """``snnconv.BackRes``: the body as a GRAPH attribute that reads the block input from
    the outer scope (its initializers inside it), plus ``repeats`` and ``mode``."""
    a = n.attrs
    body = w.nested()
    names = set()
    for b in a["body"]:
        # a body node reads an earlier body node or, by any other name, the block input
        b = Node(
            b.name, b.op, [i if i in names else n.inputs[0] for i in b.inputs], b.attrs, b.params
        )
        body.write(b)
        names.add(b.name)
    out = helper.make_tensor_value_info(a["body"][-1].name, onnx.TensorProto.FLOAT, None)
    subgraph = helper.make_graph(body.nodes, f"{n.name}.body", [], [out], body.initializers)
    w.emit_snn(
        n, "BackRes", [n.inputs[0]], repeats=int(a["repeats"]), mode=a["mode"], body=subgraph
    )


def _backres_forward(node: Node, xs):
    """A backres node on its own: its body run ``repeats`` times (see ``graph.unroll``)."""
    block = Graph([node], node.inputs[0], tuple(xs[0].shape[1:]), node.name)
    return ann_forward(block, xs[0])[0]


register(OpSpec("if_neuron", ann=None, write=_write_if, shape=_keep_shape, engine="neuron"))
register(
    OpSpec(
        "hybrid_boundary",
        ann=None,
        write=lambda w, n: w.emit_snn(n, "HybridBoundary", [n.inputs[0]], mode=n.attrs["mode"]),
        shape=_keep_shape,
        engine="boundary",
    )
)
register(
    OpSpec(
        "backres",
        ann=_backres_forward,
        write=_write_backres,
        shape=_keep_shape,  # a block keeps its input's shape (checked after unrolling)
        engine="block",
    )
)
