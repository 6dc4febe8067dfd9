"""Saving graphs as ONNX: exact round trips, checker-clean files, safe writes."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from onnx_models import INPUT_SHAPE, Net, export

import snnconv.atomic
from snnconv.errors import InputError
from snnconv.graph import Graph, Node
from snnconv.load import load_onnx
from snnconv.ops import ann_forward
from snnconv.save import save_onnx
from snnconv.simulate import Simulator


def snn_graph() -> Graph:
    rng = np.random.default_rng(0)
    f = lambda *s: rng.standard_normal(s).astype(np.float32)
    pool = {
        "kernel": (2, 2),
        "stride": (2, 2),
        "padding": (0, 0, 1, 1),
        "dilation": (1, 1),
        "ceil_mode": True,
    }
    nodes = [
        Node(
            "conv1",
            "conv",
            ["x"],
            {"stride": (1, 1), "padding": (1, 0, 2, 1), "dilation": (1, 1), "groups": 1},
            {"weight": f(4, 2, 3, 3), "bias": f(4)},
        ),
        Node("bn", "affine", ["conv1"], {}, {"scale": f(4), "shift": f(4)}),
        Node(
            "if1",
            "if_neuron",
            ["bn"],
            {"reset": "subtract", "v0": 0.5},
            {"threshold": np.abs(f(4))},
        ),
        Node("gate", "maxpool_gate", ["if1"], pool),
        Node(
            "avg",
            "avgpool",
            ["gate"],
            {
                "kernel": (2, 2),
                "stride": (1, 1),
                "padding": (0, 0, 1, 1),
                "ceil_mode": False,
                "count_include_pad": True,
            },
        ),
        Node("max", "maxpool", ["avg"], {**pool, "ceil_mode": False}),
        Node("cat", "concat", ["max", "max"], {"axis": 1}),
        Node("gap", "global_avgpool", ["cat"]),
        Node("sum", "add", ["gap", "gap", "gap"]),
        Node("shape", "reshape", ["sum"], {"shape": (8,)}),
        Node("flat", "flatten", ["shape"]),
        Node("fc", "linear", ["flat"], {}, {"weight": f(3, 8), "bias": f(3)}),
        Node("clip", "clip", ["fc"], {"min": 0.0, "max": 6.0}),
        Node(
            "if2",
            "if_neuron",
            ["clip"],
            {"reset": "zero", "v0": 0.0},
            {"threshold": np.ones(1, np.float32)},
        ),
    ]
    return Graph(nodes, "x", (2, 9, 9), "if2", {"converted_by": "test", "timesteps": "32"})


def assert_same_graph(a: Graph, b: Graph) -> None:
    assert (a.input_name, a.input_shape, a.output) == (b.input_name, b.input_shape, b.output)
    assert [(n.name, n.op, n.inputs, n.attrs) for n in a.nodes] == [
        (n.name, n.op, n.inputs, n.attrs) for n in b.nodes
    ]
    for x, y in zip(a.nodes, b.nodes, strict=True):
        assert x.params.keys() == y.params.keys()
        for k in x.params:
            assert x.params[k].dtype == y.params[k].dtype and x.params[k].shape == y.params[k].shape
            assert x.params[k].tobytes() == y.params[k].tobytes(), (x.name, k)


def test_snn_graph_round_trips_exactly(tmp_path):
    graph = snn_graph()
    path = tmp_path / "m.snn.onnx"
    save_onnx(graph, path)
    model = onnx.load(path)
    onnx.checker.check_model(model)
    assert {o.domain: o.version for o in model.opset_import}["snnconv"] == 1
    assert {n.op_type for n in model.graph.node if n.domain == "snnconv"} == {"IF", "MaxPoolGate"}
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    loaded = load_onnx(path)
    assert_same_graph(graph, loaded)
    assert graph.metadata.items() <= loaded.metadata.items()
    # Saving what was loaded gives the same file: provenance survives.
    save_onnx(loaded, tmp_path / "again.onnx")
    assert load_onnx(tmp_path / "again.onnx").metadata == loaded.metadata


def test_neuron_bias_and_initial_potential_round_trip(tmp_path):
    """Either optional neuron input may come without the other (an absent bias is an empty
    input name in the file); both come back bit for bit and the SNN simulates the same."""
    graph = snn_graph()
    rng = np.random.default_rng(1)
    graph.node("if1").params["bias"] = rng.standard_normal(4).astype(np.float32)
    graph.node("if1").params["potential"] = rng.standard_normal(4).astype(np.float32)
    graph.node("if2").params["potential"] = rng.standard_normal(1).astype(np.float32)
    save_onnx(graph, tmp_path / "m.snn.onnx")
    model = onnx.load(tmp_path / "m.snn.onnx")
    if2 = next(n for n in model.graph.node if n.name == "if2")
    assert list(if2.input) == ["clip", "if2.threshold", "", "if2.potential"]
    loaded = load_onnx(tmp_path / "m.snn.onnx")
    assert_same_graph(graph, loaded)
    x = torch.rand(8, *graph.input_shape) * 4
    y = torch.zeros(8, dtype=torch.long)
    record = ["if1", "if2"]
    _, a = Simulator(graph).run(x, y, 6, record=record)
    _, b = Simulator(loaded).run(x, y, 6, record=record)
    del graph.node("if1").params["potential"]
    _, c = Simulator(graph).run(x, y, 6, record=record)
    assert all(torch.equal(a[k], b[k]) for k in record)
    assert not torch.equal(a["if1"], c["if1"])  # the potential is used, not just stored


def test_ann_graph_round_trips_and_still_matches(tmp_path):
    torch.manual_seed(0)
    graph = load_onnx(export(Net(), dynamo=False, opset=17))
    save_onnx(graph, tmp_path / "ann.onnx")
    loaded = load_onnx(tmp_path / "ann.onnx")
    assert loaded.metadata["verify_ok"] == "true"
    assert_same_graph(graph, loaded)
    x = torch.rand(4, *INPUT_SHAPE)
    assert torch.equal(ann_forward(graph, x)[0], ann_forward(loaded, x)[0])


def test_existing_file_is_kept_without_force(tmp_path):
    path = tmp_path / "m.onnx"
    path.write_bytes(b"precious")
    with pytest.raises(InputError, match="exists"):
        save_onnx(snn_graph(), path)
    assert path.read_bytes() == b"precious"
    save_onnx(snn_graph(), path, force=True)
    assert load_onnx(path).node("if1").op == "if_neuron"


@pytest.mark.parametrize("exc", [KeyboardInterrupt, OSError])
def test_interrupted_write_leaves_old_file_and_no_temp(tmp_path, monkeypatch, exc):
    path = tmp_path / "m.onnx"
    path.write_bytes(b"old model")

    def crash(fd):
        raise exc("interrupted")

    monkeypatch.setattr(snnconv.atomic.os, "fsync", crash)
    with pytest.raises(exc):
        save_onnx(snn_graph(), path, force=True)
    assert path.read_bytes() == b"old model"
    assert [p.name for p in tmp_path.iterdir()] == ["m.onnx"]
