"""snnconv prepare (QCFS): the quantised ANN is what onnxruntime runs from the file, and the
binary-IF SNN converted from it reproduces it at T = L."""

from __future__ import annotations

import io

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from nets import graph_of, inputs

from snnconv.convert import ConversionSettings, convert, prepared_defaults, to_ann
from snnconv.data import asset_path, load_dataset
from snnconv.errors import InputError
from snnconv.finetune.prepare import PrepareSettings, ann_accuracy, prepare, to_qcfs
from snnconv.graph import Graph, Node, all_nodes
from snnconv.load import load_onnx
from snnconv.nn import BackRes
from snnconv.ops import ann_forward
from snnconv.ops.qcfs import quantise
from snnconv.save import to_onnx
from snnconv.simulate import SimulationSettings, Simulator, simulate
from snnconv.simulate.engine import OUTPUT

L = 4


def _labelled(graph: Graph, n: int = 128, seed: int = 1):
    x = inputs(graph.input_shape, n, seed)
    return x, ann_forward(graph, torch.as_tensor(x))[0].argmax(1).numpy()


@pytest.mark.parametrize("kind", ["vgg", "residual", "mlp"])
@pytest.mark.parametrize("per_channel", [False, True])
def test_written_model_is_the_prepared_ann_in_onnxruntime(kind, per_channel):
    g = to_qcfs(graph_of(kind), inputs(graph_of(kind).input_shape, 64), L, per_channel=per_channel)
    model = to_onnx(g)
    onnx.checker.check_model(model, full_check=True)
    assert {f.name for f in model.functions} == {"QCFS"}
    x = inputs(g.input_shape, 16, seed=5)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    ref = sess.run(None, {g.input_name: x})[0]
    ours = ann_forward(g, torch.as_tensor(x))[0].numpy()
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-6)
    back = load_onnx(model.SerializeToString())  # verified against onnxruntime on load
    assert back.metadata["verify_ok"] == "true"
    qcfs = [n for n in back if n.op == "qcfs"]
    assert qcfs and all(n.attrs["levels"] == L for n in qcfs)
    for n in qcfs:
        np.testing.assert_array_equal(n.params["threshold"], g.node(n.name).params["threshold"])
        assert (n.params["threshold"].size > 1) == per_channel


def test_quantise_is_the_clip_floor_shift_and_passes_gradient_straight_through():
    x = torch.tensor([-1.0, 0.0, 0.1, 0.13, 0.5, 0.9, 1.0, 3.0], requires_grad=True)
    lam = torch.tensor([1.0])
    y = quantise(x, lam, 4)
    expected = torch.tensor([0.0, 0.0, 0.0, 0.25, 0.5, 1.0, 1.0, 1.0])  # floor(4x + 1/2) / 4
    torch.testing.assert_close(y.detach(), expected)
    y.sum().backward()
    # inside [0, L] before the clip the gradient is 1, outside 0
    torch.testing.assert_close(x.grad, torch.tensor([0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0]))


