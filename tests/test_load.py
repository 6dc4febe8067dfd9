"""The ONNX loader: what it accepts (checked against onnxruntime) and how it refuses."""

from __future__ import annotations

import hashlib

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from onnx_models import INPUT_SHAPE, Net, export, old_style_model, ort_run, tiny_model

from snnconv.errors import InputError, UnsupportedOpsError
from snnconv.load import load_model, load_onnx
from snnconv.load.registry import HANDLERS
from snnconv.ops import ann_forward


def _matches_ort(graph, model_bytes: bytes, input_shape, seed: int = 7) -> None:
    x = np.random.default_rng(seed).random((3, *input_shape), dtype=np.float32)
    ours, _ = ann_forward(graph, torch.from_numpy(x))
    ref = ort_run(model_bytes, x)
    # The trailing softmax is dropped: compare the class each gives.
    assert np.array_equal(ours.numpy().argmax(1), ref.argmax(1))


@pytest.fixture(scope="module")
def net() -> Net:
    torch.manual_seed(0)
    return Net().eval()


@pytest.mark.parametrize(("dynamo", "opset"), [(True, 18), (True, 21), (False, 13), (False, 17)])
def test_torch_exports_load_and_match_onnxruntime(net, dynamo, opset):
    data = export(net, dynamo=dynamo, opset=opset)
    graph = load_onnx(data)
    assert graph.metadata["verify_ok"] == "true"
    assert graph.input_shape == INPUT_SHAPE
    ops = {n.op for n in graph.nodes}
    assert {"conv", "relu", "clip", "add", "maxpool", "avgpool", "concat", "linear"} <= ops
    assert "global_avgpool" in ops
    assert "Softmax" in graph.metadata["dropped_trailing_op"]
    _matches_ort(graph, data, INPUT_SHAPE)
    with torch.no_grad():
        x = torch.rand(3, *INPUT_SHAPE)
        logits, _ = ann_forward(graph, x)
        assert torch.equal(logits.argmax(1), net(x).argmax(1))


def test_old_converter_style_model():
    data = old_style_model()
    graph = load_onnx(data)
    assert float(graph.metadata["verify_max_rel_diff"]) < 1e-4
    ops = [n.op for n in graph.nodes]
    # Mul+Add by per-channel constants is one affine; MatMul+Add is one linear.
    assert ops.count("affine") == 1 and ops.count("linear") == 1
    assert graph.node("conv1").attrs["padding"] == (1, 0, 2, 1)
    assert graph.node("pool").attrs["padding"] == (0, 0, 1, 1)
    x = np.random.default_rng(3).random((5, 1, 7, 7), dtype=np.float32)
    ours, _ = ann_forward(graph, torch.from_numpy(x))
    np.testing.assert_allclose(ours.numpy(), ort_run(data, x), rtol=1e-4, atol=1e-5)


