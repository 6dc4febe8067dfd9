"""NIR export: the exported graph computes what snnconv simulates, or export refuses clearly."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from cli_run import run_in_process
from nets import graph_of, inputs

from snnconv.convert import ConversionSettings, convert
from snnconv.errors import InputError
from snnconv.save import save_onnx
from snnconv.simulate import Simulator

nir = pytest.importorskip("nir")
from snnconv.export.nir import to_nir, write_nir  # noqa: E402

EXACT = ConversionSettings(maxpool="avg", reset="zero", v0=0.0, calibration_images=32)


@pytest.fixture(scope="module")
def snns():
    out = {}
    for kind in ("vgg", "residual", "strided"):
        g = graph_of(kind)
        out[kind] = convert(g, inputs(g.input_shape, 32), EXACT, batch_size=32)
    return out


def _back_edges(graph) -> set[tuple[str, str]]:
    """Edges closing a cycle (found depth first from the input): they carry last step's value."""
    succ = {n: [t for s, t in graph.edges if s == n] for n in graph.nodes}
    back, on_path, seen = set(), set(), set()

    def visit(n):
        seen.add(n)
        on_path.add(n)
        for t in succ[n]:
            if t in on_path:
                back.add((n, t))
            elif t not in seen:
                visit(t)
        on_path.discard(n)

    visit("input")
    return back


def _run_nir(graph, x: np.ndarray, timesteps: int) -> np.ndarray:
    """A reference discrete-time NIR interpreter (dt = 1): predictions per step, (T, B). An
    edge closing a cycle carries its source's value of the step before (zero at first)."""
    back = _back_edges(graph)
    order, done = [], {"input"}
    preds = {n: [s for s, t in graph.edges if t == n and (s, n) not in back] for n in graph.nodes}
    late = {n: [s for s, t in back if t == n] for n in graph.nodes}
    while len(order) < len(graph.nodes) - 1:
        for n in graph.nodes:
            if n not in done and all(p in done for p in preds[n]):
                order.append(n)
                done.add(n)
    v: dict[str, torch.Tensor] = {}
    acc, out, before = 0, [], {}
    xt = torch.as_tensor(x)
    for _ in range(timesteps):
        val = {"input": xt}
        for n in order:
            node = graph.nodes[n]
            inp = sum(val[p] for p in preds[n]) + sum(before.get(p, 0) for p in late[n])
            if isinstance(node, nir.Conv2d):
                y = F.conv2d(
                    inp,
                    torch.as_tensor(node.weight),
                    torch.as_tensor(node.bias),
                    node.stride,
                    node.padding,
                    node.dilation,
                    node.groups,
                )
            elif isinstance(node, nir.Affine):
                y = inp @ torch.as_tensor(node.weight).T + torch.as_tensor(node.bias)
            elif isinstance(node, nir.AvgPool2d):
                y = F.avg_pool2d(
                    inp, tuple(node.kernel_size), tuple(node.stride), tuple(node.padding)
                )
            elif isinstance(node, nir.Flatten):
                y = inp.flatten(1)
            elif isinstance(node, nir.Scale):
                y = inp * torch.as_tensor(node.scale)
            elif isinstance(node, nir.IF):
                m = v.get(n, 0) + torch.as_tensor(node.r) * inp
                y = (m > torch.as_tensor(node.v_threshold)).float()  # NIR's rule: v > v_threshold
                v[n] = m * (1 - y) + torch.as_tensor(node.v_reset) * y
            elif isinstance(node, nir.I):  # dv/dt = r I, its membrane the output
                y = v[n] = v.get(n, 0) + torch.as_tensor(node.r) * inp
            elif isinstance(node, nir.Threshold):
                y = (inp > torch.as_tensor(node.threshold)).float()
            elif isinstance(node, nir.Output):
                y = inp
            else:
                raise AssertionError(type(node))
            val[n] = y
        before = val
        acc = acc + val["output"]
        out.append(acc.argmax(1))
    return torch.stack(out).numpy()


@pytest.fixture(scope="module")
def subtracting():
    """--target nir with its default reset by subtraction (the Integrator/Threshold loop)."""
    out = {}
    for kind in ("vgg", "residual", "strided", "mlp"):
        g = graph_of(kind)
        settings = ConversionSettings(target="nir", calibration_images=32)
        out[kind] = convert(g, inputs(g.input_shape, 32), settings, batch_size=32)
    return out


