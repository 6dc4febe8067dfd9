"""Where a converted SNN's error comes from, layer by layer along depth: one JSON line per
(model, conversion, T).

For every neuron layer and max-pool gate, on test images, the relative error
``||rate x threshold - target|| / ||target||`` where the target is the ANN's activation clipped
to [0, threshold] (for a gate: the max pool of its clipped input); errors compound along
depth, so each layer's figure holds the layers' before it. Beside it, per layer:

* ``floor``: the same error for the ideal T-step quantisation of the ANN activation itself
  (an IF neuron given its exact ANN input, constant, from v0 = θ/2): what the layer would
  lose alone, with no error coming in;
* ``clipped``: the share of the ANN activation above the threshold, ``||a - clip(a)|| /
  ||a||`` (what the threshold itself cuts);
* for gates, ``local``: the gate's own error against the max pool of the rates it receives,
  ``||gate rate - maxpool(input rates)|| / ||maxpool(input rates)||`` (0 for ``--maxpool
  gate``, whose count is that max at every step);
* ``shape``: the layer's (C, H, W), to see the 1×1 maps after a 4th 2×2 pool of 28×28 inputs.

The line also holds the output's relative error (the SNN's output estimate after T steps
against the ANN's logits) and both accuracies on the same images.

With ``--prepared FILE,...`` the nets are ANNs that ``snnconv prepare`` wrote, converted with
their defaults (binary IF, θ = λ, T = L unless ``--timesteps`` says otherwise; ``--calibrate``
as given), and each layer's target is the prepared ANN's own activation (QCFS, already
quantised): the error is what the SNN adds to the ANN it was prepared to reproduce, and
``floor`` / ``clipped`` do not apply. Residual nets work either way: the ``add`` feeds a
neuron layer, which is measured like any other.

Usage: ``python bench/depth_error.py --models vgg16 --timesteps 4,8 --maxpool gate,winner
--neuron if,auto [--calibrate search+bias] [--per-channel] [--v0 0.5] [--search-passes 1,2]
[--test-limit 500] [--calib-limit 1000]``; ``python bench/depth_error.py --prepared
out/prepared/resnet.onnx --timesteps 4 --calibrate none,search+bias``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).parent))
from accuracy import model_and_data  # noqa: E402
from models import FASHION_MNIST  # noqa: E402

from snnconv.convert import ConversionSettings, convert, prepared_defaults  # noqa: E402
from snnconv.convert.neurons import to_ann  # noqa: E402
from snnconv.data import load_dataset  # noqa: E402
from snnconv.graph import Graph  # noqa: E402
from snnconv.load import load_model  # noqa: E402
from snnconv.ops import ann_forward  # noqa: E402
from snnconv.simulate.engine import OUTPUT, Simulator  # noqa: E402

BATCH = 100


def _channel(theta, like: torch.Tensor) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(theta, np.float32)).flatten()
    return t.reshape((1, -1) + (1,) * (like.dim() - 2)) if t.numel() > 1 else t.reshape(())


def _quantised(a: torch.Tensor, theta: torch.Tensor, timesteps: int, v0: float) -> torch.Tensor:
    """What an IF neuron (reset by subtraction, membrane from v0·θ) emits for a constant input
    ``a`` over T steps, times θ / T."""
    count = torch.floor(a.clamp(min=0) / theta * timesteps + v0).clamp(0, timesteps)
    return count * theta / timesteps


class Layer:
    """Sums of squares for one layer's relative errors, over batches."""

    KEYS = ("error", "target", "floor", "clipped", "ann", "local", "local_target")

    def __init__(self, name: str, op: str, shape):
        self.name, self.op, self.shape = name, op, list(shape)
        self.sums = dict.fromkeys(self.KEYS, 0.0)

    def add(self, key: str, x: torch.Tensor) -> None:
        self.sums[key] += float((x.double() ** 2).sum())

    def record(self, prepared: bool = False) -> dict:
        s, rel = self.sums, lambda a, b: round(float(np.sqrt(a / b)), 4) if b else None
        if prepared:
            return {"name": self.name, "op": self.op, "shape": self.shape,
                    "error": rel(s["error"], s["target"])}  # fmt: skip
        out = {
            "name": self.name,
            "op": self.op,
            "shape": self.shape,
            "error": rel(s["error"], s["target"]),
            "floor": rel(s["floor"], s["target"]),
            "clipped": rel(s["clipped"], s["ann"]),
        }
        if self.op == "maxpool_gate":
            out["local"] = rel(s["local"], s["local_target"])
        return out


def _rates(rec: torch.Tensor, timesteps: int) -> torch.Tensor:
    return rec.view((timesteps, -1) + tuple(rec.shape[1:])).mean(0)


