"""Where a converted SNN can run: the facts it carries, and `convert --target nir`."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from cli_run import run_in_process
from nets import graph_of, inputs

from snnconv.convert import ConversionSettings, convert
from snnconv.deployment import deployment
from snnconv.errors import InputError
from snnconv.load import load_onnx
from snnconv.ops import ann_forward
from snnconv.save import save_onnx

nir = pytest.importorskip("nir")
from snnconv.export.nir import nir_threshold, to_nir  # noqa: E402


@pytest.fixture(scope="module")
def vgg():
    g = graph_of("vgg")  # conv, max pool, conv, linear
    return g, inputs(g.input_shape, 32)


def test_default_conversion_lists_every_nir_blocker_at_once(vgg):
    g, x = vgg
    snn = convert(g, x, ConversionSettings(neuron="signed", calibration_images=32))
    facts = deployment(snn)
    assert facts["spikes"] == "signed" and facts["nir_exact"] is False
    settings = {b["setting"]: b for b in facts["blockers"]}
    # v0 = 0.5 and reset by subtraction are no blockers: they export exactly
    assert set(settings) == {"--neuron signed", "--maxpool gate"}
    assert settings["--maxpool gate"]["instead"] == "--maxpool avg"
    assert settings["--neuron signed"]["nodes"] == [n.name for n in snn if n.op == "if_neuron"]
    with pytest.raises(InputError) as e:
        to_nir(snn)
    for text in ("--neuron if", "--maxpool avg", "--target nir"):
        assert text in str(e.value)


def test_signed_neurons_are_a_blocker(vgg):
    g, x = vgg
    snn = convert(g, x, ConversionSettings(neuron="signed", calibrate="none"))
    facts = deployment(snn)
    assert facts["spikes"] == "signed"
    assert "--neuron signed" in {b["setting"] for b in facts["blockers"]}


def test_target_nir_is_exact_and_exports_without_notes(vgg):
    g, x = vgg
    snn = convert(g, x, ConversionSettings(target="nir", calibration_images=32))
    assert deployment(snn) == {"spikes": "binary", "nir_exact": True, "blockers": []}
    assert json.loads(snn.metadata["snnconv.deployment"])["nir_exact"] is True
    settings = json.loads(snn.metadata["snnconv.conversion"])
    assert (settings["reset"], settings["v0"], settings["maxpool"]) == ("subtract", 0.5, "relu")
    graph, notes = to_nir(snn)
    kinds = [type(n).__name__ for n in graph.nodes.values()]
    assert notes == [] and "IF" not in kinds
    assert kinds.count("I") == kinds.count("Threshold") == 3 + 2  # 2 for the relu max pool
    zero = convert(g, x, ConversionSettings(target="nir", reset="zero", calibration_images=32))
    assert deployment(zero)["nir_exact"] is True
    assert any(isinstance(n, nir.IF) for n in to_nir(zero)[0].nodes.values())


@pytest.mark.parametrize(
    ("settings", "match"),
    [
        (ConversionSettings(target="nir", neuron="signed"), "binary spikes"),
        (ConversionSettings(target="nir", reset="zero", calibrate="bias+potential"), "potential"),
        (ConversionSettings(target="chip"), "--target must be one of snnconv, nir"),
    ],
)
def test_target_nir_refuses_what_nir_cannot_run(vgg, settings, match):
    g, x = vgg
    with pytest.raises(InputError, match=match):
        convert(g, x, settings)


def test_target_nir_keeps_the_initial_membrane_and_its_calibration(vgg):
    g, x = vgg
    settings = ConversionSettings(target="nir", calibrate="bias+potential", calibration_images=32)
    snn = convert(g, x, settings)
    assert any("potential" in n.params for n in snn if n.op == "if_neuron")
    assert deployment(snn)["nir_exact"] is True
    assert to_nir(snn)[1] == []


def test_firing_rules_agree_on_a_membrane_at_threshold():
    theta = np.array([0.3, 1.0, 7.25], np.float32)
    nir_theta = nir_threshold(theta)
    below = np.nextafter(theta, np.float32(-np.inf))
    for v in (theta, below, np.nextafter(theta, np.float32(np.inf))):
        np.testing.assert_array_equal(v >= theta, v > nir_theta)  # snnconv's rule, NIR's


def test_cli_facts_in_convert_metadata_report_inspect_and_export(tmp_path):
    ann = graph_of("vgg")
    save_onnx(ann, tmp_path / "m.onnx")
    x = inputs(ann.input_shape, 48)
    y = ann_forward(ann, torch.as_tensor(x))[0].argmax(1).numpy()
    np.savez(tmp_path / "d.npz", x=x, y=y)
    data = f"npz:{tmp_path / 'd.npz'}"
    base = ("--threads", "1", "convert", str(tmp_path / "m.onnx"), "--calib-data", data)
    base += ("--target-timesteps", "4")
    code, err = run_in_process(
        *base, "--neuron", "signed", "-o", str(tmp_path / "default.snn.onnx")
    )
    assert code == 0, err
    code, err = run_in_process(*base, "--target", "nir", "-o", str(tmp_path / "nir.snn.onnx"))
    assert code == 0, err
    meta = load_onnx(tmp_path / "nir.snn.onnx").metadata
    assert json.loads(meta["snnconv.deployment"])["nir_exact"] is True

    report = tmp_path / "r.json"
    sim = ("simulate", str(tmp_path / "default.snn.onnx"), "--data", data, "-T", "4")
    code, err = run_in_process(*sim, "--json", str(report))
    assert code == 0, err
    facts = json.loads(report.read_text())["deployment"]
    assert facts["spikes"] == "signed" and not facts["nir_exact"]
    assert len(facts["blockers"]) == 2

    info = tmp_path / "i.json"
    code, err = run_in_process("inspect", str(tmp_path / "nir.snn.onnx"), "--json", str(info))
    assert code == 0, err
    assert json.loads(info.read_text())["deployment"]["nir_exact"] is True

    out = tmp_path / "m.nir"
    code, err = run_in_process("export", str(tmp_path / "default.snn.onnx"), "-o", str(out))
    assert code == 2 and not out.exists()
    for text in ("--neuron if", "--maxpool avg", "--target nir"):
        assert text in err
    code, err = run_in_process("export", str(tmp_path / "nir.snn.onnx"), "-o", str(out))
    assert code == 0, err
    assert out.exists()


def test_nir_before_1_0_6_is_refused_clearly(vgg, monkeypatch):
    """nir <= 1.0.5's IF reset by subtraction and had no v_reset: refused, not misread."""
    import importlib.metadata

    real = importlib.metadata.version
    monkeypatch.setattr(
        importlib.metadata, "version", lambda name: "1.0.5" if name == "nir" else real(name)
    )
    g, x = vgg
    snn = convert(g, x, ConversionSettings(target="nir", calibrate="none"))
    with pytest.raises(InputError, match=r"nir 1.0.5 is installed.*>= 1.0.6"):
        to_nir(snn)


def test_relu_max_pool_is_the_max_pool_and_nir_exact(vgg):
    from snnconv.convert.convert import prepare_ann

    g, x = vgg
    xt = torch.as_tensor(x)
    exact = ann_forward(prepare_ann(g, "gate"), xt)[0]
    np.testing.assert_allclose(ann_forward(prepare_ann(g, "relu"), xt)[0], exact, atol=1e-6)
    snn = convert(g, x, ConversionSettings(maxpool="relu", neuron="if", reset="zero", v0=0.0))
    assert deployment(snn)["nir_exact"] is True
    graph, _ = to_nir(snn)
    assert sum(isinstance(n, nir.IF) for n in graph.nodes.values()) == 3 + 2  # 2 for the pool
