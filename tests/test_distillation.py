"""Distillation in ``finetune``: the loss keeps its definition, training on it moves the SNN
toward its teacher, and a teacher that cannot teach this SNN is refused by name."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from nets import graph_of, inputs, make, to_graph

from snnconv.convert import ConversionSettings, convert
from snnconv.errors import InputError
from snnconv.finetune import Distillation, FinetuneSettings, SpikingNet, finetune
from snnconv.ops import ann_forward


def _pair(kind: str = "mlp", n: int = 96):
    ann = graph_of(kind).copy()
    x = inputs(ann.input_shape, n)
    snn = convert(ann, x, ConversionSettings(neuron="if", target_timesteps=4))
    y = ann_forward(ann, torch.as_tensor(x))[0].argmax(1).numpy()
    return ann, snn, x, y


def test_the_loss_is_the_weighted_mix_of_base_and_softened_kl():
    g = torch.Generator().manual_seed(0)
    student, teacher = torch.randn(8, 5, generator=g), torch.randn(8, 5, generator=g)
    base = torch.tensor(1.7)
    tau, w = 3.0, 0.25
    p = F.softmax(teacher / tau, 1)
    kl = (p * (p.log() - F.log_softmax(student / tau, 1))).sum(1).mean()
    expected = (1 - w) * base + w * tau**2 * kl
    got = Distillation(w, tau)(base, student, teacher)
    torch.testing.assert_close(got, expected)
    # a student that already matches its teacher owes nothing to it
    assert float(Distillation(1.0, tau)(base, teacher, teacher)) == pytest.approx(0.0, abs=1e-6)
    assert float(Distillation(0.0, tau)(base, student, teacher)) == pytest.approx(1.7)


def _kl_to(ann, snn, x) -> float:
    with torch.no_grad():
        xt = torch.as_tensor(x)
        student = SpikingNet(snn)(xt, 4)[-1] / 4
        teacher = ann_forward(ann, xt)[0]
        return float(F.kl_div(F.log_softmax(student, 1), F.log_softmax(teacher, 1),
                              reduction="batchmean", log_target=True))  # fmt: skip


def test_training_on_the_teacher_alone_moves_the_snn_toward_it():
    _, snn, x, y = _pair()
    # another net of the same shape, which the SNN does not approximate yet
    teacher = to_graph(*make("mlp", seed=1))
    settings = FinetuneSettings(
        epochs=3, timesteps=4, lr=3e-3, batch_size=32, distillation=Distillation(1.0, 1.0)
    )
    trained, _ = finetune(snn, x, y, settings, teacher=teacher)
    assert _kl_to(teacher, trained, x) < 0.5 * _kl_to(teacher, snn, x)
    record = trained.metadata["snnconv.finetune"]
    assert '"teacher"' in record and '"distillation"' in record


def test_without_a_teacher_nothing_about_distillation_is_recorded():
    _, snn, x, y = _pair(n=32)
    trained, _ = finetune(snn, x, y, FinetuneSettings(epochs=1, timesteps=2))
    assert "distillation" not in trained.metadata["snnconv.finetune"]


@pytest.mark.parametrize(
    "teacher, message",
    [
        ("snn", "must be an ANN"),
        ("strided", "inputs of shape"),  # another input shape than the mlp's
        ("three", "3 outputs"),  # the mlp's input, 3 outputs instead of 10
    ],
)
def test_a_teacher_that_cannot_teach_this_snn_is_refused(teacher, message):
    _, snn, x, y = _pair(n=32)
    if teacher == "three":
        other = to_graph(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 3)), (1, 8, 8))
    else:
        other = snn if teacher == "snn" else graph_of(teacher)
    with pytest.raises(InputError, match=message):
        finetune(snn, x, y, FinetuneSettings(epochs=1, timesteps=2), teacher=other)


@pytest.mark.parametrize("weight, temperature", [(-0.1, 2.0), (1.5, 2.0), (0.5, 0.0)])
def test_bad_distillation_settings_are_refused(weight, temperature):
    with pytest.raises(InputError, match="--teacher-weight|--temperature"):
        FinetuneSettings(distillation=Distillation(weight, temperature)).check()
