"""Native PyTorch input: TorchScript, torch.export programs, module:factory + state dict."""

from __future__ import annotations

import textwrap

import pytest
import torch

from snnconv.errors import InputError
from snnconv.load import load_model, load_torch
from snnconv.ops import ann_forward

SHAPE = (1, 8, 8)
MODULE = textwrap.dedent(
    """
    import torch
    from torch import nn

    class Small(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 3, 3, padding=1)
            self.fc = nn.Linear(3 * 4 * 4, 5)

        def forward(self, x):
            x = nn.functional.avg_pool2d(torch.relu(self.conv(x)), 2)
            return self.fc(torch.flatten(x, 1))

    def make():
        return Small()
    """
)


@pytest.fixture
def small(tmp_path, monkeypatch):
    """A module importable as ``small_net`` and a trained-looking instance of it."""
    (tmp_path / "small_net.py").write_text(MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    import small_net

    torch.manual_seed(0)
    return small_net.make().eval()


def _same_outputs(graph, model) -> None:
    x = torch.rand(3, *SHAPE)
    with torch.no_grad():
        torch.testing.assert_close(ann_forward(graph, x)[0], model(x), rtol=1e-4, atol=1e-5)


def test_torchscript_file(tmp_path, small):
    path = tmp_path / "small.ts"
    torch.jit.save(torch.jit.trace(small, torch.rand(1, *SHAPE)), path)
    graph = load_model(path, input_shape=SHAPE)
    assert graph.metadata["source_name"] == "small.ts"
    _same_outputs(graph, small)


def test_factory_with_state_dict(tmp_path, small):
    weights = tmp_path / "small.pth"
    torch.save(small.state_dict(), weights)
    graph = load_model("small_net:make", input_shape=SHAPE, weights=weights)
    _same_outputs(graph, small)


def test_exported_program(tmp_path, small):
    path = tmp_path / "small.pt2"
    torch.export.save(torch.export.export(small, (torch.rand(2, *SHAPE),)), path)
    _same_outputs(load_model(path, input_shape=SHAPE), small)


def test_pickled_module_needs_trust(tmp_path, small):
    path = tmp_path / "small.pt"
    torch.save(small, path)
    with pytest.raises(InputError, match="--trust-pickle"):
        load_model(path, input_shape=SHAPE)
    _same_outputs(load_model(path, input_shape=SHAPE, trust_pickle=True), small)


def test_input_shape_is_required(small):
    with pytest.raises(InputError, match="input shape"):
        load_torch(small)
