"""One registry per extension point: nothing in src/ dispatches on op or neuron names, no
module grows past ~400 lines, and a new op or neuron kind is one module (the worked examples
of docs/architecture.md: tests/toy_gain.py, tests/toy_leaky.py)."""

from __future__ import annotations

import pathlib

import numpy as np
import onnx
import pytest
import torch
from dispatch_rules import violations
from toy_gain import GAIN
from toy_leaky import LEAKY

from snnconv import neurons, ops
from snnconv.finetune import SpikingNet
from snnconv.graph import Graph, Node
from snnconv.save import to_onnx
from snnconv.simulate import Simulator
from snnconv.simulate.engine import OUTPUT

SRC = pathlib.Path(__file__).resolve().parents[1] / "src" / "snnconv"
#: Files other branches rewrite at the same time (load/ splits its handlers, export/ gets a
#: spike-kind check); the lead removes an entry once that branch has merged.
ELSEWHERE: set[str] = set()


def _sources():
    for path in sorted(SRC.rglob("*.py")):
        yield path.relative_to(SRC).as_posix(), path.read_text()


def test_nothing_in_src_dispatches_on_op_or_neuron_names():
    found = [
        v
        for rel, text in _sources()
        if rel not in ELSEWHERE
        for v in violations(text, rel, neuron_table=rel.startswith("neurons/"))
    ]
    assert found == []


PLANTED = {
    "chain": 'def f(node):\n    if node.op == "conv":\n        return 1\n'
    '    elif node.op == "add":\n        return 2\n',
    "two ifs": 'def f(n):\n    if n.op == "conv":\n        return 1\n    if n.op in ("a",):\n'
    "        return 2\n",
    "a set of names": 'def f(n):\n    if n.op in ("conv", "linear"):\n        return 1\n',
    "signed": 'def f(n):\n    return n.attrs.get("signed")\n',
    "signed item": 'def f(n):\n    return 1 if n.attrs["signed"] else 0\n',
    "getattr": 'def f(self, n):\n    return getattr(self, "_" + n.op)(n)\n',
}


@pytest.mark.parametrize("name", sorted(PLANTED))
def test_the_rules_catch_planted_dispatch(name):
    assert violations(PLANTED[name], "planted.py")


def test_the_rules_let_a_single_guard_and_a_table_pass():
    guard = 'def f(n):\n    if n.op != "affine":\n        return None\n    return TABLE[n.op](n)\n'
    assert violations(guard, "ok.py") == []


def test_every_module_in_src_is_under_400_lines():
    long = {rel: text.count("\n") for rel, text in _sources() if text.count("\n") >= 400}
    assert set(long) <= ELSEWHERE, long


def _conv(name, x, cin, cout, seed):
    g = np.random.default_rng(seed)
    w = (g.standard_normal((cout, cin, 3, 3)) * 0.4).astype(np.float32)
    attrs = {"stride": (1, 1), "padding": (1, 1, 1, 1), "dilation": (1, 1), "groups": 1}
    return Node(name, "conv", [x], attrs, {"weight": w, "bias": np.full(cout, 0.1, np.float32)})


def _snn(with_gain: bool, neuron_attrs: dict) -> Graph:
    """conv -> neuron [-> gain 0.5] -> flatten -> linear; without the gain, the linear's
    weights are halved instead: the same function."""
    g = np.random.default_rng(1)
    w = (g.standard_normal((4, 3 * 6 * 6)) * 0.2).astype(np.float32)
    nodes = [
        _conv("c1", "x", 2, 3, 0),
        Node("n1", "if_neuron", ["c1"], {"reset": "subtract", "v0": 0.5, **neuron_attrs},
             {"threshold": np.asarray([0.8], np.float32)}),
        Node("g", "gain", ["n1"], {"k": 0.5}),
        Node("f", "flatten", ["g"]),
        Node("fc", "linear", ["f"], {},
             {"weight": w if with_gain else w * np.float32(0.5), "bias": np.zeros(4, np.float32)}),
    ]  # fmt: skip
    if not with_gain:
        nodes = [n for n in nodes if n.name != "g"]
        nodes[-2].inputs = ["n1"]
    return Graph(nodes, "x", (2, 6, 6), "fc")


