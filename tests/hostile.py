"""Hostile ONNX files: each builder returns the bytes of one broken or malicious model.

Shared by the CLI-level refusal tests (test_reliability.py) and the docs' table.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from onnx_models import old_style_model, tiny_model


def _with_weight(array: np.ndarray) -> bytes:
    m = tiny_model()
    m.graph.initializer[0].CopyFrom(numpy_helper.from_array(array, "w"))
    return m.SerializeToString()


def _declared_only(name: str, dims: list[int]) -> TensorProto:
    """A float initializer that declares ``dims`` but carries (almost) no data."""
    t = TensorProto(name=name, data_type=TensorProto.FLOAT, dims=dims)
    t.raw_data = b"\x00" * 16
    return t


def truncated() -> bytes:
    return old_style_model()[:300]


def random_bytes() -> bytes:
    return np.random.default_rng(0).bytes(400)


def tensor_proto() -> bytes:
    return numpy_helper.from_array(np.ones((3, 3), np.float32), "t").SerializeToString()


def graph_proto() -> bytes:
    return tiny_model().graph.SerializeToString()


def missing_initializer() -> bytes:
    m = tiny_model()
    del m.graph.initializer[:]
    return m.SerializeToString()


def wrong_weight_shape() -> bytes:
    # The conv's input has 2 channels; this weight expects 5.
    return _with_weight(np.ones((2, 5, 1, 1), np.float32))


def cycle() -> bytes:
    return tiny_model([helper.make_node("Add", ["a", "y"], ["y"], name="loop")]).SerializeToString()


def huge_weight() -> bytes:
    m = tiny_model()
    m.graph.initializer[0].CopyFrom(_declared_only("w", [100000, 100000, 3, 3]))
    return m.SerializeToString()


def huge_input() -> bytes:
    return tiny_model(input_dims=("N", 2, 100000, 100000)).SerializeToString()


def huge_constant_of_shape() -> bytes:
    shape = numpy_helper.from_array(np.array([1, 2, 100000, 100000], np.int64), "shape")
    nodes = [
        helper.make_node("ConstantOfShape", ["shape"], ["big"], name="fill"),
        helper.make_node("Add", ["a", "big"], ["y"], name="plus"),
    ]
    return tiny_model(nodes, inits=[shape]).SerializeToString()


def huge_activation() -> bytes:
    m = tiny_model()
    m.graph.node[0].attribute.append(helper.make_attribute("pads", [50000] * 4))
    return m.SerializeToString()


def short_weight_data() -> bytes:
    m = tiny_model()
    m.graph.initializer[0].CopyFrom(_declared_only("w", [2, 2, 1, 1]))
    m.graph.initializer[0].raw_data = b"\x00" * 12  # 3 floats for 4 declared
    return m.SerializeToString()


def attribute_without_value() -> bytes:
    # Found by fuzzing: one flipped byte left Conv's 'pads' with no type and no value.
    m = tiny_model()
    m.graph.node[0].attribute.append(onnx.AttributeProto(name="pads"))
    return m.SerializeToString()


def conv_without_weight() -> bytes:
    m = tiny_model()
    del m.graph.node[0].input[1:]
    return m.SerializeToString()


def unknown_data_type() -> bytes:
    m = tiny_model()
    m.graph.initializer[0].data_type = 98
    return m.SerializeToString()


def wrong_bias_size() -> bytes:
    m = tiny_model()
    m.graph.node[0].input.append("b")
    m.graph.initializer.append(numpy_helper.from_array(np.zeros(3, np.float32), "b"))
    return m.SerializeToString()


def nan_weights() -> bytes:
    w = np.ones((2, 2, 1, 1), np.float32)
    w[1, 0, 0, 0] = np.nan
    return _with_weight(w)


def inf_weights() -> bytes:
    w = np.ones((2, 2, 1, 1), np.float32)
    w[0, 1, 0, 0] = np.inf
    return _with_weight(w)


def external_data_escape() -> bytes:
    m = tiny_model()
    t = m.graph.initializer[0]
    t.ClearField("raw_data")
    t.data_location = TensorProto.EXTERNAL
    t.external_data.add(key="location", value="../../etc/passwd")
    return m.SerializeToString()


def unknown_domain() -> bytes:
    node = helper.make_node("Foo", ["a"], ["y"], name="foo", domain="acme")
    return tiny_model([node], domain_opsets=["acme"]).SerializeToString()


def absurd_opset() -> bytes:
    return tiny_model(opset=9999).SerializeToString()


#: name -> (builder, a word the error message must contain)
HOSTILE = {
    "truncated file": (truncated, "not an ONNX model"),
    "random bytes": (random_bytes, "not an ONNX model"),
    "serialized TensorProto": (tensor_proto, "not an ONNX model"),
    "serialized GraphProto": (graph_proto, "not an ONNX model"),
    "missing initializer": (missing_initializer, "'w'"),
    "weight shape does not fit the conv": (wrong_weight_shape, "conv"),
    "cycle": (cycle, "cycle"),
    "conv weight declared 100000x100000x3x3": (huge_weight, "GB"),
    "input declared 1x2x100000x100000": (huge_input, "GB"),
    "ConstantOfShape 1x2x100000x100000": (huge_constant_of_shape, "GB"),
    "conv padding 50000 (80 GB activation)": (huge_activation, "GB"),
    "weight data shorter than declared": (short_weight_data, "does not fit"),
    "attribute without a value": (attribute_without_value, "'pads' has no value"),
    "Conv without its weight input": (conv_without_weight, "too few inputs"),
    "unknown tensor data type": (unknown_data_type, "unknown data type 98"),
    "conv bias of the wrong size": (wrong_bias_size, "bias has 3 values for 2 output channels"),
    "NaN weights": (nan_weights, "NaN"),
    "Inf weights": (inf_weights, "Inf"),
    "external data ../../etc/passwd": (external_data_escape, "outside the model's folder"),
    "unknown op domain": (unknown_domain, "acme"),
    "opset 9999": (absurd_opset, "9999"),
}