def _even_net() -> Graph:
    """Non-negative weights and biases, and each λ at least the largest current one step of
    spikes can bring: no membrane falls below 0 or gets two spikes' worth in one step, the
    cases where the QCFS analysis says the SNN at T = L departs from the quantised ANN."""
    rng = np.random.default_rng(0)
    w1 = rng.random((4, 1, 3, 3), dtype=np.float32) * 0.3
    w2 = rng.random((6, 4, 3, 3), dtype=np.float32) * 0.1
    w3 = rng.random((10, 6 * 4 * 4), dtype=np.float32) * 0.02
    b = lambda c: rng.random(c, dtype=np.float32) * 0.05  # noqa: E731
    lam1 = np.float32(9 * 0.3 + 0.05)  # the input is in [0, 1): at most this per step
    lam2 = np.float32(w2.sum((1, 2, 3)).max() * lam1 + 0.05)
    pad = {"stride": (1, 1), "padding": (1, 1, 1, 1), "dilation": (1, 1), "groups": 1}
    pool = {"kernel": (2, 2), "stride": (2, 2), "padding": (0, 0, 0, 0), "ceil_mode": False,
            "count_include_pad": False}  # fmt: skip
    nodes = [
        Node("c1", "conv", ["x"], pad, {"weight": w1, "bias": b(4)}),
        Node("q1", "qcfs", ["c1"], {"levels": L}, {"threshold": np.full(4, lam1 * 0.7)}),
        Node("c2", "conv", ["q1"], pad, {"weight": w2, "bias": b(6)}),
        Node("q2", "qcfs", ["c2"], {"levels": L}, {"threshold": np.array([lam2], np.float32)}),
        Node("p", "avgpool", ["q2"], pool),
        Node("f", "flatten", ["p"]),
        Node("fc", "linear", ["f"], {}, {"weight": w3, "bias": b(10)}),
    ]
    for n in nodes:
        n.params = {k: np.asarray(v, np.float32) for k, v in n.params.items()}
    g = Graph(nodes, "x", (1, 8, 8), "fc")
    g.validate()
    return g


def test_snn_at_t_equal_l_reproduces_the_quantised_ann_layer_by_layer():
    g = _even_net()
    x = inputs(g.input_shape, 64)
    snn = convert(g, x, ConversionSettings(**{**prepared_defaults(g), "calibrate": "none"}))
    neurons = [n for n in snn if n.op == "if_neuron"]
    assert all(n.attrs["v0"] == 0.5 and n.attrs["reset"] == "subtract" for n in neurons)
    _, acts = ann_forward(g, torch.as_tensor(x), keep=["q1", "q2"])
    sim = Simulator(snn)
    _, spikes = sim.run(torch.as_tensor(x), torch.zeros(len(x), dtype=torch.long), L,
                        record=["q1", "q2", OUTPUT])  # fmt: skip
    for n in neurons:
        rates = spikes[n.name].view((L, len(x)) + acts[n.name].shape[1:]).sum(0) / L
        theta = torch.as_tensor(n.params["threshold"]).view(1, -1, 1, 1)
        torch.testing.assert_close(rates * theta, acts[n.name], rtol=0, atol=1e-5)
    out = spikes[OUTPUT].view(L, len(x), -1)[-1]
    torch.testing.assert_close(out, ann_forward(g, torch.as_tensor(x))[0], rtol=0, atol=1e-5)


@pytest.fixture(scope="module")
def prepared_vgg():
    """The bundled digits CNN (conv, max pool, BN), prepared at L = 2 on bundled digits."""
    g = load_onnx(asset_path("digits_cnn.onnx"))
    ds = load_dataset("digits", split="train", limit=512)
    prepared, history = prepare(g, ds.x, ds.y, PrepareSettings(levels=2, epochs=3, lr=1e-3))
    return g, prepared, history, ds.x, ds.y


def test_prepare_trains_the_quantised_ann_and_records_lambda_and_l(prepared_vgg):
    g, prepared, history, x, y = prepared_vgg
    start = to_qcfs(g, x, 2)
    assert ann_accuracy(prepared, x, y) > ann_accuracy(start, x, y)
    assert history.loss[-1] < history.loss[0]
    assert len(history.seconds) == 3
    assert "snnconv.prepare" in prepared.metadata
    moved = [
        n.name
        for n in prepared
        if n.op == "qcfs"
        and not np.allclose(n.params["threshold"], start.node(n.name).params["threshold"])
    ]
    assert moved  # λ trains
    assert not any(n.op == "affine" for n in prepared)  # batch norm folded


