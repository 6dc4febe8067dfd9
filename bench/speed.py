"""Simulation speed against the dense limit: prints one JSON line per (model, T, device).

The dense limit is T forward passes of the ANN, timed in the same process on the same batch
with the same kernels (snnconv's own torch forward of the BN-folded ANN); a ratio above 1
means the SNN simulation costs less than T ANN passes. The engine runs its convolutions
channels-last on CPU, so the ANN is also timed on a channels-last input (its convolutions and
what follows them then run channels-last too): ``dense_limit_ratio_ann_channels_last`` is the
ratio to that faster dense limit. Every call is timed by both clocks; ``--clock`` picks the
one of the main fields, the other goes in ``other_clock``. Models: a VGG-16 and a ResNet-18 for
3x32x32 input (random weights, thresholds calibrated on random images: speed does not depend
on training), the Fashion-MNIST VGG-style net of bench/models.py when cached, and the bundled
digits CNN. Peak memory: the process's peak RSS on CPU, max allocated on CUDA.

With ``--reference spikingjelly`` (SpikingJelly installed by hand; never a dependency of
snnconv) each row also times SpikingJelly's own ann2snn conversion of the same torch network
(max-norm, calibrated on the same batch), run as its tutorial runs it: ``functional.reset_net``
then T forward calls, their outputs summed. It is timed alternately with the ANN and with
snnconv's engine; its rate and ratio to the dense limit go in the row's ``reference``.
Where the network exists as a torch module (all but digits), that module's own forward is
timed too, as a cross-check of the dense limit (``dense_limit_ratio_torch_module``).

On CUDA the engine runs all T steps in the batch at once and each binary IF layer as one
Triton kernel per chunk; ``--compare-eager`` also times it without those kernels
(``Simulator(fused=False)``: eager loops; ``eager_neurons`` in the row), ``--chunk`` fixes
the steps per chunk. Rows on CUDA name the card, torch, and the TF32 settings (torch's
defaults: cuDNN convolutions may use TF32, matrix products may not); the ANN and the SNN run
under the same.

Usage: python bench/speed.py [--models vgg16,resnet18,fashion-vgg,digits] [--timesteps 8,32]
       [--batch-size 64] [--threads 1] [--device cpu] [--repeats 3] [--clock wall]
       [--reference spikingjelly] [--chunk N] [--compare-eager]
"""

from __future__ import annotations

import argparse
import copy
import importlib.metadata
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
from snnconv.ops import ann_forward, params_on
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
        self.relu = nn.ReLU()  # a module, not torch.relu: SpikingJelly converts only modules

    def forward(self, x):
        return self.relu(self.b(self.a(x)) + self.skip(x))


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


def fashion_vgg_onnx() -> Path:
    path = Path("out/models/vgg.onnx")
    if not path.exists():
        sys.path.insert(0, str(Path(__file__).parent))
        from models import train_or_load

        path = train_or_load("vgg", threads=1)
    return path


def load_model(name: str):
    if name in ("vgg16", "resnet18"):
        return load_torch(torch_model(name), input_shape=(3, 32, 32))
    if name == "digits":
        return load_onnx(asset_path("digits_cnn.onnx"))
    if name == "fashion-vgg":
        return load_onnx(fashion_vgg_onnx())
    raise SystemExit(f"unknown model {name!r}")


def torch_model(name: str) -> nn.Module | None:
    """The network as a torch module (for the reference simulator), or None if there is none."""
    torch.manual_seed(0)
    if name == "vgg16":
        return vgg16()
    if name == "resnet18":
        return resnet18()
    if name == "fashion-vgg":  # bench/models.py's net, its weights read back from the ONNX file
        import onnx
        from onnx import numpy_helper

        sys.path.insert(0, str(Path(__file__).parent))
        from models import build_vgg

        model = build_vgg()
        weights = onnx.load(fashion_vgg_onnx()).graph.initializer
        state = {w.name: torch.from_numpy(numpy_helper.to_array(w).copy()) for w in weights}
        model.load_state_dict(state, strict=False)  # the ONNX file has no num_batches_tracked
        return model.eval()
    return None


#: ``--clock``: wall time, or the process's CPU time, which other jobs on a shared machine
#: disturb far less (they still share its caches and memory bandwidth). CPU only.
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
clock = CLOCKS["wall"]