@pytest.mark.parametrize("kind", ["vgg", "residual", "strided", "mlp"])
def test_subtraction_loop_run_as_nir_defines_it_predicts_like_the_snn(subtracting, kind):
    snn, T = subtracting[kind], 12
    assert {n.attrs["reset"] for n in snn if n.op == "if_neuron"} == {"subtract"}
    graph, notes = to_nir(snn)
    assert notes == [] and not any(isinstance(n, nir.IF) for n in graph.nodes.values())
    x = inputs(snn.input_shape, 40, seed=5)
    y = np.zeros(len(x), np.int64)
    ref = _run_nir(graph, x, T)
    for c in range(3):
        counts, _ = Simulator(snn).run(torch.as_tensor(x), torch.as_tensor(y + c), T)
        assert counts.correct_per_step.tolist() == (ref == c).sum(1).tolist()


def test_subtraction_loop_is_the_neuron_step_by_step():
    """One layer, a constant input: the loop's spikes are snnconv's on every step, and its
    membrane is snnconv's before the reset; an IF resetting to zero fires on another beat."""
    theta = np.array([0.7, 1.3, 0.25], np.float32)
    current = np.array([0.31, 1.0, 0.09], np.float32)
    snn_v, snn_s = np.zeros(3, np.float32), []
    nir_v, nir_s, last = np.zeros(3, np.float32), [], np.zeros(3, np.float32)
    below = np.nextafter(theta, np.float32(-np.inf))
    for _ in range(40):
        snn_v = snn_v + current
        s = (snn_v >= theta).astype(np.float32)
        snn_s.append(s)
        pre = snn_v.copy()
        snn_v = snn_v - s * theta
        nir_v = nir_v + (current + (-theta) * last)  # I's input: the sum of its edges
        last = (nir_v > below).astype(np.float32)
        nir_s.append(last)
        np.testing.assert_allclose(nir_v, pre, rtol=1e-5)
    np.testing.assert_array_equal(nir_s, snn_s)
    # 40 steps: floor(40 * current / theta) spikes, the rate the ANN's activation asks for
    assert np.sum(snn_s, 0).tolist() == [17, 30, 14]
    # NIR's IF resets to zero: one spike every ceil(theta / current) steps, fewer in all
    v, fired = np.zeros(3, np.float32), np.zeros(3)
    for _ in range(40):
        v = v + current
        fired += v > below
        v = np.where(v > below, np.float32(0), v)
    assert fired.tolist() == [13, 20, 13]


@pytest.mark.parametrize("kind", ["vgg", "residual", "strided"])
def test_nir_graph_predicts_like_the_snn(snns, kind):
    snn, T = snns[kind], 12
    graph, notes = to_nir(snn)
    assert notes == []
    x = inputs(snn.input_shape, 40, seed=5)
    y = np.zeros(len(x), np.int64)
    ref = _run_nir(graph, x, T)
    # snnconv's correct count for label c is how many predictions equal c: compare per class.
    for c in range(3):
        counts, _ = Simulator(snn).run(torch.as_tensor(x), torch.as_tensor(y + c), T)
        assert counts.correct_per_step.tolist() == (ref == c).sum(1).tolist()


def test_file_round_trip_kinds_edges_and_scaled_weights(snns, tmp_path):
    snn = snns["vgg"]
    path = tmp_path / "m.nir"
    write_nir(snn, path)
    back = nir.read(path)
    kinds = {k: type(v).__name__ for k, v in back.nodes.items()}
    assert kinds["input"] == "Input" and kinds["output"] == "Output"
    assert sorted(kinds.values()).count("IF") == 3
    assert sorted(kinds.values()).count("Conv2d") == 2
    assert ("0_Conv", "2_Relu") in back.edges and ("12_Gemm", "output") in back.edges
    theta = float(snn.node("/2/Relu").params["threshold"][0])
    w = snn.node("/4/Conv").params["weight"]
    np.testing.assert_allclose(back.nodes["4_Conv"].weight, w * theta, rtol=1e-6)
    # The first neuron's bias current moved into the conv before it.
    conv0 = snn.node("/0/Conv").params["bias"] + snn.node("/2/Relu").params.get("bias", 0)
    np.testing.assert_allclose(back.nodes["0_Conv"].bias, conv0, rtol=1e-6)
    # NIR fires on v > v_threshold: the float32 just below snnconv's threshold (fires on >=).
    below = np.nextafter(np.float32(theta), np.float32(-np.inf))
    assert np.all(back.nodes["2_Relu"].v_threshold == below)
    with pytest.raises(InputError, match="exists"):
        write_nir(snn, path)


