"""SpikingJelly's ann2snn accuracy on snnconv's Fashion-MNIST nets: one JSON line per model.

For the VGG-style and ResNet-style nets of bench/models.py (trained weights read from the
cached ONNX exports, checked against onnxruntime; no retraining), measured as the shared PEERS.md
measured the peers: SpikingJelly's converter (bench/speed.py's ``spikingjelly_snn``) in each
mode (``max``, ``99.9%``, and ``99.9%`` per channel where the installed version has it),
calibrated in one batch on the first ``--calib`` training images; direct constant-current
input; read-out = argmax of the output summed over T, on the first ``--limit`` test images.
One simulation of T = 32 per mode: the running sum after t steps is the output of a run of
length t, since the net is reset only at the start. Each line gives the SpikingJelly version,
each mode's accuracy at each T, the best mode per T (ties go to the first mode listed), and the
ANN's accuracy on the same images.

SpikingJelly is not a dependency of snnconv; install it by hand (see bench/speed.py).
Usage: python bench/peers.py [--models vgg,resnet] [--limit 1000] [--calib 1000]
"""

from __future__ import annotations

import argparse
import importlib.metadata
import inspect
import json
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import numpy_helper

sys.path.insert(0, str(Path(__file__).parent))
from models import BUILDERS, FASHION_MNIST, train_or_load  # noqa: E402
from speed import spikingjelly_snn, spikingjelly_steps  # noqa: E402

from snnconv.data import load_dataset  # noqa: E402

TIMESTEPS = (2, 4, 8, 16, 32)
#: mode name -> (SpikingJelly mode, per channel)
MODES = {"max": ("max", False), "99.9%": ("99.9%", False), "99.9% per channel": ("99.9%", True)}


def trained_torch(name: str, path: Path) -> torch.nn.Module:
    """bench/models.py's net with the weights of the ONNX file; every state key must be there.

    The exporter stores an initializer equal to another one once and makes the second name
    an Identity of the first (in the ResNet the shortcut BN bias equals the body's), so
    Identity outputs of initializers count as initializers."""
    graph = onnx.load(path).graph
    weights = {w.name: numpy_helper.to_array(w) for w in graph.initializer}
    for node in graph.node:
        if node.op_type == "Identity" and node.input[0] in weights:
            weights[node.output[0]] = weights[node.input[0]]
    model = BUILDERS[name]().eval()
    keys = {k for k in model.state_dict() if not k.endswith("num_batches_tracked")}
    missing, unused = sorted(keys - set(weights)), sorted(set(weights) - keys)
    if missing or unused:
        raise SystemExit(f"{path}: weights missing {missing}, not in the torch model {unused}")
    state = {k: torch.from_numpy(weights[k].copy()) for k in keys}
    model.load_state_dict(state, strict=False)  # strict but for num_batches_tracked
    return model


def check_against_onnx(model: torch.nn.Module, path: Path, x: np.ndarray) -> None:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (theirs,) = session.run(["logits"], {"image": x})
    with torch.no_grad():
        ours = model(torch.from_numpy(x)).numpy()
    err = float(np.abs(ours - theirs).max())
    if err > 1e-3 * max(1.0, float(np.abs(theirs).max())):
        raise SystemExit(f"{path}: torch model differs from onnxruntime by {err:.3g}")


def installed_modes() -> list[str]:
    from spikingjelly.activation_based import ann2snn

    recipe = getattr(ann2snn, "RateCodingRecipe", None)
    per_channel = recipe is not None and "channel_wise" in inspect.signature(recipe).parameters
    return [m for m in MODES if per_channel or not MODES[m][1]]


def accuracy_per_t(net, x: torch.Tensor, y: torch.Tensor, batch: int) -> dict[str, float]:
    correct = dict.fromkeys(TIMESTEPS, 0)
    for i in range(0, len(x), batch):
        xb, yb = x[i : i + batch], y[i : i + batch]
        for t, out in enumerate(spikingjelly_steps(net, xb, max(TIMESTEPS)), 1):
            if t in correct:
                correct[t] += int((out.argmax(1) == yb).sum())
    return {str(t): correct[t] / len(x) for t in TIMESTEPS}


def bench_model(name: str, limit: int, calib: int, batch: int) -> dict:
    start = time.perf_counter()
    path = train_or_load(name, threads=1)
    train = load_dataset(FASHION_MNIST, split="train", limit=calib)
    test = load_dataset(FASHION_MNIST, split="test", limit=limit)
    model = trained_torch(name, path)
    check_against_onnx(model, path, test.x[:32])
    x, y = torch.from_numpy(test.x), torch.from_numpy(test.y).long()
    with torch.no_grad():
        ann = int((model(x).argmax(1) == y).sum()) / len(x)
    modes, seconds = {}, {}
    for mode in installed_modes():
        t0 = time.perf_counter()
        sj_mode, per_channel = MODES[mode]
        net = spikingjelly_snn(model, torch.from_numpy(train.x), "cpu", sj_mode, per_channel)
        modes[mode] = accuracy_per_t(net, x, y, batch)
        seconds[mode] = round(time.perf_counter() - t0, 1)
    best = {
        str(t): max(modes, key=lambda m: modes[m][str(t)])  # noqa: B023
        for t in TIMESTEPS
    }
    return {
        "bench": "peers",
        "model": name,
        "peer": "spikingjelly",
        "version": importlib.metadata.version("spikingjelly"),
        "test_images": len(x),
        "calibration_images": len(train.x),
        "ann_accuracy": ann,
        "accuracy": modes,
        "best_mode": best,
        "best_accuracy": {t: modes[m][t] for t, m in best.items()},
        "modes_missing": [m for m in MODES if m not in modes],
        "seconds": seconds,
        "total_seconds": round(time.perf_counter() - start, 1),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="vgg,resnet")
    p.add_argument("--limit", type=int, default=1000, help="Fashion-MNIST test images")
    p.add_argument("--calib", type=int, default=1000, help="calibration (training) images")
    p.add_argument("--batch-size", type=int, default=250)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    try:
        from spikingjelly.activation_based import ann2snn, functional  # noqa: F401
    except ImportError as e:
        raise SystemExit(
            f"bench/peers.py measures SpikingJelly, which cannot be imported ({e}). It is not a "
            "dependency of snnconv; install it by hand: pip install --no-deps spikingjelly, "
            "then what its import needs (tqdm and requests for 0.0.0.0.14)."
        ) from None
    torch.set_num_threads(args.threads)
    for name in args.models.split(","):
        print(json.dumps(bench_model(name, args.limit, args.calib, args.batch_size)), flush=True)


if __name__ == "__main__":
    main()