def seconds(fn) -> dict[str, float]:
    """The call's duration by each clock."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = {k: c() for k, c in CLOCKS.items()}
    fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return {k: c() - start[k] for k, c in CLOCKS.items()}


def peak_memory_mb(device: str) -> float:
    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@torch.no_grad()
def torch_forward(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return module(x)


def spikingjelly_snn(
    model: nn.Module, x: torch.Tensor, device: str, mode: str = "max", channel_wise: bool = False
) -> nn.Module:
    """SpikingJelly's ann2snn conversion of ``model`` (a copy), calibrated on ``x`` in one batch.

    ``mode``: ``max`` or a percentile such as ``99.9%``; ``channel_wise`` (SpikingJelly >= 2.0
    only) takes the statistic per channel.
    """
    from spikingjelly.activation_based import ann2snn

    model = copy.deepcopy(model).eval().to(device)
    calibration = [(x, torch.zeros(len(x), dtype=torch.long))]
    if hasattr(ann2snn, "FXConverter"):  # SpikingJelly >= 2.0
        extra = {"channel_wise": True} if channel_wise else {}
        recipe = ann2snn.RateCodingRecipe(dataloader=calibration, mode=mode, **extra)
        return ann2snn.FXConverter(recipe=recipe, device=device).convert(model)
    if channel_wise:
        raise ValueError("this SpikingJelly has no per-channel ann2snn mode")
    return ann2snn.Converter(dataloader=calibration, mode=mode, device=device)(model)


@torch.no_grad()
def spikingjelly_steps(net: nn.Module, x: torch.Tensor, timesteps: int):
    """As SpikingJelly's ann2snn tutorial simulates: reset, then one call per step; yields the
    running sum of the outputs after each step."""
    from spikingjelly.activation_based import functional

    functional.reset_net(net)
    out = net(x)
    yield out
    for _ in range(timesteps - 1):
        out = out + net(x)
        yield out


def spikingjelly_run(net: nn.Module, x: torch.Tensor, timesteps: int) -> torch.Tensor:
    """The outputs of ``timesteps`` steps from reset, summed."""
    *_, out = spikingjelly_steps(net, x, timesteps)
    return out


def prepared(name: str, batch: int, device: str):
    """A random batch (numpy), the network converted on it (binary IF, as SpikingJelly's
    reference simulates; ``auto`` could pick signed neurons) and its ANN, weights on
    ``device`` as the SNN's are."""
    graph = load_model(name)
    rng = np.random.default_rng(0)
    x = rng.random((batch,) + tuple(graph.input_shape), dtype=np.float32)
    snn = convert(graph, x, ConversionSettings(neuron="if", calibrate="none"))
    return x, snn, params_on(prepare_ann(graph), device)


def bench(
    name: str,
    timesteps: list[int],
    batch: int,
    device: str,
    repeats: int,
    reference: str | None,
    chunk: int | None = None,
    compare_eager: bool = False,
) -> list[dict]:
    x, snn, ann = prepared(name, batch, device)
    sim = Simulator(snn, device)
    # the same engine with its per-step loops as eager torch ops (on CUDA they are fused)
    eager = Simulator(snn, device, fused=False) if compare_eager else None
    xt = torch.as_tensor(x).to(device)
    x_nhwc = xt.contiguous(memory_format=torch.channels_last) if xt.dim() == 4 else xt
    y = torch.zeros(batch, dtype=torch.long)
    model = torch_model(name)
    theirs = spikingjelly_snn(model, xt, device) if reference and model is not None else None
    # a cross-check of the dense limit: the same ANN as a plain torch module (its batch norms
    # unfolded), so a slow forward of snnconv's own cannot flatter the ratio unseen
    module = copy.deepcopy(model).to(device).eval() if model is not None else None
    rows = []
    for T in timesteps:
        if device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
        # ANN, SNN and reference timed alternately, so load on a shared machine hits all alike
        times = {"ann": [], "ann_nhwc": [], "snn": [], "eager": [], "ref": [], "module": []}
        for _ in range(repeats + 1):
            times["ann"].append(seconds(lambda: ann_forward(ann, xt)))
            times["ann_nhwc"].append(seconds(lambda: ann_forward(ann, x_nhwc)))
            if module is not None:
                times["module"].append(seconds(lambda: torch_forward(module, xt)))
            times["snn"].append(seconds(lambda: sim.run(xt, y, T, chunk=chunk)))  # noqa: B023
            if eager is not None:
                times["eager"].append(seconds(lambda: eager.run(xt, y, T, chunk=chunk)))  # noqa: B023
            if theirs is not None:
                times["ref"].append(seconds(lambda: spikingjelly_run(theirs, xt, T)))  # noqa: B023
        if device.startswith("cuda"):  # the SNN's own peak, apart from the ANN's and theirs
            torch.cuda.reset_peak_memory_stats()
            sim.run(xt, y, T, chunk=chunk)
        main_clock = next(k for k, v in CLOCKS.items() if v is clock)
        rates = {k: _rates(times, k, batch, T) for k in CLOCKS}
        ann_s = [t[main_clock] for t in times["ann"][1:]]
        snn_s = [t[main_clock] for t in times["snn"][1:]]
        row = {
            "model": name,
            "device": device,
            **device_info(device),
            "threads": torch.get_num_threads(),
            "clock": main_clock,
            "batch": batch,
            "timesteps": T,
            "chunk": chunk or sim.auto_chunk(batch, T),
            "fused": sim.fused,
            **rates[main_clock],
            "peak_memory_mb": round(peak_memory_mb(device), 1),
        }
        other = next(k for k in CLOCKS if k != main_clock)
        row["other_clock"] = {"clock": other, **rates[other]}
        if module is not None:
            module_s = [t[main_clock] for t in times["module"][1:]]
            row["torch_module_images_per_s"] = round(batch / statistics.median(module_s), 1)
            row["dense_limit_ratio_torch_module"] = round(
                statistics.median([T * a / s for a, s in zip(module_s, snn_s, strict=True)]), 3
            )
        if eager is not None:
            eager_s = [t[main_clock] for t in times["eager"][1:]]
            row["eager_neurons"] = other_simulator(ann_s, snn_s, eager_s, batch, T)
        if reference:
            ref_s = [t[main_clock] for t in times["ref"][1:]]
            row["reference"] = reference_row(ann_s, snn_s, ref_s, batch, T)
        rows.append(row)
    return rows


