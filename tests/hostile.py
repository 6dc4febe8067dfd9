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


# --- malformed nodes: each breaks its op's schema or value ranges -------------------------


def _conv_with(**attrs) -> bytes:
    m = tiny_model()
    m.graph.node[0].attribute.extend(helper.make_attribute(k, v) for k, v in attrs.items())
    return m.SerializeToString()


def _after_relu(node: onnx.NodeProto, *, inits=(), opset: int = 13, domains=()) -> bytes:
    return tiny_model([node], inits=inits, opset=opset, domain_opsets=domains).SerializeToString()


def _const(name: str, values, dtype=np.float32) -> TensorProto:
    return numpy_helper.from_array(np.asarray(values, dtype), name)


def concat_without_axis() -> bytes:
    return _after_relu(helper.make_node("Concat", ["a", "a"], ["y"], name="cat"))


def lrn_without_size() -> bytes:
    return _after_relu(helper.make_node("LRN", ["a"], ["y"], name="norm"))


def conv_strides_zero() -> bytes:
    return _conv_with(strides=[0, 0])


def maxpool_without_kernel() -> bytes:
    return _after_relu(helper.make_node("MaxPool", ["a"], ["y"], name="pool"))


def maxpool_kernel_zero() -> bytes:
    return _after_relu(helper.make_node("MaxPool", ["a"], ["y"], name="pool", kernel_shape=[0, 0]))


def conv_negative_pads() -> bytes:
    return _conv_with(pads=[-1, -1, -1, -1])


def conv_pads_wrong_length() -> bytes:
    return _conv_with(pads=[1, 1])


def conv_dilations_zero() -> bytes:
    return _conv_with(dilations=[0, 1])


def conv_group_not_dividing() -> bytes:
    return _conv_with(group=3)


def conv_group_as_string() -> bytes:
    return _conv_with(group="2")


def conv_unknown_attribute() -> bytes:
    return _conv_with(speed=3)


def conv_kernel_not_the_weights() -> bytes:
    return _conv_with(kernel_shape=[3, 3])


def gemm_trans_a() -> bytes:
    flat = helper.make_node("Flatten", ["a"], ["f"], name="flat")
    gemm = helper.make_node("Gemm", ["f", "fcw"], ["y"], name="fc", transA=1)
    inits = [_const("fcw", np.ones((32, 3)))]
    return tiny_model([flat, gemm], inits=inits).SerializeToString()


def flatten_axis_out_of_range() -> bytes:
    return _after_relu(helper.make_node("Flatten", ["a"], ["y"], name="flat", axis=5))


def softmax_axis_out_of_range() -> bytes:
    return _after_relu(helper.make_node("Softmax", ["a"], ["y"], name="soft", axis=4))


def concat_axis_out_of_range() -> bytes:
    return _after_relu(helper.make_node("Concat", ["a", "a"], ["y"], name="cat", axis=-7))


def clip_min_above_max() -> bytes:
    node = helper.make_node("Clip", ["a", "lo", "hi"], ["y"], name="clip")
    return _after_relu(node, inits=[_const("lo", 0.0), _const("hi", -1.0)])


def reshape_impossible() -> bytes:
    node = helper.make_node("Reshape", ["a", "to"], ["y"], name="reshape")
    return _after_relu(node, inits=[_const("to", [0, 3, -1], np.int64)])  # 32 values per image


def reshape_zero_beside_minus_one() -> bytes:
    # allowzero keeps the 0 literal: no size fits the -1 (ZeroDivisionError before)
    node = helper.make_node("Reshape", ["a", "to"], ["y"], name="reshape", allowzero=1)
    return _after_relu(node, inits=[_const("to", [0, 0, -1], np.int64)], opset=14)


def batch_norm_wrong_scale_size() -> bytes:
    node = helper.make_node("BatchNormalization", ["a", "s", "b", "m", "v"], ["y"], name="bn")
    inits = [_const("s", np.ones(3)), _const("b", np.zeros(2))]
    inits += [_const("m", np.zeros(2)), _const("v", np.ones(2))]
    return _after_relu(node, inits=inits)


def _if_neuron(inputs=("a", "theta"), **attrs) -> bytes:
    attrs = {"reset": "subtract", "v0": 0.5} | attrs
    node = helper.make_node("IF", list(inputs), ["y"], name="spike", domain="snnconv")
    node.attribute.extend(helper.make_attribute(k, v) for k, v in attrs.items() if v is not None)
    return _after_relu(node, inits=[_const("theta", [1.0])], domains=["snnconv"])


def if_without_threshold() -> bytes:
    return _if_neuron(inputs=("a",))


def if_unknown_reset() -> bytes:
    return _if_neuron(reset="sometimes")


def if_without_v0() -> bytes:
    return _if_neuron(v0=None)


def hybrid_boundary_unknown_mode() -> bytes:
    node = helper.make_node("HybridBoundary", ["a"], ["y"], name="cut", domain="snnconv")
    node.attribute.append(helper.make_attribute("mode", "spiky"))
    return _after_relu(node, domains=["snnconv"])


