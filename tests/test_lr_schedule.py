"""--lr-schedule: the learning rate each batch of prepare and finetune is trained at."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import torch
from cli_run import run_in_process

from snnconv.data import asset_path
from snnconv.errors import InputError
from snnconv.finetune import FinetuneSettings
from snnconv.finetune.epochs import History, lr_schedule, run_epoch
from snnconv.finetune.prepare import PrepareSettings


def _rates(name: str, images: int, batch_size: int, epochs: int) -> list[float]:
    """The learning rate of each batch, as run_epoch steps the scheduler after each."""
    opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=1e-3)
    schedule = lr_schedule(name, opt, images, batch_size, epochs)
    rates = []
    for _ in range(epochs * -(-images // batch_size)):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        schedule.step()
    return rates


def test_constant_holds_the_rate():
    assert _rates("constant", 100, 32, 2) == [1e-3] * 8


def test_cosine_falls_from_the_rate_to_zero_over_every_batch_of_the_run():
    rates = _rates("cosine", 100, 32, 3)  # 4 batches an epoch, the last one short
    assert len(rates) == 12
    assert rates[0] == pytest.approx(1e-3)
    assert all(a > b for a, b in zip(rates, rates[1:], strict=False))
    assert rates[6] == pytest.approx(0.5e-3)  # halfway through the run
    assert 0 < rates[-1] < 0.02e-3


@pytest.mark.parametrize("settings", [PrepareSettings, FinetuneSettings])
def test_an_unknown_schedule_is_refused_by_both_loops(settings):
    with pytest.raises(InputError, match="--lr-schedule 'step'.*constant, cosine"):
        settings(lr_schedule="step").check()


def test_prepare_records_the_schedule_it_ran(tmp_path):
    out = tmp_path / "p.onnx"
    code, _ = run_in_process(
        "prepare", str(asset_path("digits_cnn.onnx")), "--data", "digits", "--limit", "64",
        "--lr-schedule", "cosine", "-o", str(out),
    )  # fmt: skip
    assert code == 0
    meta = {p.key: p.value for p in onnx.load(out).metadata_props}
    assert json.loads(meta["snnconv.prepare"])["lr_schedule"] == "cosine"


def test_the_cli_refuses_an_unknown_schedule_before_writing(tmp_path):
    out = tmp_path / "p.onnx"
    code, err = run_in_process(
        "prepare", str(asset_path("digits_cnn.onnx")), "--data", "digits",
        "--lr-schedule", "step", "-o", str(out),
    )  # fmt: skip
    assert code == 2 and "--lr-schedule" in err
    assert not out.exists()


def test_run_epoch_steps_the_schedule_once_a_batch():
    torch.manual_seed(0)
    net = torch.nn.Linear(4, 3)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    x, y = np.random.default_rng(0).random((50, 4), dtype=np.float32), np.arange(50) % 3
    schedule = lr_schedule("cosine", opt, len(x), 16, epochs=2)

    def step(xb, yb):
        logits = net(xb)
        return logits, torch.nn.functional.cross_entropy(logits, yb)

    history, order = History(), torch.Generator().manual_seed(0)
    run_epoch(x, y, 16, order, torch.device("cpu"), step, opt, schedule, history)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.5e-3)  # 4 of 8 batches done
    run_epoch(x, y, 16, order, torch.device("cpu"), step, opt, schedule, history)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)
    assert len(history.loss) == len(history.seconds) == 2