def device_info(device: str) -> dict:
    """What decides a GPU row's speed: the card, torch, and whether convolutions may use
    TF32 (torch's default for cuDNN; the ANN and the SNN run under the same setting)."""
    if not device.startswith("cuda"):
        return {}
    return {
        "gpu": torch.cuda.get_device_name(torch.device(device)),
        "torch": torch.__version__,
        "cudnn_tf32": torch.backends.cudnn.allow_tf32,
        "matmul_tf32": torch.backends.cuda.matmul.allow_tf32,
    }


def other_simulator(ann_s, snn_s, other_s, batch: int, T: int) -> dict:
    """Rate and dense-limit ratio of another simulator timed in the same repeats, and how
    many times faster snnconv's engine ran (medians of per-repeat ratios)."""
    return {
        "image_steps_per_s": round(batch * T / statistics.median(other_s), 1),
        "dense_limit_ratio": round(
            statistics.median([T * a / s for a, s in zip(ann_s, other_s, strict=True)]), 3
        ),
        "snnconv_speedup": round(
            statistics.median([o / s for o, s in zip(other_s, snn_s, strict=True)]), 3
        ),
    }


def _rates(times: dict, clock_name: str, batch: int, T: int) -> dict:
    """Rates and dense-limit ratios by one clock (medians over the repeats, the first, a
    warm-up, left out); each ratio pairs ANN and SNN times of the same repeat."""
    ann, nhwc, snn = ([t[clock_name] for t in times[k][1:]] for k in ("ann", "ann_nhwc", "snn"))
    return {
        "image_steps_per_s": round(batch * T / statistics.median(snn), 1),
        "ann_images_per_s": round(batch / statistics.median(ann), 1),
        "dense_limit_ratio": round(
            statistics.median([T * a / s for a, s in zip(ann, snn, strict=True)]), 3
        ),
        "ann_channels_last_images_per_s": round(batch / statistics.median(nhwc), 1),
        "dense_limit_ratio_ann_channels_last": round(
            statistics.median([T * a / s for a, s in zip(nhwc, snn, strict=True)]), 3
        ),
    }


def reference_row(ann_s, snn_s, ref_s, batch: int, T: int) -> dict:
    version = importlib.metadata.version("spikingjelly")
    if not ref_s:
        return {"name": "spikingjelly", "version": version, "skipped": "no torch model"}
    return {
        "name": "spikingjelly",
        "version": version,
        **other_simulator(ann_s, snn_s, ref_s, batch, T),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="vgg16,resnet18,fashion-vgg,digits")
    p.add_argument("--timesteps", default="8,32")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument(
        "--reference",
        choices=["spikingjelly"],
        help="also time this simulator on the same networks (must be installed by hand)",
    )
    p.add_argument("--clock", choices=sorted(CLOCKS), default="wall")
    p.add_argument("--chunk", type=int, help="steps in the batch at once (default: automatic)")
    p.add_argument(
        "--compare-eager",
        action="store_true",
        help="also time the engine without its fused kernels (fused=False: eager per-step "
        "loops; on CUDA they are Triton kernels by default)",
    )
    args = p.parse_args()
    if args.clock == "cpu" and args.device != "cpu":
        p.error("--clock cpu times CPU runs only")
    global clock
    clock = CLOCKS[args.clock]
    if args.reference:
        check_reference(args.reference)
    torch.set_num_threads(args.threads)
    steps = [int(t) for t in args.timesteps.split(",")]
    for name in args.models.split(","):
        rows = bench(
            name,
            steps,
            args.batch_size,
            args.device,
            args.repeats,
            args.reference,
            args.chunk,
            args.compare_eager,
        )
        for row in rows:
            print(json.dumps(row), flush=True)


def check_reference(name: str) -> None:
    """Exit 2 with what to do when the reference simulator cannot be imported."""
    try:
        from spikingjelly.activation_based import ann2snn, functional  # noqa: F401
    except ImportError as e:
        print(
            f"--reference {name}: SpikingJelly cannot be imported ({e}). It is not a dependency "
            "of snnconv; install it next to your torch without replacing it: "
            "pip install --no-deps spikingjelly, then what its import needs "
            "(tqdm and requests for 0.0.0.0.14).",
            file=sys.stderr,
        )
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
