"""Fine-tuning: the differentiable forward infers as the engine does, the losses keep their
definitions, training helps, and the trained SNN is a normal file the engine runs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from nets import graph_of, inputs

from snnconv.convert import ConversionSettings, convert
from snnconv.convert.hybrid import make_hybrid
from snnconv.errors import InputError
from snnconv.finetune import FinetuneSettings, Loss, SpikingNet, evaluate, finetune, parse_loss
from snnconv.finetune.losses import stochmax
from snnconv.finetune.network import MIN_THRESHOLD
from snnconv.load import load_onnx
from snnconv.neurons.surrogate import spike
from snnconv.ops import ann_forward
from snnconv.save import save_onnx
from snnconv.simulate import Simulator


def _snn(kind: str, n: int = 96, **settings):
    ann = graph_of(kind).copy()
    x = inputs(ann.input_shape, n)
    # fine-tuning trains binary IF neurons
    snn = convert(ann, x, ConversionSettings(neuron="if", target_timesteps=4, **settings))
    y = ann_forward(ann, torch.as_tensor(x))[0].argmax(1).numpy()
    return snn, x, y


def _engine_accuracy(snn, x, y, timesteps: int) -> np.ndarray:
    counts, _ = Simulator(snn).run(torch.as_tensor(x), torch.as_tensor(y), timesteps)
    return counts.correct_per_step / len(x)


@pytest.mark.parametrize(
    "kind, settings",
    [
        ("vgg", {}),  # max-pool gate, neuron biases
        ("residual", {"per_channel": True}),
        ("concat", {"reset": "zero", "v0": 0.0, "calibrate": "none"}),
    ],
)
def test_forward_predicts_as_the_engine(kind, settings):
    snn, x, y = _snn(kind, **settings)
    np.testing.assert_array_equal(evaluate(snn, x, y, 8), _engine_accuracy(snn, x, y, 8))


def test_trained_graph_saves_and_runs_in_the_engine(tmp_path):
    snn, x, y = _snn("vgg")
    trained, _ = finetune(snn, x, y, FinetuneSettings(epochs=1, timesteps=3, lr=1e-2))
    path = tmp_path / "ft.snn.onnx"
    save_onnx(trained, path)
    loaded = load_onnx(path)
    assert "snnconv.finetune" in loaded.metadata
    changed = [
        n.name
        for n, m in zip(snn, loaded, strict=True)
        if any(not np.array_equal(p, m.params[k]) for k, p in n.params.items())
    ]
    assert changed  # training moved parameters, and they were saved
    np.testing.assert_array_equal(evaluate(trained, x, y, 6), _engine_accuracy(loaded, x, y, 6))


def test_thresholds_stay_positive():
    snn, _, _ = _snn("mlp")
    net = SpikingNet(snn)
    for key, p in net.params.items():
        if key.endswith("threshold"):
            p.data.fill_(-1.0)
    g = net.to_graph()
    g.validate()
    assert all(np.all(n.params["threshold"] >= MIN_THRESHOLD) for n in g if n.op == "if_neuron")


def test_finetuning_lowers_the_loss():
    snn, x, y = _snn("mlp", n=128)
    settings = FinetuneSettings(epochs=4, timesteps=4, lr=3e-3, batch_size=32)

    def loss(graph) -> float:
        with torch.no_grad():
            logits = SpikingNet(graph)(torch.as_tensor(x), 4)[-1] / 4
        return float(Loss("ce")(logits, torch.as_tensor(y)))

    trained, history = finetune(snn, x, y, settings)
    assert loss(trained) < 0.9 * loss(snn)
    assert history.loss[-1] < history.loss[0]


def test_stochmax_training_runs_and_is_seeded():
    snn, x, y = _snn("mlp", n=64)
    settings = FinetuneSettings(epochs=1, timesteps=2, lr=1e-2, loss=Loss("stochmax", 0.5))
    a, ha = finetune(snn, x, y, settings)
    b, hb = finetune(snn, x, y, settings)
    assert ha.loss == hb.loss and np.isfinite(ha.loss[0])
    for n, m in zip(a, b, strict=True):
        for k in n.params:
            np.testing.assert_array_equal(n.params[k], m.params[k])


def test_stochmax_with_rho_one_is_cross_entropy():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(32, 10, generator=g) * 3
    target = torch.randint(0, 10, (32,), generator=g)
    ce = torch.nn.functional.cross_entropy(logits, target)
    assert torch.equal(stochmax(logits, target, 1.0, g), ce)


def test_stochmax_never_exceeds_cross_entropy():
    g = torch.Generator().manual_seed(1)
    for rho in (0.1, 0.5, 0.9):
        logits = (torch.randn(64, 10, generator=g) * 4).requires_grad_()
        target = torch.randint(0, 10, (64,), generator=g)
        per_sample_ce = torch.nn.functional.cross_entropy(logits, target, reduction="none")
        sm = torch.stack(
            [stochmax(logits[i : i + 1], target[i : i + 1], rho, g) for i in range(64)]
        )
        assert torch.all(sm <= per_sample_ce + 1e-6)
        assert torch.any(sm < per_sample_ce - 1e-3)  # something was dropped
        sm.sum().backward()
        assert torch.all(torch.isfinite(logits.grad))


def test_surrogate_gradient_is_a_triangle_around_the_threshold():
    theta = torch.tensor([2.0], requires_grad=True)
    v = torch.tensor([0.0, 1.0, 2.0, 3.0, 4.5], requires_grad=True)
    s = spike(v, theta)
    assert s.tolist() == [0.0, 0.0, 1.0, 1.0, 1.0]
    s.sum().backward()
    np.testing.assert_allclose(v.grad.numpy(), [0.0, 0.25, 0.5, 0.25, 0.0])
    np.testing.assert_allclose(theta.grad.numpy(), [-1.0])


@pytest.mark.parametrize("text", ["mse", "ce:0.5", "stochmax:0", "stochmax:1.5", "stochmax:x"])
def test_bad_loss_is_refused(text):
    with pytest.raises(InputError):
        parse_loss(text)


def test_parse_loss():
    assert parse_loss("stochmax") == Loss("stochmax", 0.5)
    assert parse_loss("stochmax:0.25") == Loss("stochmax", 0.25)
    assert parse_loss("ce") == Loss("ce")


def test_hybrid_networks_are_refused_by_name():
    snn, _, _ = _snn("mlp")
    neuron = next(n.name for n in snn if n.op == "if_neuron")
    with pytest.raises(InputError, match="hybrid"):
        SpikingNet(make_hybrid(snn, neuron))
