"""Small models for the loader/saver tests: torch modules and hand-built ONNX graphs."""

from __future__ import annotations

import io
import warnings

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn


class Net(nn.Module):
    """Conv, batch norm, ReLU/ReLU6, pooling (ceil_mode, padding), residual add, concat,
    mean over H,W, dropout, linear and a trailing softmax."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1, groups=2)
        self.maxpool = nn.MaxPool2d(2, ceil_mode=True)
        self.avgpool = nn.AvgPool2d(3, 2, padding=1, count_include_pad=False)
        self.avgpool2 = nn.AvgPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(8, 6, 2, stride=2, dilation=1)
        self.drop = nn.Dropout(0.3)
        self.fc1 = nn.Linear(6 + 6 * 2 * 2, 12)
        self.fc2 = nn.Linear(12, 5)
        with torch.no_grad():
            self.bn.running_mean.uniform_(-0.5, 0.5)
            self.bn.running_var.uniform_(0.5, 2.0)
            self.bn.weight.uniform_(0.5, 1.5)

    def forward(self, x):
        x = torch.relu(self.bn(self.conv1(x)))
        y = nn.functional.relu6(self.conv2(x))
        x = self.maxpool(x + y)
        x = torch.cat([self.avgpool(x), self.avgpool2(x)], 1)
        x = self.conv3(x)
        pooled = x.mean((2, 3))
        x = torch.cat([pooled, x.reshape(x.size(0), -1)], 1)
        x = torch.relu(self.fc1(self.drop(x)))
        return torch.softmax(self.fc2(x), -1)


INPUT_SHAPE = (1, 15, 15)


def export(model: nn.Module, input_shape=INPUT_SHAPE, *, dynamo: bool, opset: int) -> bytes:
    """ONNX bytes of ``model`` with a dynamic batch axis, by either torch exporter."""
    model.eval()
    x = torch.rand(2, *input_shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dynamo:
            program = torch.onnx.export(
                model,
                (x,),
                dynamo=True,
                opset_version=opset,
                verbose=False,
                dynamic_shapes=({0: torch.export.Dim("batch")},),
            )
            return program.model_proto.SerializeToString()
        buf = io.BytesIO()
        torch.onnx.export(
            model,
            (x,),
            buf,
            dynamo=False,
            opset_version=opset,
            input_names=["input"],
            dynamic_axes={"input": {0: "batch"}},
        )
        return buf.getvalue()


def ort_run(model: bytes, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    sess = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


def _init(name: str, array) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(array), name)


def old_style_model() -> bytes:
    """An opset-9 graph as older converters wrote them: Sum, batch norm as Mul/Add by
    per-channel constants, a ConstantOfShape weight, initializers listed as graph inputs,
    asymmetric pads, SAME_UPPER pooling and a Shape->Gather->Unsqueeze->Concat reshape."""
    rng = np.random.default_rng(1)
    w1 = rng.standard_normal((3, 1, 3, 3)).astype(np.float32)
    scale = rng.uniform(0.5, 1.5, (1, 3, 1, 1)).astype(np.float32)
    shift = rng.uniform(-0.5, 0.5, (3, 1, 1)).astype(np.float32)
    fc = rng.standard_normal((3 * 4 * 3, 4)).astype(np.float32)
    inits = [
        _init("w1", w1),
        _init("scale", scale),
        _init("shift", shift),
        _init("fc", fc),
        _init("fcb", rng.standard_normal(4).astype(np.float32)),
        _init("zshape", np.array([3], np.int64)),
        _init("zero", np.array(0, np.int64)),
        _init("minus1", np.array([-1], np.int64)),
    ]
    nodes = [
        helper.make_node(
            "ConstantOfShape",
            ["zshape"],
            ["b1"],
            name="bias_zeros",
            value=helper.make_tensor("v", TensorProto.FLOAT, [1], [0.0]),
        ),
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", pads=[1, 0, 2, 1]),
        helper.make_node("Mul", ["c1", "scale"], ["bn_mul"], name="bn_mul"),
        helper.make_node("Add", ["bn_mul", "shift"], ["bn"], name="bn_add"),
        helper.make_node("Relu", ["bn"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "w1_3"], ["c2"], name="conv2", pads=[1, 1, 1, 1]),
        helper.make_node("Sum", ["r1", "c2", "r1"], ["s"], name="sum"),
        helper.make_node(
            "MaxPool",
            ["s"],
            ["p"],
            name="pool",
            kernel_shape=[3, 3],
            strides=[2, 2],
            auto_pad="SAME_UPPER",
        ),
        helper.make_node("Shape", ["p"], ["shp"], name="shape"),
        helper.make_node("Gather", ["shp", "zero"], ["n"], name="gather", axis=0),
        helper.make_node("Unsqueeze", ["n"], ["n1"], name="unsqueeze", axes=[0]),
        helper.make_node("Concat", ["n1", "minus1"], ["target"], name="concat", axis=0),
        helper.make_node("Reshape", ["p", "target"], ["flat"], name="reshape"),
        helper.make_node("MatMul", ["flat", "fc"], ["mm"], name="matmul"),
        helper.make_node("Add", ["mm", "fcb"], ["y"], name="fc_bias"),
    ]
    w2 = rng.standard_normal((3, 3, 3, 3)).astype(np.float32) * 0.3
    inits.append(_init("w1_3", w2))
    graph_inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 7, 7])]
    graph_inputs += [
        helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)) for t in inits
    ]
    graph = helper.make_graph(
        nodes,
        "old",
        graph_inputs,
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 9)])
    model.ir_version = 4
    onnx.checker.check_model(model)
    return model.SerializeToString()


def tiny_model(
    extra_nodes=(), *, op="Relu", opset=13, inits=(), input_dims=("N", 2, 4, 4), domain_opsets=()
) -> onnx.ModelProto:
    """x -> Conv -> ``op`` -> (extra nodes) -> y, for error-path tests."""
    rng = np.random.default_rng(0)
    w = _init("w", rng.standard_normal((2, 2, 1, 1)).astype(np.float32))
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
        helper.make_node(op, ["c"], ["a"], name="act"),
        *extra_nodes,
    ]
    out = nodes[-1].output[0]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(input_dims))],
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, None)],
        [w, *inits],
    )
    opsets = [helper.make_opsetid("", opset), *(helper.make_opsetid(d, 1) for d in domain_opsets)]
    return helper.make_model(graph, opset_imports=opsets)
