"""BackRes: a block run R times with shared weights, from the torch module to the saved SNN."""

from __future__ import annotations

import functools
import io

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from nets import _randomise_bn, inputs
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from snnconv.convert import ConversionSettings, convert, prepare_ann
from snnconv.data import asset_path
from snnconv.describe import describe
from snnconv.graph import unroll
from snnconv.load import load_onnx
from snnconv.nn import BackRes
from snnconv.ops import ann_forward, macs, run_node
from snnconv.save import to_onnx
from snnconv.simulate import SimulationSettings, Simulator, simulate

R = 3


def _model(mode: str) -> nn.Module:
    torch.manual_seed(0)
    block = nn.Sequential(
        nn.Conv2d(4, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1)
    )
    block.append(nn.ReLU())
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.ReLU(),
        BackRes(block, repeats=R, mode=mode),
        nn.Flatten(),
        nn.Linear(4 * 8 * 8, 10),
    )
    return _randomise_bn(model, 0).eval()


def _export(model: nn.Module, training=torch.onnx.TrainingMode.PRESERVE) -> bytes:
    buf = io.BytesIO()
    torch.onnx.export(
        model,
        torch.rand(2, 1, 8, 8),
        buf,
        dynamo=False,
        opset_version=17,
        input_names=["x"],
        output_names=["y"],
        dynamic_axes={"x": {0: "b"}, "y": {0: "b"}},
        training=training,
    )
    return buf.getvalue()


@functools.cache
def _loaded(mode: str):
    model = _model(mode)
    data = _export(model)
    return model, data, load_onnx(data)


@functools.cache
def _converted(mode: str, threshold: str = "mse"):
    _, _, ann = _loaded(mode)
    x = inputs(ann.input_shape, 64)
    return ann, convert(ann, x, ConversionSettings(threshold=threshold)), x


def _backres(graph):
    blocks = [n for n in graph.nodes if n.op == "backres"]
    assert len(blocks) == 1, [(n.name, n.op) for n in graph.nodes]
    return blocks[0]


@pytest.mark.parametrize("mode", ["replace", "add"])
@pytest.mark.parametrize(
    "training", [torch.onnx.TrainingMode.PRESERVE, torch.onnx.TrainingMode.EVAL]
)
def test_export_folds_into_one_backres_node_matching_onnxruntime(mode, training):
    data = _export(_model(mode), training)
    graph = load_onnx(data)
    block = _backres(graph)
    assert (block.attrs["repeats"], block.attrs["mode"]) == (R, mode)
    x = inputs(graph.input_shape, 16)
    (ref,) = ort.InferenceSession(data, providers=["CPUExecutionProvider"]).run(None, {"x": x})
    ours, _ = ann_forward(graph, torch.as_tensor(x))
    np.testing.assert_allclose(ours.numpy(), ref, rtol=1e-4, atol=1e-5)


def _hand_built(how: str) -> onnx.ModelProto:
    """x -> [Conv -> Relu] x 3 -> Flatten -> Gemm, the conv weights shared by ``how``."""
    rng = np.random.default_rng(0)
    w = rng.normal(0, 0.3, (3, 3, 3, 3)).astype(np.float32)
    b = rng.normal(0, 0.1, 3).astype(np.float32)
    inits = [numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "B")]
    nodes, x = [], "x"
    for r in range(3):
        wn, bn = "W", "B"
        if how == "identity":
            nodes += [
                helper.make_node("Identity", ["W"], [f"W{r}"]),
                helper.make_node("Identity", ["B"], [f"B{r}"]),
            ]
            wn, bn = f"W{r}", f"B{r}"
        elif how == "copies":
            inits += [numpy_helper.from_array(w.copy(), f"W{r}")]
            inits += [numpy_helper.from_array(b.copy(), f"B{r}")]
            wn, bn = f"W{r}", f"B{r}"
        nodes += [
            helper.make_node("Conv", [x, wn, bn], [f"c{r}"], name=f"conv{r}", pads=[1, 1, 1, 1]),
            helper.make_node("Relu", [f"c{r}"], [f"r{r}"], name=f"relu{r}"),
        ]
        x = f"r{r}"
    inits += [
        numpy_helper.from_array(rng.normal(0, 0.1, (10, 48)).astype(np.float32), "G"),
        numpy_helper.from_array(np.zeros(10, np.float32), "GB"),
    ]
    nodes += [
        helper.make_node("Flatten", [x], ["f"], name="flat"),
        helper.make_node("Gemm", ["f", "G", "GB"], ["y"], name="fc", transB=1),
    ]
    g = helper.make_graph(
        nodes,
        "hand",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", 3, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["b", 10])],
        inits,
    )
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize("how", ["shared", "identity", "copies"])
def test_hand_built_repeats_fold_however_weights_are_shared(how):
    graph = load_onnx(_hand_built(how))  # verified against onnxruntime on load
    block = _backres(graph)
    assert block.attrs["repeats"] == 3 and block.attrs["mode"] == "replace"
    assert [b.name for b in block.attrs["body"]] == ["conv0", "relu0"]
    assert graph.param_count() == 3 * 3 * 9 + 3 + 480 + 10


def test_different_weights_do_not_fold():
    model = _hand_built("copies")
    w1 = next(t for t in model.graph.initializer if t.name == "W1")
    w1.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(w1) * 1.5, "W1"))
    graph = load_onnx(model)
    assert not any(n.op == "backres" for n in graph.nodes)