def backres_zero_repeats() -> bytes:
    body = helper.make_graph(
        [helper.make_node("Relu", ["a"], ["body_out"], name="inner")],
        "body",
        [],
        [helper.make_tensor_value_info("body_out", TensorProto.FLOAT, None)],
    )
    node = helper.make_node(
        "BackRes", ["a"], ["y"], name="block", domain="snnconv", repeats=0, body=body
    )
    return _after_relu(node, domains=["snnconv"])


#: name -> (builder, a word the error message must contain, the node it must name or None)
HOSTILE = {
    "truncated file": (truncated, "not an ONNX model", None),
    "random bytes": (random_bytes, "not an ONNX model", None),
    "serialized TensorProto": (tensor_proto, "not an ONNX model", None),
    "serialized GraphProto": (graph_proto, "not an ONNX model", None),
    "missing initializer": (missing_initializer, "'w'", "conv"),
    "weight shape does not fit the conv": (wrong_weight_shape, "conv", "conv"),
    "cycle": (cycle, "cycle", "loop"),
    "conv weight declared 100000x100000x3x3": (huge_weight, "GB", None),
    "input declared 1x2x100000x100000": (huge_input, "GB", None),
    "ConstantOfShape 1x2x100000x100000": (huge_constant_of_shape, "GB", "fill"),
    "conv padding 50000 (80 GB activation)": (huge_activation, "GB", "conv"),
    "weight data shorter than declared": (short_weight_data, "does not fit", None),
    "attribute without a value": (attribute_without_value, "'pads' has no value", "conv"),
    "Conv without its weight input": (conv_without_weight, "too few inputs", "conv"),
    "unknown tensor data type": (unknown_data_type, "unknown data type 98", None),
    "conv bias of the wrong size": (
        wrong_bias_size,
        "bias has 3 values for 2 output channels",
        "conv",
    ),
    "NaN weights": (nan_weights, "NaN", "conv"),
    "Inf weights": (inf_weights, "Inf", "conv"),
    "external data ../../etc/passwd": (external_data_escape, "outside the model's folder", None),
    "unknown op domain": (unknown_domain, "acme", "foo"),
    "opset 9999": (absurd_opset, "9999", None),
    "Concat without axis": (concat_without_axis, "required attribute 'axis'", "cat"),
    "LRN without size": (lrn_without_size, "required attribute 'size'", "norm"),
    "Conv strides 0": (conv_strides_zero, "'strides' is [0, 0]", "conv"),
    "MaxPool without kernel_shape": (maxpool_without_kernel, "'kernel_shape'", "pool"),
    "MaxPool kernel_shape 0": (maxpool_kernel_zero, "'kernel_shape' is [0, 0]", "pool"),
    "Conv negative pads": (conv_negative_pads, "'pads' is [-1, -1, -1, -1]", "conv"),
    "Conv pads of the wrong length": (conv_pads_wrong_length, "'pads' has 2 values", "conv"),
    "Conv dilations 0": (conv_dilations_zero, "'dilations' is [0, 1]", "conv"),
    "Conv group not dividing the channels": (conv_group_not_dividing, "'group' is 3", "conv"),
    "Conv group given as a string": (conv_group_as_string, "'group' is of type STRING", "conv"),
    "Conv with an unknown attribute": (conv_unknown_attribute, "'speed' is not an", "conv"),
    "Conv kernel_shape not the weight's": (
        conv_kernel_not_the_weights,
        "weight's kernel is [1, 1]",
        "conv",
    ),
    "Gemm with transA on the input": (gemm_trans_a, "transA=1", "fc"),
    "Flatten axis out of range": (flatten_axis_out_of_range, "'axis' is 5", "flat"),
    "Softmax axis out of range": (softmax_axis_out_of_range, "'axis' is 4", "soft"),
    "Concat axis out of range": (concat_axis_out_of_range, "'axis' is -7", "cat"),
    "Clip with min above max": (clip_min_above_max, "min 0 is above max -1", "clip"),
    "Reshape to an impossible shape": (reshape_impossible, "cannot reshape", "reshape"),
    "Reshape with allowzero, 0 beside -1": (
        reshape_zero_beside_minus_one,
        "cannot reshape",
        "reshape",
    ),
    "BatchNormalization scale of the wrong size": (
        batch_norm_wrong_scale_size,
        "'scale' has 3 values",
        "bn",
    ),
    "snnconv.IF without its threshold": (if_without_threshold, "too few inputs (1)", "spike"),
    "snnconv.IF with an unknown reset": (if_unknown_reset, "'reset' is 'sometimes'", "spike"),
    "snnconv.IF without v0": (if_without_v0, "required attribute 'v0'", "spike"),
    "snnconv.HybridBoundary unknown mode": (hybrid_boundary_unknown_mode, "'spiky'", "cut"),
    "snnconv.BackRes with repeats 0": (backres_zero_repeats, "'repeats' is 0", "block"),
}
