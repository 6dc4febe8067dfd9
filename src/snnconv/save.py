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
from snnconv.graph import BLOCK_OPS, Graph, Node
from snnconv.load.registry import SNN_DOMAIN
from snnconv.ops import SPECS, infer_shapes

OPSET = 17
IR_VERSION = 8  # what onnxruntime >= 1.17 reads at opset 17


def save_onnx(graph: Graph, path: str | Path, *, force: bool = False) -> None:
    """Write ``graph`` (ANN or SNN) to ``path`` as ONNX; refuse to overwrite unless ``force``."""
    check_writable(path, force=force)
    write_atomic(path, to_onnx(graph).SerializeToString(), force=force)


def to_onnx(graph: Graph) -> onnx.ModelProto:
    """The ONNX model of ``graph``, checked with ``onnx.checker``."""
    shapes = infer_shapes(graph)
    writer = Writer()
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
    if graph.is_snn or any(n.op in BLOCK_OPS for n in graph.nodes):
        opsets.append(helper.make_opsetid(SNN_DOMAIN, 1))
    opsets += [helper.make_opsetid(d, 1) for d in sorted({f.domain for f in writer.functions})]
    model = helper.make_model(
        g, opset_imports=opsets, producer_name="snnconv", functions=list(writer.functions)
    )
    model.ir_version = IR_VERSION
    helper.set_model_props(model, dict(graph.metadata))
    onnx.checker.check_model(model)
    return model


class Writer:
    """Accumulates ONNX nodes and initializers, one IR node at a time; each op's spec writes
    its own node (``OpSpec.write``)."""

    def __init__(self, functions: list[onnx.FunctionProto] | None = None) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        #: Model-local functions the nodes call (ops written as standard ops onnxruntime runs).
        self.functions: list[onnx.FunctionProto] = [] if functions is None else functions

    def function(self, proto: onnx.FunctionProto) -> None:
        """Define ``proto`` in the model (once, however many nodes call it)."""
        if all((f.domain, f.name) != (proto.domain, proto.name) for f in self.functions):
            self.functions.append(proto)

    def param(self, node: Node, key: str, value: np.ndarray | None = None) -> str:
        """A parameter of ``node`` (or ``value`` in its place) as a float32 initializer."""
        name = f"{node.name}.{key}"
        array = node.params[key] if value is None else value
        self.initializers.append(numpy_helper.from_array(np.asarray(array, np.float32), name))
        return name

    def constant(self, name: str, value: np.ndarray) -> str:
        """An initializer of ``value`` as it is (e.g. an int64 shape)."""
        self.initializers.append(numpy_helper.from_array(value, name))
        return name

    def emit(self, node: Node, op_type: str, inputs: list[str], domain: str = "", **attrs):
        self.nodes.append(
            helper.make_node(op_type, inputs, [node.name], name=node.name, domain=domain, **attrs)
        )

    def emit_snn(self, node: Node, op_type: str, inputs: list[str], **attrs):
        """A node of the ``snnconv`` domain."""
        self.emit(node, op_type, inputs, domain=SNN_DOMAIN, **attrs)

    def nested(self) -> Writer:
        """A writer for a subgraph (a block's body); its functions are the model's."""
        return Writer(self.functions)

    def write(self, node: Node) -> None:
        spec = SPECS.get(node.op)
        if spec is None:
            raise InputError(f"node {node.name!r}: op {node.op!r} cannot be saved as ONNX")
        spec.write(self, node)