def test_params_count_once_and_macs_count_per_pass():
    model, _, graph = _loaded("add")
    assert graph.param_count() == sum(p.numel() for p in model.parameters())
    flat = unroll(graph)
    assert sum(p.size for n in flat.nodes for p in n.params.values()) > graph.param_count()
    m = macs(graph)
    body_convs = [b.name for b in _backres(graph).attrs["body"] if b.op == "conv"]
    for name in body_convs:
        per_pass = [m[f"{name}#{r}"] for r in range(1, R + 1)]
        assert len(set(per_pass)) == 1 and per_pass[0] == 4 * 9 * 4 * 64
    info = describe(graph)
    assert (info["physical_depth"], info["logical_depth"]) == (4, 2 + 2 * R)
    assert info["params_saved"] == (R - 1) * sum(p.numel() for p in model[2].parameters())


def test_a_backres_node_runs_on_its_own():
    _, _, graph = _loaded("add")
    block = _backres(graph)
    x = torch.as_tensor(inputs(graph.input_shape, 4))
    _, kept = ann_forward(graph, x, keep=[block.inputs[0], block.name])
    out = run_node(block, [kept[block.inputs[0]]])
    torch.testing.assert_close(out, kept[block.name])


def test_batch_norm_in_the_body_folds_once():
    _, _, graph = _loaded("replace")
    assert any(b.op == "affine" for b in _backres(graph).attrs["body"])
    folded = prepare_ann(graph)
    assert not any(b.op == "affine" for b in _backres(folded).attrs["body"])
    x = torch.as_tensor(inputs(graph.input_shape, 16))
    a, _ = ann_forward(graph, x)
    b, _ = ann_forward(folded, x)
    np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("mode", ["replace", "add"])
def test_thresholds_per_pass_and_snn_at_large_t_agrees_with_ann(mode):
    ann, snn, x = _converted(mode, "max")
    body = _backres(snn).attrs["body"]
    neurons = [b for b in body if b.op == "if_neuron"]
    assert neurons and all(b.params["threshold"].shape == (R, 1) for b in neurons)
    assert all(len(set(b.params["threshold"][:, 0].tolist())) == R for b in neurons)
    y = ann_forward(ann, torch.as_tensor(x))[0].argmax(1).numpy()
    report = simulate(snn, x, y, SimulationSettings(timesteps=256))
    assert report.ann_accuracy == 1.0
    assert report.snn_accuracy >= 0.95
    rows = {r.name for r in report.layers}
    for b in body:
        assert {f"{b.name}#{r}" for r in range(1, R + 1)} <= rows


def test_schedules_identical_and_synops_counted_per_pass():
    _, snn, x = _converted("add")
    sim = Simulator(snn)
    xb, yb = torch.as_tensor(x[:32]), torch.zeros(32, dtype=torch.long)
    layer, s1 = sim.run(xb, yb, 8, record=sim.neurons)
    step, s2 = sim.run(xb, yb, 8, chunk=1, record=sim.neurons)
    for name in sim.neurons:
        assert torch.equal(s1[name], s2[name]), name
    assert layer.synops.keys() == step.synops.keys()
    for name in layer.synops:
        np.testing.assert_array_equal(layer.synops[name], step.synops[name])
    conv = next(b.name for b in _backres(snn).attrs["body"] if b.op == "conv")
    assert {f"{conv}#{r}" for r in range(1, R + 1)} <= layer.synops.keys()


def test_save_load_round_trip_is_exact():
    _, snn, x = _converted("add")
    model = to_onnx(snn)
    onnx.checker.check_model(model)
    assert any(n.op_type == "BackRes" and n.domain == "snnconv" for n in model.graph.node)
    back = load_onnx(model.SerializeToString())
    a, b = _backres(snn), _backres(back)
    assert [n.name for n in back.nodes] == [n.name for n in snn.nodes]
    assert (b.attrs["repeats"], b.attrs["mode"]) == (a.attrs["repeats"], a.attrs["mode"])
    for n1, n2 in zip(a.attrs["body"], b.attrs["body"], strict=True):
        assert (n1.name, n1.op, n1.inputs) == (n2.name, n2.op, n2.inputs)
        assert n1.params.keys() == n2.params.keys()
        for k in n1.params:
            np.testing.assert_array_equal(n1.params[k], n2.params[k])
    assert to_onnx(back).SerializeToString() == model.SerializeToString()
    y = np.zeros(len(x), np.int64)
    r1 = simulate(snn, x[:32], y[:32], SimulationSettings(timesteps=8))
    r2 = simulate(back, x[:32], y[:32], SimulationSettings(timesteps=8))
    assert r1.synops_per_image == r2.synops_per_image
    assert r1.accuracy_per_step == r2.accuracy_per_step


def test_bundled_example_loads_as_backres():
    graph = load_onnx(asset_path("digits_backres.onnx"))
    block = _backres(graph)
    assert block.attrs["repeats"] == 3
    info = describe(graph)
    assert info["logical_depth"] > info["physical_depth"] and info["params_saved"] > 0


def test_torch_module_checks_its_arguments():
    with pytest.raises(ValueError, match="mode"):
        BackRes(nn.Identity(), 2, "sideways")
    with pytest.raises(ValueError, match="shape"):
        BackRes(nn.Conv2d(1, 2, 1), 2)(torch.zeros(1, 1, 2, 2))
