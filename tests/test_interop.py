"""Our NIR in other simulators (snnTorch, Norse), loaded by snnconv.interop: same predictions
and the same spikes per layer as snnconv. Needs `pip install --no-deps snntorch norse nirtorch`."""

from __future__ import annotations

import pytest
import torch
from nets import graph_of, inputs

from snnconv.convert import ConversionSettings, convert
from snnconv.simulate import Simulator
from snnconv.simulate.engine import OUTPUT

nir = pytest.importorskip("nir")
pytest.importorskip("nirtorch", reason="needs nirtorch: pip install --no-deps nirtorch")
from snnconv.export.nir import to_nir  # noqa: E402
from snnconv.interop import run_steps, to_norse, to_snntorch  # noqa: E402

KINDS = ("vgg", "residual", "strided", "mlp")
T = 12


@pytest.fixture(scope="module")
def exported():
    out = {}
    for kind in KINDS:
        g = graph_of(kind)
        snn = convert(
            g, inputs(g.input_shape, 32), ConversionSettings(target="nir", calibration_images=32)
        )
        x = torch.as_tensor(inputs(g.input_shape, 40, seed=5))
        counts, rec = Simulator(snn).run(
            x, torch.zeros(len(x), dtype=torch.long), T, record=(OUTPUT,)
        )
        preds = rec[OUTPUT].reshape(T, len(x), -1)[-1].argmax(1).numpy()
        graph, _ = to_nir(snn)
        ids = {v.metadata.get("snnconv_name"): k for k, v in graph.nodes.items()}
        spikes = {ids[k].replace(".", "_"): float(v.sum()) for k, v in counts.spikes.items()}
        out[kind] = graph, x, preds, spikes
    return out


def _agrees(exported, build):
    for kind in KINDS:
        graph, x, preds, spikes = exported[kind]
        got, got_spikes = run_steps(build(graph), x, T)
        assert (got == preds).all(), kind
        assert got_spikes == spikes, kind


@pytest.mark.slow
def test_snntorch_runs_our_nir_like_snnconv(exported):
    pytest.importorskip("snntorch", reason="needs snntorch: pip install --no-deps snntorch")
    _agrees(exported, to_snntorch)


@pytest.mark.slow
def test_norse_runs_our_nir_like_snnconv(exported):
    pytest.importorskip("norse", reason="needs norse: pip install --no-deps norse")
    _agrees(exported, to_norse)


@pytest.mark.slow
def test_the_reset_loop_runs_alike_whatever_the_order_of_nodes(exported, tmp_path):
    """nirtorch delays the input of a node that depends on the node itself; in the loop only
    the integrator has two inputs, so the delay falls on the reset edge in every order."""
    import random

    graph, x, preds, spikes = exported["residual"]
    nir.write(tmp_path / "m.nir", graph)
    back = nir.read(tmp_path / "m.nir")  # nodes come back sorted by name
    items = list(graph.nodes.items())
    random.Random(3).shuffle(items)
    shuffled = nir.NIRGraph(nodes=dict(items), edges=graph.edges, type_check=False)
    for g in (back, shuffled):
        got, got_spikes = run_steps(to_norse(g), x, T)
        assert (got == preds).all()
        assert got_spikes == spikes


def _zero_reset(kind: str):
    g = graph_of(kind)
    settings = ConversionSettings(target="nir", reset="zero", calibration_images=32)
    return to_nir(convert(g, inputs(g.input_shape, 32), settings))[0]


@pytest.mark.slow
def test_snntorch_shipped_importer_departs_from_nir(exported):
    """snnTorch 1.0's own importer has no Scale (a residual net fails to load), no Threshold
    (a subtraction-reset loop fails to load) and imports IF as a leaky neuron; snnconv.interop
    exists because of this."""
    snntorch_nir = pytest.importorskip("snntorch.import_nir")
    with pytest.raises(ValueError, match="Scale"):
        snntorch_nir.import_from_nir(_zero_reset("residual"))
    graph, *_ = exported["mlp"]
    with pytest.raises(ValueError, match="Threshold"):
        snntorch_nir.import_from_nir(graph)
    leaky = [
        m for m in snntorch_nir.import_from_nir(_zero_reset("mlp")).modules() if hasattr(m, "beta")
    ]
    assert leaky and all(float(m.beta) == pytest.approx(0.9) for m in leaky)


@pytest.mark.slow
@pytest.mark.parametrize("consumer", ["snntorch", "norse"])
def test_consumers_run_reset_to_zero_exports_like_snnconv(consumer):
    """Reset to zero exports as NIR's IF; the loaders run that too, spike for spike."""
    pytest.importorskip(consumer)
    g = graph_of("strided")
    snn = convert(
        g,
        inputs(g.input_shape, 32),
        ConversionSettings(target="nir", reset="zero", calibration_images=32),
    )
    graph, _ = to_nir(snn)
    assert any(isinstance(n, nir.IF) for n in graph.nodes.values())
    x = torch.as_tensor(inputs(g.input_shape, 40, seed=5))
    counts, rec = Simulator(snn).run(x, torch.zeros(len(x), dtype=torch.long), T, record=(OUTPUT,))
    got, got_spikes = run_steps({"snntorch": to_snntorch, "norse": to_norse}[consumer](graph), x, T)
    assert (got == rec[OUTPUT].reshape(T, len(x), -1)[-1].argmax(1).numpy()).all()
    assert sum(got_spikes.values()) == sum(float(v.sum()) for v in counts.spikes.values())
