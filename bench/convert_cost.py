"""What a conversion costs: seconds per stage and peak memory, against the net's depth.

For each model it converts with the defaults (``ConversionSettings(target_timesteps=T)``:
neuron auto, mse thresholds, search+bias), at 1 thread, each model in a fresh process so that
its peak resident memory (``ru_maxrss``) is its own. Models: the bundled digits CNN, the
Fashion-MNIST nets of bench/models.py (``vgg``, ``resnet``) and CIFAR-style ResNets on
3x32x32 with random weights (``resnet8``, ``resnet14``, ``resnet20``, ``resnet32``: 6n+2
layers; ``resnet18``: basic blocks of 64..512 channels), fed seeded random images.

It prints JSON: per model its layer counts, the conversion's wall and CPU seconds (CPU time
is what a busy shared machine distorts least), the stages' wall seconds and the peak memory;
then, over the ResNet family, fits of CPU seconds against the number of neuron layers, linear
and quadratic. ``--before-src DIR`` converts each model with the snnconv sources in DIR too
(e.g. an older checkout's src/), and ``--spikingjelly-python PY`` times SpikingJelly's
ann2snn conversion (max-norm, the same calibration images) of the same architectures with
that interpreter, where it has SpikingJelly.

Usage: ``python bench/convert_cost.py [--models digits,vgg,resnet8,resnet14,resnet20]
[--timesteps 8] [--calib-images 256] [--before-src DIR] [--spikingjelly-python PY]``;
``--large`` adds resnet32 and resnet18 (many minutes).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

DEFAULT_MODELS = "digits,vgg,resnet,resnet8,resnet14,resnet20"
LARGE_MODELS = "resnet32,resnet18"
FAMILY = ("resnet8", "resnet14", "resnet20", "resnet32", "resnet18")
HERE = Path(__file__).resolve().parent


def torch_model(name: str):
    """The torch module of a model (random weights, batch norm statistics seeded), and its
    input shape."""
    import torch
    from torch import nn

    sys.path.insert(0, str(HERE))
    from models import BUILDERS

    torch.manual_seed(0)
    if name in BUILDERS:
        model, shape = BUILDERS[name](), (1, 28, 28)
    elif name == "resnet18":
        widths, blocks, shape = (64, 128, 256, 512), (2, 2, 2, 2), (3, 32, 32)
        model = _resnet(widths, blocks, shape[0])
    else:
        n = (int(name.removeprefix("resnet")) - 2) // 6
        widths, blocks, shape = (16, 32, 64), (n, n, n), (3, 32, 32)
        model = _resnet(widths, blocks, shape[0])
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
    return model.eval(), shape


def _resnet(widths, blocks, channels):
    from models import BasicBlock, conv_bn_relu
    from torch import nn

    layers, cin = list(conv_bn_relu(channels, widths[0])), widths[0]
    for i, (w, n) in enumerate(zip(widths, blocks, strict=True)):
        for b in range(n):
            layers.append(BasicBlock(cin, w, 2 if i > 0 and b == 0 else 1))
            cin = w
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, 10))


def graph_and_data(name: str, calib_images: int):
    """The ANN graph and calibration images of a model."""
    import io

    import torch

    from snnconv.data import asset_path, load_dataset
    from snnconv.load import load_onnx

    if name == "digits":
        graph = load_onnx(asset_path("digits_cnn.onnx"))
        return graph, load_dataset("digits", split="train", limit=calib_images).x
    if name in ("vgg", "resnet"):
        from models import FASHION_MNIST, train_or_load

        graph = load_onnx(train_or_load(name, cache_dir=HERE.parent / "out/models", threads=1))
        return graph, load_dataset(FASHION_MNIST, split="train", limit=calib_images).x
    model, shape = torch_model(name)
    buf = io.BytesIO()
    torch.onnx.export(
        model, torch.rand((2,) + shape), buf, dynamo=False, opset_version=17,
        input_names=["x"], output_names=["y"], dynamic_axes={"x": {0: "b"}, "y": {0: "b"}},
    )  # fmt: skip
    x = np.random.default_rng(0).random((calib_images,) + shape, dtype=np.float32)
    return load_onnx(buf.getvalue()), x


def one(name: str, timesteps: int, calib_images: int, variant: str) -> dict:
    """Convert one model in this process; what it cost."""
    import torch

    torch.set_num_threads(1)
    sys.path.insert(0, str(HERE))
    from snnconv.convert import ConversionSettings, convert
    from snnconv.graph import unroll

    changed = {}
    if variant:  # none for sources that predate the variants
        from search_savings import set_variant

        changed = set_variant(variant)

    graph, x = graph_and_data(name, calib_images)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    wall, cpu = time.perf_counter(), time.process_time()
    snn = convert(graph, x, ConversionSettings(target_timesteps=timesteps, **changed))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    flat = unroll(snn)
    return {
        "model": name,
        "timesteps": timesteps,
        "calibration_images": len(x),
        "variant": variant or "as the sources ship",
        "neuron_layers": sum(n.op == "if_neuron" for n in flat),
        "weighted_layers": sum(n.op in ("conv", "linear") for n in flat),
        "convert_seconds": round(wall, 2),
        "convert_cpu_seconds": round(cpu, 2),
        "stage_seconds": json.loads(snn.metadata.get("snnconv.stage_seconds", "null")),
        "peak_rss_mib": round(rss / 1024, 1),
        "rss_before_convert_mib": round(rss_before / 1024, 1),
    }


def one_spikingjelly(name: str, calib_images: int) -> dict:
    """SpikingJelly's ann2snn conversion (max-norm) of the same architecture, timed."""
    import torch
    from spikingjelly.activation_based import ann2snn

    torch.set_num_threads(1)
    sys.path.insert(0, str(HERE))
    model, shape = torch_model(name) if name != "digits" else (None, None)
    if model is None:
        return {"model": name, "spikingjelly": "no torch module of the digits CNN here"}
    x = torch.as_tensor(np.random.default_rng(0).random((calib_images,) + shape, np.float32))
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(x, torch.zeros(len(x), dtype=torch.long)), batch_size=128
    )
    wall, cpu = time.perf_counter(), time.process_time()
    if hasattr(ann2snn, "RateCodingRecipe"):  # SpikingJelly 2
        ann2snn.Converter(ann2snn.RateCodingRecipe(loader, mode="Max")).convert(model)
    else:
        ann2snn.Converter(mode="max", dataloader=loader)(model)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {
        "model": name,
        "spikingjelly_seconds": round(wall, 2),
        "spikingjelly_cpu_seconds": round(cpu, 2),
    }