def test_convert_of_a_prepared_model_takes_lambda_and_its_twin_is_the_prepared_ann(prepared_vgg):
    _, prepared, _, x, y = prepared_vgg
    back = load_onnx(to_onnx(prepared).SerializeToString())
    defaults = prepared_defaults(back)
    assert defaults["threshold"] == "qcfs" and defaults["neuron"] == "if"
    assert defaults["target_timesteps"] == 2
    snn = convert(back, x, ConversionSettings(**{**defaults, "calibrate": "none"}))
    for n in all_nodes(snn.nodes):
        if n.op == "if_neuron":
            lam = back.node(n.name).params["threshold"]
            np.testing.assert_array_equal(n.params["threshold"], lam)
            assert n.attrs["qcfs_levels"] == 2
    twin = to_ann(load_onnx(to_onnx(snn).SerializeToString()))
    torch.testing.assert_close(
        ann_forward(twin, torch.as_tensor(x))[0], ann_forward(back, torch.as_tensor(x))[0]
    )
    r = simulate(snn, x, y, SimulationSettings(timesteps=16))
    assert r.ann_accuracy == pytest.approx(ann_accuracy(back, x, y))
    assert r.snn_accuracy > 0.5


def test_qcfs_thresholds_need_a_prepared_model():
    g = graph_of("mlp")
    with pytest.raises(InputError, match="snnconv prepare"):
        convert(g, inputs(g.input_shape, 16), ConversionSettings(threshold="qcfs"))
    assert prepared_defaults(g) == {}


def test_prepare_refuses_an_snn_and_a_prepared_model():
    g = graph_of("mlp")
    x, y = _labelled(g, 32)
    prepared, _ = prepare(g, x, y, PrepareSettings(epochs=1))
    with pytest.raises(InputError, match="already prepared"):
        prepare(prepared, x, y)
    snn = convert(g, x, ConversionSettings(neuron="if", calibrate="none"))
    with pytest.raises(InputError, match="spiking"):
        prepare(snn, x, y)
    with pytest.raises(InputError, match="--levels"):
        prepare(g, x, y, PrepareSettings(levels=0))


@pytest.mark.parametrize("kind", ["residual", "backres"])
def test_residual_and_backres_nets_prepare_convert_and_go_hybrid(kind):
    g = graph_of("residual") if kind == "residual" else _backres_graph()
    x, y = _labelled(g, 128)
    prepared, _ = prepare(g, x, y, PrepareSettings(levels=L, epochs=1, lr=1e-3))
    back = load_onnx(to_onnx(prepared).SerializeToString())
    assert any(n.op == "qcfs" for n in all_nodes(back.nodes))
    np.testing.assert_allclose(
        ann_forward(back, torch.as_tensor(x))[0], ann_forward(prepared, torch.as_tensor(x))[0],
        rtol=1e-5, atol=1e-6,
    )  # fmt: skip
    settings = ConversionSettings(**prepared_defaults(back), calibration_images=64)
    snn = convert(back, x, settings)
    r = simulate(snn, x, y, SimulationSettings(timesteps=32))
    assert r.ann_accuracy == pytest.approx(ann_accuracy(back, x, y))
    assert r.snn_accuracy >= r.ann_accuracy - 0.1
    fc = [n.name for n in back if n.op == "linear"][-1]
    hybrid = convert(back, x, ConversionSettings(**{**settings.__dict__, "ann_layers": 1}))
    assert any(n.op == "hybrid_boundary" for n in hybrid) and fc in {n.name for n in hybrid}
    rh = simulate(hybrid, x, y, SimulationSettings(timesteps=8))
    assert rh.ann_accuracy == pytest.approx(r.ann_accuracy)


def _backres_graph() -> Graph:
    torch.manual_seed(0)
    block = torch.nn.Sequential(torch.nn.Conv2d(4, 4, 3, padding=1), torch.nn.ReLU())
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        BackRes(block, repeats=2, mode="add"), torch.nn.Flatten(), torch.nn.Linear(4 * 4 * 4, 10),
    ).eval()  # fmt: skip
    buf = io.BytesIO()
    torch.onnx.export(
        model, torch.rand(2, 1, 8, 8), buf, dynamo=False, opset_version=17, input_names=["x"],
        output_names=["y"], dynamic_axes={"x": {0: "b"}},
    )  # fmt: skip
    g = load_onnx(buf.getvalue())
    assert any(n.op == "backres" for n in g)
    return g
