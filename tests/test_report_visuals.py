"""simulate --plot/--html: pictures and a self-contained page, written safely."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from cli_run import run_in_process
from nets import graph_of, inputs

from snnconv.convert import ConversionSettings, convert
from snnconv.ops import ann_forward
from snnconv.save import save_onnx
from snnconv.simulate import SimulationSettings, simulate

pytest.importorskip("matplotlib")
from snnconv.report.html import render_html  # noqa: E402
from snnconv.report.plots import render_all  # noqa: E402

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    d = tmp_path_factory.mktemp("visuals")
    ann = graph_of("mlp")
    x = inputs(ann.input_shape, 40)
    y = ann_forward(ann, torch.as_tensor(x))[0].argmax(1).numpy()
    snn = convert(ann, x, ConversionSettings(calibrate="none"))
    save_onnx(snn, d / "m.snn.onnx")
    np.savez(d / "data.npz", x=x, y=y)
    report = simulate(snn, x, y, SimulationSettings(timesteps=8))
    return d, report


def test_plots_are_pngs_and_html_holds_the_numbers(case):
    _, r = case
    pngs = render_all(r)
    assert set(pngs) == {"accuracy.png", "activity.png", "energy.png"}
    assert all(p.startswith(PNG) and len(p) > 1000 for p in pngs.values())
    page = render_html(r, pngs)
    assert page.count("data:image/png;base64,") == 3
    assert f"{100 * r.ann_accuracy:.2f} %" in page
    assert f"{100 * r.snn_accuracy:.2f} %" in page
    assert 'src="http' not in page  # self-contained


def _simulate(d, *extra) -> tuple[int, str]:
    """Run the CLI in this process (fast); returns (exit code, stderr)."""
    args = ["simulate", str(d / "m.snn.onnx"), "--data", f"npz:{d / 'data.npz'}", "-T", "4"]
    return run_in_process(*args, *extra)


def test_cli_writes_then_refuses_to_overwrite(case):
    d, _ = case
    code, err = _simulate(d, "--plot", str(d / "plots"), "--html", str(d / "r.html"))
    assert code == 0, err
    assert (d / "plots" / "accuracy.png").read_bytes().startswith(PNG)
    assert (d / "r.html").read_text().startswith("<!doctype html>")
    before = (d / "r.html").read_bytes()
    code, err = _simulate(d, "--html", str(d / "r.html"))
    assert code == 2 and "--force" in err
    code, err = _simulate(d, "--plot", str(d / "plots"))
    assert code == 2 and "accuracy.png exists" in err
    assert (d / "r.html").read_bytes() == before
    code, err = _simulate(d, "--html", str(d / "r.html"), "--force")
    assert code == 0, err


def test_without_matplotlib_the_flags_say_what_to_install(case, monkeypatch):
    d, _ = case
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    code, err = _simulate(d, "--html", str(d / "x.html"))
    assert code == 2
    assert "pip install 'snnconv[plot]'" in err
    assert not (d / "x.html").exists()