def _subprocess(python: str, src: str | None, args: list[str]) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    if src is not None:
        env["PYTHONPATH"] = src
    r = subprocess.run(
        [python, __file__, *args], capture_output=True, text=True, env=env, cwd=HERE.parent
    )
    if r.returncode != 0:
        return {"error": r.stderr.strip().splitlines()[-1] if r.stderr.strip() else "failed"}
    return json.loads(r.stdout.strip().splitlines()[-1])


def fit(rows: list[dict], key: str) -> dict:
    """CPU seconds against neuron layers over the ResNet family: linear and quadratic fits."""
    pts = [(r["neuron_layers"], r[key]) for r in rows if r["model"] in FAMILY and key in r]
    if len(pts) < 3:
        return {"note": "fewer than 3 ResNets measured"}
    layers, secs = (np.array(v, float) for v in zip(*pts, strict=True))
    out = {"layers": layers.tolist(), "seconds": secs.tolist()}
    for degree, label in ((1, "linear"), (2, "quadratic")):
        coef = np.polyfit(layers, secs, degree)
        residual = secs - np.polyval(coef, layers)
        r2 = 1 - float((residual**2).sum()) / float(((secs - secs.mean()) ** 2).sum())
        out[label] = {"coefficients": [float(f"{c:.4g}") for c in coef], "r2": round(r2, 4)}
    out["seconds_per_layer"] = [round(s / n, 3) for n, s in pts]
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default=DEFAULT_MODELS)
    p.add_argument("--large", action="store_true", help=f"add {LARGE_MODELS}")
    p.add_argument("--timesteps", type=int, default=8)
    p.add_argument("--calib-images", type=int, default=256)
    p.add_argument("--before-src", help="also convert with the snnconv sources in this dir")
    p.add_argument("--spikingjelly-python", help="an interpreter with SpikingJelly")
    p.add_argument(
        "--variant",
        default="defaults",
        help="the conversion's savings, as bench/search_savings.py names them (e.g. full)",
    )
    p.add_argument("--one", help=argparse.SUPPRESS)
    p.add_argument("--one-spikingjelly", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:
        print(json.dumps(one(args.one, args.timesteps, args.calib_images, args.variant)))
        return
    if args.one_spikingjelly:
        print(json.dumps(one_spikingjelly(args.one_spikingjelly, args.calib_images)))
        return
    models = args.models.split(",") + (LARGE_MODELS.split(",") if args.large else [])
    common = ["--timesteps", str(args.timesteps), "--calib-images", str(args.calib_images)]
    plain = [*common, "--variant", ""]  # the sources before and SpikingJelly: no variants
    common += ["--variant", args.variant]
    rows = []
    for name in models:
        row = _subprocess(sys.executable, os.environ.get("PYTHONPATH"), ["--one", name, *common])
        row.setdefault("model", name)
        if args.before_src:
            before = _subprocess(sys.executable, args.before_src, ["--one", name, *plain])
            row["before"] = {
                k: before.get(k)
                for k in ("convert_seconds", "convert_cpu_seconds", "peak_rss_mib", "error")
                if k in before
            }
        if args.spikingjelly_python:
            row.update(
                _subprocess(
                    args.spikingjelly_python,
                    os.environ.get("PYTHONPATH"),
                    ["--one-spikingjelly", name, *plain],
                )
            )
        else:
            row["spikingjelly"] = "not installed (give --spikingjelly-python)"
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    result = {"threads": 1, "rows": rows, "fit_cpu_seconds": fit(rows, "convert_cpu_seconds")}
    if args.before_src:
        before = [dict(r, **r["before"]) for r in rows if "before" in r]
        result["fit_cpu_seconds_before"] = fit(before, "convert_cpu_seconds")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
