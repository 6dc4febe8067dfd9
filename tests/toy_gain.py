"""A toy op, ``gain``: ``y = k * x``, the worked example of docs/architecture.md.

Everything the op means lives in its spec: its ANN kernel (which also gives its shape), what
spikes do through it (they pass as they are: the same events, their amplitude times k), and
its ONNX node. Registering the spec is all it takes for the forward pass, shape inference,
the engine and ``save`` to know it."""

from __future__ import annotations

import numpy as np

from snnconv.ops import OpSpec


def _write(w, n) -> None:
    k = w.param(n, "k", np.asarray(n.attrs["k"], np.float32))
    w.emit(n, "Mul", [n.inputs[0], k])


GAIN = OpSpec(
    "gain",
    ann=lambda n, xs: xs[0] * n.attrs["k"],
    write=_write,
    # spike events pass unchanged, so synops are counted where they land
    route=lambda n, events: events[0],
    channel_route=lambda n: lambda channel_events, rows: channel_events[0],
    # the spikes stay 0/1; only the amplitude the next layer applies changes
    pass_scale=lambda n, data, is_spikes, scale, in_shape: (data, scale * n.attrs["k"]),
)