@pytest.fixture
def gain_op():
    ops.register(GAIN)
    yield GAIN
    ops.unregister("gain")


@pytest.fixture
def leaky_kind():
    neurons.register(LEAKY)
    yield LEAKY
    neurons.unregister("leaky")


def _images(n=8):
    return torch.rand((n, 2, 6, 6), generator=torch.Generator().manual_seed(3))


def test_a_toy_op_runs_through_shapes_the_ann_the_engine_and_save(gain_op):
    snn, plain = _snn(True, {}), _snn(False, {})
    assert ops.infer_shapes(snn)["g"] == (3, 6, 6)
    x, y = _images(), torch.zeros(8, dtype=torch.long)
    ann_x = torch.rand((2, 3, 6, 6))
    assert torch.equal(ops.ann_forward(Graph([snn.node("g")], "n1", (3, 6, 6), "g"), ann_x)[0],
                       ann_x * 0.5)  # fmt: skip
    (c, rec), (c0, rec0) = (
        Simulator(g).run(x, y, 12, chunk=5, record=["n1", OUTPUT]) for g in (snn, plain)
    )
    assert torch.equal(rec["n1"], rec0["n1"])  # the spikes before it are untouched
    # its spikes pass on as events: the linear layer after it counts the same synops
    assert c.synops["fc"].sum() > 0
    np.testing.assert_array_equal(c.synops["fc"], c0.synops["fc"])
    torch.testing.assert_close(rec[OUTPUT], rec0[OUTPUT], rtol=1e-5, atol=1e-5)
    model = to_onnx(snn)  # its spec writes its node; the file passes onnx.checker
    assert [n.op_type for n in model.graph.node if n.name == "g"] == ["Mul"]
    onnx.checker.check_model(model)


def test_a_toy_neuron_kind_runs_in_the_engine_and_in_finetune(leaky_kind):
    # a constant current of 0.3 under a threshold of 1: IF fires every few steps; with a
    # leak of 0.5 the membrane settles at 0.6 and the neuron never fires
    fc = Node("fc", "linear", ["x"], {}, {"weight": np.eye(2, dtype=np.float32),
                                          "bias": np.zeros(2, np.float32)})  # fmt: skip
    marks = {"if": {}, "leaky": {**neurons.marks("leaky"), "leak": 0.5}}
    spikes = {}
    for name, attrs in marks.items():
        nrn = Node("n", "if_neuron", ["fc"], {"reset": "subtract", "v0": 0.0, **attrs},
                   {"threshold": np.ones(1, np.float32)})  # fmt: skip
        out = Node("out", "linear", ["n"], {}, {"weight": np.eye(2, dtype=np.float32),
                                                "bias": np.zeros(2, np.float32)})  # fmt: skip
        g = Graph([fc, nrn, out], "x", (2,), "out")
        assert neurons.kind_of(nrn).name == name
        x = torch.full((3, 2), 0.3)
        counts, rec = Simulator(g).run(x, torch.zeros(3, dtype=torch.long), 10, record=["n"])
        spikes[name] = counts.spikes["n"].sum()
        # fine-tuning steps the same kind, differentiably, to the same output
        net = SpikingNet(g)
        v = net(x, 10)
        assert v.requires_grad
        engine_out = Simulator(g).run(x, torch.zeros(3, dtype=torch.long), 10, record=[OUTPUT])
        torch.testing.assert_close(v[-1] / 10, engine_out[1][OUTPUT][-3:], rtol=0, atol=1e-6)
    assert spikes["if"] == 3 * 2 * 3  # 3 images x 2 neurons x fires at steps 4, 7, 10
    assert spikes["leaky"] == 0


def test_architecture_doc_shows_the_tested_examples():
    doc = (SRC.parents[1] / "docs" / "architecture.md").read_text()
    for module in ("toy_gain.py", "toy_leaky.py"):
        code = (pathlib.Path(__file__).parent / module).read_text()
        assert f"```python\n{code}```" in doc, module
