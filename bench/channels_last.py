"""Channels-last against NCHW convolutions in the engine, in one process (CPU, 1 thread).

Per model of bench/speed.py (random weights, batch 64): the ANN on an NCHW and on a
channels-last batch, and the SNN with ``Simulator(channels_last=False)`` and ``True``, timed
alternately each repeat, by CPU time (the process's, which other jobs on a shared machine
disturb less than wall time). Prints one JSON line per model and T: the median times, the
engine's speed-up and, for each engine against each ANN, the ratio to the dense limit
(T x median ANN time / median SNN time). With ``--layers``, first one line per conv layer: the
conv alone on binary spikes (10 % firing) at the batch the engine gives it at T = 32, in both
layouts.

Usage: python bench/channels_last.py [--models resnet18,vgg16] [--timesteps 32]
       [--repeats 2] [--layers]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
import torch
from speed import load_model

from snnconv import ops
from snnconv.convert import ConversionSettings, convert, prepare_ann
from snnconv.ops import ann_forward
from snnconv.simulate import Simulator

NHWC = torch.channels_last


def cpu_seconds(fn) -> float:
    t = time.process_time()
    fn()
    return time.process_time() - t


def layers(name: str, sim: Simulator, batch: int, repeats: int) -> None:
    rows = batch * sim.auto_chunk(batch, 32)
    for node in sim.graph:
        if node.op != "conv":
            continue
        x = (torch.rand((rows,) + tuple(sim.shapes[node.inputs[0]])) < 0.1).float()
        w = torch.as_tensor(node.params["weight"])
        b = torch.as_tensor(node.params["bias"]) if "bias" in node.params else None
        xc, wc = x.contiguous(memory_format=NHWC), w.contiguous(memory_format=NHWC)
        nchw, nhwc = [], []
        for _ in range(repeats + 1):
            nchw.append(cpu_seconds(lambda: ops.conv(node, x, w, b)))  # noqa: B023
            nhwc.append(cpu_seconds(lambda: ops.conv(node, xc, wc, b)))  # noqa: B023
        a, c = statistics.median(nchw[1:]), statistics.median(nhwc[1:])
        row = {"model": name, "layer": node.name, "input": list(x.shape), "weight": list(w.shape)}
        print(json.dumps(row | {"nchw_ms": round(a * 1e3, 2), "nhwc_ms": round(c * 1e3, 2)}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="resnet18,vgg16")
    p.add_argument("--timesteps", default="32")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--layers", action="store_true")
    args = p.parse_args()
    torch.set_num_threads(1)
    batch = args.batch_size
    for name in args.models.split(","):
        graph = load_model(name)
        rng = np.random.default_rng(0)
        x = rng.random((batch,) + tuple(graph.input_shape), dtype=np.float32)
        settings = ConversionSettings(neuron="if", calibrate="none")
        snn, ann = convert(graph, x, settings), prepare_ann(graph)
        sims = {"nchw": Simulator(snn, channels_last=False), "nhwc": Simulator(snn)}
        if args.layers:
            layers(name, sims["nchw"], batch, 2 * args.repeats + 1)
        xt, y = torch.as_tensor(x), torch.zeros(batch, dtype=torch.long)
        inputs = {"nchw": xt, "nhwc": xt.contiguous(memory_format=NHWC)}
        for T in (int(t) for t in args.timesteps.split(",")):
            times = {f"{k}_{v}": [] for k in ("ann", "snn") for v in ("nchw", "nhwc")}
            for _ in range(args.repeats + 1):
                for v, xv in inputs.items():
                    times[f"ann_{v}"].append(cpu_seconds(lambda: ann_forward(ann, xv)))  # noqa: B023
                for v, sim in sims.items():
                    times[f"snn_{v}"].append(cpu_seconds(lambda: sim.run(xt, y, T)))  # noqa: B023
            med = {k: statistics.median(v[1:]) for k, v in times.items()}
            row = {"model": name, "timesteps": T, "chunk": sims["nhwc"].auto_chunk(batch, T)}
            row |= {f"{k}_s": round(v, 4) for k, v in med.items()}
            row["engine_speedup"] = round(med["snn_nchw"] / med["snn_nhwc"], 3)
            for s in inputs:
                for a in inputs:
                    row[f"ratio_snn_{s}_ann_{a}"] = round(T * med[f"ann_{a}"] / med[f"snn_{s}"], 3)
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
