"""Simulation speed against the dense limit: prints one JSON line per (model, T, device).

The dense limit is T forward passes of the ANN, timed in the same process on the same batch
with the same kernels (snnconv's own torch forward of the BN-folded ANN); a ratio above 1
means the SNN simulation costs less than T ANN passes. Models: a VGG-16 and a ResNet-18 for
3x32x32 input (random weights, thresholds calibrated on random images: speed does not depend
on training), the Fashion-MNIST VGG-style net of bench/models.py when cached, and the bundled
digits CNN. Peak memory: the process's peak RSS on CPU, max allocated on CUDA.

Usage: python bench/speed.py [--models vgg16,resnet18,fashion-vgg,digits] [--timesteps 8,32]
       [--batch-size 64] [--threads 1] [--device cpu] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from snnconv.convert import ConversionSettings, convert, prepare_ann
from snnconv.data import asset_path
from snnconv.load import load_onnx, load_torch
from snnconv.ops import ann_forward
from snnconv.simulate import Simulator


def vgg16() -> nn.Module:
    cfg = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]
    layers, c = [], 3
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(2))
        else:
            layers += [nn.Conv2d(c, v, 3, padding=1), nn.BatchNorm2d(v), nn.ReLU()]
            c = v
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(512, 10))


class Basic(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.a = nn.Sequential(
            nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()
        )
        self.b = nn.Sequential(nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout))
        self.skip = (
            nn.Sequential()
            if stride == 1 and cin == cout
            else nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
        )

    def forward(self, x):
        return torch.relu(self.b(self.a(x)) + self.skip(x))


def resnet18() -> nn.Module:
    blocks, c = [], 64
    for cout, stride in (
        (64, 1),
        (64, 1),
        (128, 2),
        (128, 1),
        (256, 2),
        (256, 1),
        (512, 2),
        (512, 1),
    ):
        blocks.append(Basic(c, cout, stride))
        c = cout
    return nn.Sequential(
        nn.Conv2d(3, 64, 3, 1, 1, bias=False),
        nn.BatchNorm2d(64),
        nn.ReLU(),
        *blocks,
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(512, 10),
    )


def load_model(name: str):
    torch.manual_seed(0)
    if name == "vgg16":
        return load_torch(vgg16(), input_shape=(3, 32, 32))
    if name == "resnet18":
        return load_torch(resnet18(), input_shape=(3, 32, 32))
    if name == "digits":
        return load_onnx(asset_path("digits_cnn.onnx"))
    if name == "fashion-vgg":
        path = Path("out/models/vgg.onnx")
        if not path.exists():
            sys.path.insert(0, str(Path(__file__).parent))
            from models import train_or_load

            path = train_or_load("vgg", threads=1)
        return load_onnx(path)
    raise SystemExit(f"unknown model {name!r}")


def seconds(fn) -> float:
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    t = time.perf_counter()
    fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - t


def peak_memory_mb(device: str) -> float:
    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench(name: str, timesteps: list[int], batch: int, device: str, repeats: int) -> list[dict]:
    graph = load_model(name)
    rng = np.random.default_rng(0)
    x = rng.random((batch,) + tuple(graph.input_shape), dtype=np.float32)
    snn = convert(graph, x, ConversionSettings(calibrate="none"))
    ann = prepare_ann(graph)
    sim = Simulator(snn, device)
    xt = torch.as_tensor(x).to(device)
    y = torch.zeros(batch, dtype=torch.long)
    rows = []
    for T in timesteps:
        if device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
        # ANN and SNN timed alternately, so load on a shared machine hits both alike
        ann_s, snn_s = [], []
        for _ in range(repeats + 1):
            ann_s.append(seconds(lambda: ann_forward(ann, xt)))
            snn_s.append(seconds(lambda: sim.run(xt, y, T)))  # noqa: B023
        ann_med, snn_med = statistics.median(ann_s[1:]), statistics.median(snn_s[1:])
        ratios = [T * a / s for a, s in zip(ann_s[1:], snn_s[1:], strict=True)]
        rows.append(
            {
                "model": name,
                "device": device,
                "threads": torch.get_num_threads(),
                "batch": batch,
                "timesteps": T,
                "chunk": sim.auto_chunk(batch, T),
                "image_steps_per_s": round(batch * T / snn_med, 1),
                "ann_images_per_s": round(batch / ann_med, 1),
                "dense_limit_ratio": round(statistics.median(ratios), 3),
                "peak_memory_mb": round(peak_memory_mb(device), 1),
            }
        )
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="vgg16,resnet18,fashion-vgg,digits")
    p.add_argument("--timesteps", default="8,32")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    steps = [int(t) for t in args.timesteps.split(",")]
    for name in args.models.split(","):
        for row in bench(name, steps, args.batch_size, args.device, args.repeats):
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
