"""Graph -> ONNX on disk: standard ops for the ANN vocabulary, the ``snnconv`` domain for spikes.

The file opens in Netron, passes ``onnx.checker`` and loads back with ``load_onnx`` into an
equal graph: IR node name == ONNX node name == output tensor name, parameters bit for bit.
Writes are atomic: a crash or Ctrl-C never leaves a partial file or replaces a good one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

from snnconv.atomic import check_writable, write_atomic
from snnconv.errors import InputError
from snnconv.graph import Graph, Node
from snnconv.load.registry import SNN_DOMAIN
from snnconv.ops import infer_shapes

OPSET = 17
IR_VERSION = 8  # what onnxruntime >= 1.17 reads at opset 17


def save_onnx(graph: Graph, path: str | Path, *, force: bool = False) -> None:
    """Write ``graph`` (ANN or SNN) to ``path`` as ONNX; refuse to overwrite unless ``force``."""
    check_writable(path, force=force)
    write_atomic(path, to_onnx(graph).SerializeToString(), force=force)


def to_onnx(graph: Graph) -> onnx.ModelProto:
    """The ONNX model of ``graph``, checked with ``onnx.checker``."""
    shapes = infer_shapes(graph)
    writer = _Writer()
    for node in graph.nodes:
        writer.write(node)
    inp = helper.make_tensor_value_info(
        graph.input_name, onnx.TensorProto.FLOAT, ["batch", *graph.input_shape]
    )
    out = helper.make_tensor_value_info(
        graph.output, onnx.TensorProto.FLOAT, ["batch", *shapes[graph.output]]
    )
    g = helper.make_graph(writer.nodes, "snnconv", [inp], [out], writer.initializers)
    opsets = [helper.make_opsetid("", OPSET)]
    if graph.is_snn or any(n.op == "backres" for n in graph.nodes):
        opsets.append(helper.make_opsetid(SNN_DOMAIN, 1))
    model = helper.make_model(g, opset_imports=opsets, producer_name="snnconv")
    model.ir_version = IR_VERSION
    helper.set_model_props(model, dict(graph.metadata))
    onnx.checker.check_model(model)
    return model


def _ints(v) -> list[int]:
    return [int(x) for x in v]


class _Writer:
    """Accumulates ONNX nodes and initializers, one IR node at a time."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []

    def param(self, node: Node, key: str, value: np.ndarray | None = None) -> str:
        name = f"{node.name}.{key}"
        array = node.params[key] if value is None else value
        self.initializers.append(numpy_helper.from_array(np.asarray(array, np.float32), name))
        return name

    def emit(self, node: Node, op_type: str, inputs: list[str], domain: str = "", **attrs):
        self.nodes.append(
            helper.make_node(op_type, inputs, [node.name], name=node.name, domain=domain, **attrs)
        )

    def write(self, node: Node) -> None:
        method = getattr(self, f"_{node.op}", None)
        if method is None:
            raise InputError(f"node {node.name!r}: op {node.op!r} cannot be saved as ONNX")
        method(node, node.attrs)

    def _conv(self, n: Node, a: dict) -> None:
        w = n.params["weight"]
        self.emit(
            n,
            "Conv",
            [n.inputs[0], self.param(n, "weight"), self.param(n, "bias")],
            kernel_shape=_ints(w.shape[2:]),
            strides=_ints(a["stride"]),
            pads=_ints(a["padding"]),
            dilations=_ints(a["dilation"]),
            group=int(a["groups"]),
        )

    def _linear(self, n: Node, a: dict) -> None:
        self.emit(
            n, "Gemm", [n.inputs[0], self.param(n, "weight"), self.param(n, "bias")], transB=1
        )

    def _affine(self, n: Node, a: dict) -> None:
        # Batch norm with mean 0, variance 1, epsilon 0 is exactly x * scale + shift.
        c = n.params["scale"].shape[0]
        ins = [
            n.inputs[0],
            self.param(n, "scale"),
            self.param(n, "shift"),
            self.param(n, "mean", np.zeros(c)),
            self.param(n, "var", np.ones(c)),
        ]
        self.emit(n, "BatchNormalization", ins, epsilon=0.0)

    def _relu(self, n: Node, a: dict) -> None:
        self.emit(n, "Relu", [n.inputs[0]])

    def _sigmoid(self, n: Node, a: dict) -> None:
        self.emit(n, "Sigmoid", [n.inputs[0]])

    def _softmax(self, n: Node, a: dict) -> None:
        self.emit(n, "Softmax", [n.inputs[0]], axis=int(a["axis"]))

    def _lrn(self, n: Node, a: dict) -> None:
        self.emit(
            n,
            "LRN",
            [n.inputs[0]],
            size=int(a["size"]),
            alpha=float(a["alpha"]),
            beta=float(a["beta"]),
            bias=float(a["bias"]),
        )

    def _clip(self, n: Node, a: dict) -> None:
        lo = self.param(n, "min", np.asarray(a.get("min", 0.0)))
        hi = self.param(n, "max", np.asarray(a["max"]))
        self.emit(n, "Clip", [n.inputs[0], lo, hi])

    def _pool_attrs(self, a: dict, dilation: bool) -> dict:
        out = dict(
            kernel_shape=_ints(a["kernel"]),
            strides=_ints(a["stride"]),
            pads=_ints(a["padding"]),
            ceil_mode=int(bool(a.get("ceil_mode", False))),
        )
        if dilation:
            out["dilations"] = _ints(a.get("dilation", (1, 1)))
        return out

    def _avgpool(self, n: Node, a: dict) -> None:
        self.emit(
            n,
            "AveragePool",
            [n.inputs[0]],
            **self._pool_attrs(a, False),
            count_include_pad=int(bool(a.get("count_include_pad", False))),
        )

    def _maxpool(self, n: Node, a: dict) -> None:
        self.emit(n, "MaxPool", [n.inputs[0]], **self._pool_attrs(a, True))

    def _hybrid_boundary(self, n: Node, a: dict) -> None:
        self.emit(n, "HybridBoundary", [n.inputs[0]], domain=SNN_DOMAIN, mode=a["mode"])

    def _maxpool_gate(self, n: Node, a: dict) -> None:
        self.emit(n, "MaxPoolGate", [n.inputs[0]], domain=SNN_DOMAIN, **self._pool_attrs(a, True))

    def _global_avgpool(self, n: Node, a: dict) -> None:
        self.emit(n, "GlobalAveragePool", [n.inputs[0]])

    def _add(self, n: Node, a: dict) -> None:
        self.emit(n, "Add" if len(n.inputs) == 2 else "Sum", list(n.inputs))

    def _concat(self, n: Node, a: dict) -> None:
        self.emit(n, "Concat", list(n.inputs), axis=int(a["axis"]))

    def _flatten(self, n: Node, a: dict) -> None:
        self.emit(n, "Flatten", [n.inputs[0]], axis=1)

    def _reshape(self, n: Node, a: dict) -> None:
        shape = numpy_helper.from_array(np.asarray([0, *a["shape"]], np.int64), f"{n.name}.shape")
        self.initializers.append(shape)
        self.emit(n, "Reshape", [n.inputs[0], shape.name])

    def _if_neuron(self, n: Node, a: dict) -> None:
        inputs = [n.inputs[0], self.param(n, "threshold")]
        # Optional inputs by position: an empty name stands for an absent bias.
        if "bias" in n.params or "potential" in n.params:
            inputs.append(self.param(n, "bias") if "bias" in n.params else "")
        if "potential" in n.params:
            inputs.append(self.param(n, "potential"))
        self.emit(
            n,
            "IF",
            inputs,
            domain=SNN_DOMAIN,
            **{k: (list(v) if isinstance(v, tuple) else v) for k, v in a.items()},
        )

    def _backres(self, n: Node, a: dict) -> None:
        """``snnconv.BackRes``: the body as a GRAPH attribute that reads the block input from
        the outer scope (its initializers inside it), plus ``repeats`` and ``mode``."""
        body = _Writer()
        names = set()
        for b in a["body"]:
            # a body node reads an earlier body node or, by any other name, the block input
            b = Node(
                b.name,
                b.op,
                [i if i in names else n.inputs[0] for i in b.inputs],
                b.attrs,
                b.params,
            )
            body.write(b)
            names.add(b.name)
        out = helper.make_tensor_value_info(a["body"][-1].name, onnx.TensorProto.FLOAT, None)
        subgraph = helper.make_graph(body.nodes, f"{n.name}.body", [], [out], body.initializers)
        self.emit(
            n,
            "BackRes",
            [n.inputs[0]],
            domain=SNN_DOMAIN,
            repeats=int(a["repeats"]),
            mode=a["mode"],
            body=subgraph,
        )