def measure(
    snn: Graph, x: np.ndarray, y: np.ndarray, timesteps: int, prepared: Graph | None = None
) -> dict:
    """Per-layer errors of ``snn`` against its clipped ANN twin, or against the ``prepared``
    ANN it was converted from (whose activations are the targets as they are)."""
    ann = to_ann(snn) if prepared is None else prepared
    gates = {n.name: n for n in snn if n.op == "maxpool_gate"}
    neurons = {n.name: n for n in snn if n.op == "if_neuron"}
    order = [n.name for n in snn if n.name in gates or n.name in neurons]
    sim = Simulator(snn)
    layers = {name: Layer(name, snn.node(name).op, sim.shapes[name]) for name in order}
    out_err = out_ref = 0.0
    correct = {"snn": 0, "ann": 0}
    for s in range(0, len(x), BATCH):
        xb, yb = torch.as_tensor(x[s : s + BATCH]), torch.as_tensor(y[s : s + BATCH])
        logits, acts = ann_forward(ann, xb, keep=order)
        _, rec = sim.run(xb, yb, timesteps, record=[*order, OUTPUT])
        estimate = rec[OUTPUT][-len(xb) :]
        out_err += float(((estimate - logits) ** 2).sum())
        out_ref += float((logits**2).sum())
        correct["snn"] += int((estimate.argmax(1) == yb).sum())
        correct["ann"] += int((logits.argmax(1) == yb).sum())
        for name in order:
            node, layer = snn.node(name), layers[name]
            rate = _rates(rec[name], timesteps)
            source = neurons[node.inputs[0]] if name in gates else node
            theta = _channel(source.params["threshold"], rate)
            if name in gates:
                pre = acts[node.inputs[0]]
                a = F.max_pool2d(pre, node.attrs["kernel"], node.attrs["stride"])
                quant = _quantised(pre, theta, timesteps, source.attrs["v0"])
                quant = F.max_pool2d(quant, node.attrs["kernel"], node.attrs["stride"])
                pooled_in = F.max_pool2d(
                    _rates(rec[node.inputs[0]], timesteps),
                    node.attrs["kernel"],
                    node.attrs["stride"],
                )
                layer.add("local", rate - pooled_in)
                layer.add("local_target", pooled_in)
            else:
                a = acts[name]
                quant = _quantised(a, theta, timesteps, node.attrs["v0"])
            target = a.clamp(min=0).minimum(theta) if prepared is None else a
            layer.add("error", rate * theta - target)
            layer.add("target", target)
            layer.add("floor", quant - target)
            layer.add("clipped", a.clamp(min=0) - target)
            layer.add("ann", a.clamp(min=0))
    return {
        "layers": [layers[name].record(prepared is not None) for name in order],
        "output_error": round(float(np.sqrt(out_err / out_ref)), 4),
        "snn_accuracy": correct["snn"] / len(x),
        "ann_accuracy": correct["ann"] / len(x),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="vgg16")
    p.add_argument("--prepared", help="prepared ANN files (snnconv prepare), comma-separated")
    p.add_argument("--timesteps", default="4,8")
    p.add_argument("--maxpool", default="gate,winner", help="--maxpool modes, comma-separated")
    p.add_argument("--neuron", default="if", help="--neuron kinds (or auto), comma-separated")
    p.add_argument("--calibrate", default="search+bias", help="--calibrate, comma-separated")
    p.add_argument("--threshold", default="mse")
    p.add_argument("--per-channel", action="store_true", help="per-channel thresholds")
    p.add_argument("--v0", type=float, default=0.5, help="initial membrane / threshold")
    p.add_argument("--search-passes", default="1", help="--search-passes, comma-separated")
    p.add_argument("--test-limit", type=int, default=500)
    p.add_argument("--calib-limit", type=int, default=1000)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if args.prepared:
        return _prepared(args)
    grid = itertools.product(
        args.models.split(","),
        args.maxpool.split(","),
        args.neuron.split(","),
        [int(t) for t in args.timesteps.split(",")],
        [int(p) for p in args.search_passes.split(",")],
        args.calibrate.split(","),
    )
    for model, maxpool, neuron, t, passes, calibrate in grid:
        graph, train, test = model_and_data(model, args.test_limit, args.calib_limit)
        settings = ConversionSettings(
            threshold=args.threshold,
            per_channel=args.per_channel,
            v0=args.v0,
            calibrate=calibrate,
            maxpool=maxpool,
            neuron=neuron,
            target_timesteps=t,
            search_passes=passes,
        )
        snn = convert(graph, train.x[: args.calib_limit], settings)
        chosen = json.loads(snn.metadata.get("snnconv.neuron_choice", "{}")).get("chosen")
        result = measure(snn, test.x[: args.test_limit], test.y[: args.test_limit], t)
        line = {"model": model, "maxpool": maxpool, "neuron": neuron, "timesteps": t}
        line |= {"calibrate": calibrate, "threshold": args.threshold}
        line |= {"per_channel": args.per_channel, "v0": args.v0, "search_passes": passes}
        line |= {"neuron_chosen": chosen} if chosen else {}
        print(json.dumps(line | result), flush=True)


def _prepared(args) -> None:
    train = load_dataset(FASHION_MNIST, split="train", limit=args.calib_limit)
    test = load_dataset(FASHION_MNIST, limit=args.test_limit)
    grid = itertools.product(
        args.prepared.split(","),
        args.calibrate.split(","),
        [int(t) for t in args.timesteps.split(",")],
    )
    for path, calibrate, t in grid:
        graph = load_model(path)
        defaults = prepared_defaults(graph)
        if not defaults:
            sys.exit(f"{path} was not prepared (snnconv prepare); use --models for plain ANNs")
        settings = ConversionSettings(**defaults | {"calibrate": calibrate, "target_timesteps": t})
        snn = convert(graph, train.x, settings)
        line = {"prepared": path, "levels": defaults["target_timesteps"], "timesteps": t}
        line |= {"calibrate": calibrate}
        print(json.dumps(line | measure(snn, test.x, test.y, t, prepared=graph)), flush=True)


if __name__ == "__main__":
    main()