def test_refuses_what_nir_cannot_express():
    g = graph_of("vgg")
    x = inputs(g.input_shape, 16)
    gated = convert(
        g, x, ConversionSettings(maxpool="gate", reset="zero", v0=0.0, calibrate="none")
    )
    with pytest.raises(InputError, match=r"/1/MaxPool|maxpool avg"):
        to_nir(gated)
    started = convert(g, x, dataclasses.replace(EXACT, v0=0.5, calibrate="none"))
    with pytest.raises(InputError, match=r"v0 = 0.5.*NIR's IF starts at rest.*--reset subtract"):
        to_nir(started)
    graph, notes = to_nir(started, approximate=True)
    assert len(notes) == 3 and all("starting at rest" in n for n in notes)
    assert all(np.all(n.v_reset == 0) for n in graph.nodes.values() if isinstance(n, nir.IF))
    cat = convert(graph_of("concat"), x, EXACT)
    with pytest.raises(InputError, match="concat"):
        to_nir(cat)


@pytest.mark.parametrize(
    "settings",
    [
        ConversionSettings(neuron="if", maxpool="avg", calibrate="none"),  # v0 0.5, subtract
        dataclasses.replace(EXACT, reset="subtract", calibrate="search+bias+potential"),
        dataclasses.replace(EXACT, reset="subtract", calibrate="bias+potential", v0=0.3),
    ],
    ids=["v0", "potential", "potential-v0.3"],
)
def test_an_initial_membrane_exports_as_a_lower_firing_level(settings):
    """NIR neurons start at 0: a neuron started at v0 * theta + potential is exported measured
    from there, and runs as NIR defines its nodes like snnconv's."""
    g = graph_of("residual")
    snn = convert(g, inputs(g.input_shape, 32), settings, batch_size=32)
    graph, notes = to_nir(snn)
    assert notes == []
    first = next(n for n in snn if n.op == "if_neuron")
    node = next(v for v in graph.nodes.values() if v.metadata.get("snnconv_name") == first.name)
    level = node.threshold
    theta = float(first.params["threshold"][0])
    assert float(np.ravel(level)[0]) < theta  # fires below the threshold: it starts above 0
    x = inputs(snn.input_shape, 40, seed=5)
    ref = _run_nir(graph, x, 12)
    for c in range(3):
        counts, _ = Simulator(snn).run(torch.as_tensor(x), torch.full((len(x),), c), 12)
        assert counts.correct_per_step.tolist() == (ref == c).sum(1).tolist()


def test_cli_export(snns, tmp_path):
    save_onnx(snns["residual"], tmp_path / "m.snn.onnx")
    args = ("export", str(tmp_path / "m.snn.onnx"), "-o", str(tmp_path / "m.nir"))
    code, err = run_in_process(*args)
    assert code == 0, err
    assert "Scale" in {type(n).__name__ for n in nir.read(tmp_path / "m.nir").nodes.values()}
    code, err = run_in_process(*args)
    assert code == 2 and "--force" in err


@pytest.mark.slow
def test_norse_runs_the_export_like_snnconv():
    """An independent NIR simulator (norse, `pip install --no-deps norse nirtorch`) agrees.

    norse 1.1 imports neither AvgPool2d nor Scale and applies nir.Flatten's dims to a
    batched tensor, so this runs the MLP one image at a time.
    """
    norse = pytest.importorskip("norse.torch")
    g = graph_of("mlp")
    snn = convert(g, inputs(g.input_shape, 32), EXACT)
    module = norse.from_nir(to_nir(snn)[0], dt=1.0)
    x, T = torch.as_tensor(inputs(g.input_shape, 30, seed=3)), 10
    preds = []
    for i in range(len(x)):
        state, acc, row = None, 0, []
        for _ in range(T):
            out, state = module(x[i : i + 1], state)
            acc = acc + out
            row.append(int(acc.argmax()))
        preds.append(row)
    preds = np.array(preds).T
    for c in range(10):
        counts, _ = Simulator(snn).run(x, torch.full((len(x),), c), T)
        assert counts.correct_per_step.tolist() == (preds == c).sum(1).tolist()