def test_provenance_metadata(tmp_path):
    path = tmp_path / "old.onnx"
    path.write_bytes(old_style_model())
    graph = load_model(path)
    assert graph.metadata["source_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert graph.metadata["source_name"] == "old.onnx"


def test_external_data_in_the_model_folder_loads(tmp_path):
    model = onnx.load_from_string(old_style_model())
    onnx.save(
        model,
        tmp_path / "m.onnx",
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location="m.data",
        size_threshold=0,
    )
    assert load_onnx(tmp_path / "m.onnx").metadata["verify_ok"] == "true"


def test_unsupported_ops_are_all_listed():
    model = tiny_model(
        [
            helper.make_node("Tanh", ["a"], ["l"], name="squash"),
            helper.make_node("Relu", ["l"], ["r"], name="after"),
            helper.make_node("Erf", ["r"], ["y"], name="gate"),
        ],
        op="Relu",
    )
    with pytest.raises(UnsupportedOpsError) as err:
        load_onnx(model)
    assert err.value.nodes == [("squash", "Tanh"), ("gate", "Erf")]
    assert "cut the model" in str(err.value)


def test_softmax_inside_the_model_loads_as_an_ann_only_op():
    model = tiny_model([helper.make_node("Relu", ["a"], ["y"], name="r")], op="Softmax")
    graph = load_onnx(model)  # verified against onnxruntime
    assert [n.op for n in graph if n.name == "act"] == ["softmax"]


def test_clip_with_nonzero_min_is_unsupported():
    inits = [numpy_helper.from_array(np.array(-1, np.float32), "lo")]
    model = tiny_model([helper.make_node("Clip", ["a", "lo"], ["y"], name="clip")], inits=inits)
    with pytest.raises(UnsupportedOpsError, match="min=-1"):
        load_onnx(model)


def test_verification_names_the_first_diverging_node(monkeypatch):
    def wrong_relu(ctx, node):
        ctx.add("clip", [ctx.act(node.input[0])], {"min": 0.0, "max": 0.01})

    monkeypatch.setitem(HANDLERS, ("", "Relu"), wrong_relu)
    with pytest.raises(InputError, match="first diverging node 'relu1'"):
        load_onnx(old_style_model())


def _nan_weights():
    m = tiny_model()
    m.graph.initializer[0].CopyFrom(
        numpy_helper.from_array(np.full((2, 2, 1, 1), np.nan, np.float32), "w")
    )
    return m.SerializeToString()


def _missing_weight():
    m = tiny_model()
    del m.graph.initializer[:]
    return m.SerializeToString()


def _cycle():
    m = tiny_model([helper.make_node("Add", ["a", "y"], ["y"], name="loop")])
    return m.SerializeToString()


def _outside_external_data(tmp_path):
    m = tiny_model()
    t = m.graph.initializer[0]
    t.ClearField("raw_data")
    t.data_location = TensorProto.EXTERNAL
    t.external_data.add(key="location", value="../../etc/passwd")
    return m.SerializeToString()


def _conv1d():
    m = tiny_model(input_dims=("N", 2, 4))
    m.graph.initializer[0].CopyFrom(numpy_helper.from_array(np.ones((2, 2, 1), np.float32), "w"))
    return m.SerializeToString()


BROKEN = {
    "random bytes": lambda tmp: np.random.default_rng(0).bytes(300),
    "empty file": lambda tmp: b"",
    "truncated": lambda tmp: old_style_model()[:200],
    "not a model": lambda tmp: numpy_helper.from_array(np.ones(3, np.float32)).SerializeToString(),
    "missing initializer": lambda tmp: _missing_weight(),
    "cycle": lambda tmp: _cycle(),
    "nan weights": lambda tmp: _nan_weights(),
    "external data outside": _outside_external_data,
    "unknown domain": lambda tmp: tiny_model(
        [helper.make_node("Foo", ["a"], ["y"], name="foo", domain="acme")], domain_opsets=["acme"]
    ).SerializeToString(),
    "symbolic height": lambda tmp: tiny_model(input_dims=("N", 2, "h", 4)).SerializeToString(),
    "conv1d": lambda tmp: _conv1d(),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_files_give_one_clear_input_error(tmp_path, case):
    path = tmp_path / "bad.onnx"
    path.write_bytes(BROKEN[case](tmp_path))
    with pytest.raises(InputError) as err:
        load_onnx(path)
    assert "bad.onnx" in str(err.value)
    assert not isinstance(err.value, UnsupportedOpsError)


def test_missing_file():
    with pytest.raises(InputError, match="no such file"):
        load_onnx("/nonexistent/model.onnx")


def _variant(nodes, inits, opset, in_dims=("N", 2, 5, 5), out_dims=None) -> bytes:
    graph = helper.make_graph(
        nodes,
        "variant",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(in_dims))],
        [helper.make_tensor_value_info(nodes[-1].output[0], TensorProto.FLOAT, out_dims)],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in inits.items()],
    )
    return helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", opset)]
    ).SerializeToString()


_W = np.random.default_rng(5).standard_normal((2, 2, 3, 3)).astype(np.float32)
_G = np.random.default_rng(6).standard_normal((2, 3)).astype(np.float32)
VARIANTS = {
    "gemm transB=0 alpha beta": _variant(
        [
            helper.make_node("GlobalAveragePool", ["x"], ["g"]),
            helper.make_node("Flatten", ["g"], ["f"], axis=1),
            helper.make_node("Gemm", ["f", "G", "C"], ["y"], alpha=0.5, beta=2.0),
        ],
        {"G": _G, "C": np.float32([[1, 2, 3]])},
        13,
    ),
    "reduce mean axes input keepdims": _variant(
        [
            helper.make_node("ReduceMean", ["x", "axes"], ["m"], keepdims=1),
            helper.make_node("Reshape", ["m", "shape"], ["y"]),
        ],
        {"axes": np.int64([-1, -2]), "shape": np.int64([0, -1])},
        18,
    ),
    "clip attributes opset 9 and same_lower conv": _variant(
        [
            helper.make_node("Conv", ["x", "W"], ["c"], auto_pad="SAME_LOWER", strides=[2, 2]),
            helper.make_node("Clip", ["c"], ["y"], min=0.0, max=0.5),
        ],
        {"W": _W},
        9,
    ),
    "clip to inf is relu; avgpool count_include_pad": _variant(
        [
            helper.make_node("Clip", ["x", "lo", ""], ["r"]),
            helper.make_node(
                "AveragePool",
                ["r"],
                ["y"],
                kernel_shape=[3, 3],
                strides=[2, 2],
                pads=[1, 0, 0, 1],
                count_include_pad=1,
                ceil_mode=1,
            ),
        ],
        {"lo": np.float32(0)},
        19,
    ),
}


@pytest.mark.parametrize("case", sorted(VARIANTS))
def test_op_variants_match_onnxruntime(case):
    data = VARIANTS[case]
    graph = load_onnx(data)
    x = np.random.default_rng(1).random((3, 2, 5, 5), dtype=np.float32)
    ours, _ = ann_forward(graph, torch.from_numpy(x))
    ref = ort_run(data, x)
    np.testing.assert_allclose(ours.numpy().reshape(ref.shape), ref, rtol=1e-4, atol=1e-5)


# --- one error policy for every node --------------------------------------------------------


def _failing(exc: Exception):
    def handler(ctx, node):
        raise exc

    return handler


@pytest.mark.parametrize(
    ("op", "exc", "expected"),
    [
        ("Relu", ZeroDivisionError("integer division or modulo by zero"), "ZeroDivisionError"),
        ("Relu", ValueError("bad value"), "ValueError: bad value"),
        ("Concat", KeyError("axis"), "attribute 'axis' is missing"),
        ("Relu", InputError("the node is odd"), "the node is odd"),
    ],
)
def test_any_handler_failure_is_an_input_error_naming_file_and_node(
    tmp_path, monkeypatch, op, exc, expected
):
    monkeypatch.setitem(HANDLERS, ("", op), _failing(exc))
    extra = [helper.make_node("Concat", ["a", "a"], ["y"], name="cat", axis=1)]
    path = tmp_path / "bad.onnx"
    path.write_bytes(tiny_model(extra).SerializeToString())
    with pytest.raises(InputError) as err:
        load_onnx(path)
    node = "node 'act' (Relu)" if op == "Relu" else "node 'cat' (Concat)"
    assert str(err.value).startswith(f"bad.onnx: {node}: ")
    assert expected in str(err.value)


def test_every_range_rule_names_an_attribute_of_its_op():
    from snnconv.load.ranges import RULES
    from snnconv.load.schema import interface

    for (domain, op), rules in RULES.items():
        # Clip's bounds are attributes before opset 11, inputs after it
        known = {
            a
            for opset in (10, onnx.defs.onnx_opset_version())
            for a in interface(domain, op, opset).attributes
        }
        for rule in rules:
            for field in ("attr", "low_attr", "high_attr"):
                attr = getattr(rule, field, None)
                assert attr is None or attr in known, (op, attr)


def test_a_valid_model_passes_the_schema_of_its_own_opset():
    # opset 9 BatchNormalization and Clip take attributes opset 13 does not know
    graph = load_onnx(old_style_model())
    assert graph.metadata["verify_ok"] == "true"
