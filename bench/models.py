"""Fashion-MNIST reference models for the benchmarks: a small VGG, a small ResNet
and a narrow VGG-16 layout (four max pools).

``train_or_load(name)`` trains a model once (seeded, a few minutes on 2 CPU cores), exports it
to ONNX like the demo model (opset 17, BatchNormalization kept, dynamic batch), and caches it
with a JSON record of its accuracy and training time. Run ``python bench/models.py`` to build
all (``--models vgg16`` for one) and print those records as JSON.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from torch import nn

from snnconv.data import Dataset, load_dataset

FASHION_MNIST = "mnist:/usr/share/datasets/fashion-mnist"
SEED = 0
EPOCHS = 3
# The deep net learns more slowly; 5 epochs is about 6 CPU-minutes on one thread.
MODEL_EPOCHS = {"vgg16": 5}
BATCH_SIZE = 128
LR = 1e-3


def conv_bn_relu(cin: int, cout: int, stride: int = 1) -> list[nn.Module]:
    """3×3 same-padding convolution, batch norm, ReLU."""
    return [
        nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(),
    ]


def build_vgg() -> nn.Module:
    """Five conv-BN-ReLU layers (16/16/32/32/64), avgpool after the 2nd, maxpool after the 4th,
    then FC 128 + dropout → FC 10. The maxpool exercises the converter's max-pooling path."""
    return nn.Sequential(
        *conv_bn_relu(1, 16),
        *conv_bn_relu(16, 16),
        nn.AvgPool2d(2),
        *conv_bn_relu(16, 32),
        *conv_bn_relu(32, 32),
        nn.MaxPool2d(2),
        *conv_bn_relu(32, 64),
        nn.Flatten(),
        nn.Linear(64 * 7 * 7, 128),
        nn.ReLU(),
        nn.Dropout(0.3),
        nn.Linear(128, 10),
    )


class BasicBlock(nn.Module):
    """ResNet basic block; a 1×1 strided conv + BN downsamples the shortcut when shapes change."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.body = nn.Sequential(
            *conv_bn_relu(cin, cout, stride),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout),
        )
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout)
            )
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.body(x) + self.shortcut(x))


def build_resnet() -> nn.Module:
    """Stem conv 16, basic blocks 16 / 32 (stride 2) / 64 (stride 2), global avg pool, FC 10."""
    return nn.Sequential(
        *conv_bn_relu(1, 16),
        BasicBlock(16, 16, 1),
        BasicBlock(16, 32, 2),
        BasicBlock(32, 64, 2),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(64, 10),
    )


VGG16_STAGES = ((16, 2), (32, 2), (64, 3), (128, 3), (128, 3))


def build_vgg16() -> nn.Module:
    """VGG-16 layout, narrow: 13 conv-BN-ReLU layers in five stages (widths × depths in
    ``VGG16_STAGES``), a 2×2 max pool after each of the first four (28 → 14 → 7 → 3 → 1),
    global average pool, FC 128 + dropout → FC 10. Four max pools in series, and 1×1 maps in the
    last stage, are what the deep-net rows of docs/latency.md stress."""
    layers: list[nn.Module] = []
    cin = 1
    for stage, (width, depth) in enumerate(VGG16_STAGES):
        for _ in range(depth):
            layers += conv_bn_relu(cin, width)
            cin = width
        if stage < len(VGG16_STAGES) - 1:
            layers.append(nn.MaxPool2d(2))
    return nn.Sequential(
        *layers,
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(cin, 128),
        nn.ReLU(),
        nn.Dropout(0.3),
        nn.Linear(128, 10),
    )


BUILDERS: dict[str, Callable[[], nn.Module]] = {
    "vgg": build_vgg,
    "resnet": build_resnet,
    "vgg16": build_vgg16,
}


def train(model: nn.Module, data: Dataset, epochs: int = EPOCHS) -> None:
    """Adam (lr 1e-3, cosine decay) on seeded shuffles of batch 128.

    Channels-last memory is about 1.5× faster for these small convolutions on CPU.
    """
    x, y = torch.from_numpy(data.x), torch.from_numpy(data.y)
    x = x.contiguous(memory_format=torch.channels_last)
    model.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    steps = epochs * ((len(y) + BATCH_SIZE - 1) // BATCH_SIZE)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    gen = torch.Generator().manual_seed(SEED)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(y), generator=gen).split(BATCH_SIZE):
            opt.zero_grad()
            loss_fn(model(x[idx]), y[idx]).backward()
            opt.step()
            sched.step()
    model.to(memory_format=torch.contiguous_format)


def export_onnx(model: nn.Module, out: Path, input_shape: tuple[int, ...]) -> None:
    """ONNX opset 17, dynamic batch, BatchNormalization nodes kept (the converter folds BN)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        # The legacy exporter is deprecated, and it warns about constant folding under
        # PRESERVE even though the model is in eval mode (so no parameter is mutated).
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*constant folding.*", category=UserWarning)
        torch.onnx.export(
            model.eval(),
            (torch.zeros(1, *input_shape),),
            str(out),
            dynamo=False,
            opset_version=17,
            input_names=["image"],
            output_names=["logits"],
            dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}},
            do_constant_folding=True,
            training=torch.onnx.TrainingMode.PRESERVE,
        )


def onnx_accuracy(path: Path, data: Dataset, batch_size: int = 1000) -> float:
    """Test accuracy of the exported file, measured with onnxruntime (the reference ANN)."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    correct = 0
    for x, y in data.batches(batch_size):
        (logits,) = session.run(["logits"], {"image": x})
        correct += int((np.argmax(logits, axis=1) == y).sum())
    return correct / len(data)


def train_or_load(name: str, cache_dir: str | Path = "out/models", threads: int = 2) -> Path:
    """Path to ``<cache_dir>/<name>.onnx``, training and exporting the model first if absent.

    A ``<name>.json`` beside it records test accuracy (onnxruntime), epochs, threads and
    training time. On a CPU shared with other busy processes, ``threads=1`` trains several
    times faster than 2 (OpenMP threads wait on each other while descheduled).
    """
    if name not in BUILDERS:
        raise ValueError(f"unknown model {name!r}; choose one of: {', '.join(BUILDERS)}")
    path = Path(cache_dir) / f"{name}.onnx"
    if path.is_file():
        return path
    torch.set_num_threads(threads)
    torch.manual_seed(SEED)
    model = BUILDERS[name]()
    train_set = load_dataset(FASHION_MNIST, split="train")
    test_set = load_dataset(FASHION_MNIST, split="test")
    start = time.perf_counter()
    epochs = MODEL_EPOCHS.get(name, EPOCHS)
    train(model, train_set, epochs)
    seconds = time.perf_counter() - start
    tmp = path.with_suffix(".onnx.tmp")
    export_onnx(model, tmp, train_set.x.shape[1:])
    record = {
        "model": name,
        "dataset": FASHION_MNIST,
        "epochs": epochs,
        "threads": threads,
        "train_seconds": round(seconds, 1),
        "test_accuracy": onnx_accuracy(tmp, test_set),
        "torch_version": torch.__version__,
    }
    path.with_suffix(".json").write_text(json.dumps(record, indent=2) + "\n")
    tmp.replace(path)  # last, so an interrupted run never leaves a half-made cache entry
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    # No argparse choices: Python < 3.12 rejects an empty nargs="*" list against them.
    parser.add_argument("names", nargs="*", help=f"any of {', '.join(BUILDERS)} (default: all)")
    parser.add_argument(
        "--models", nargs="+", choices=list(BUILDERS), default=[], help="same as the names"
    )
    parser.add_argument("--cache-dir", type=Path, default=Path("out/models"))
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    args = parser.parse_args()
    args.names = [*args.names, *args.models]
    unknown = sorted(set(args.names) - set(BUILDERS))
    if unknown:
        parser.error(f"unknown model(s) {', '.join(unknown)}; choose from {', '.join(BUILDERS)}")
    records = []
    for name in args.names or list(BUILDERS):
        path = train_or_load(name, args.cache_dir, args.threads)
        records.append(json.loads(path.with_suffix(".json").read_text()))
    print(json.dumps(records, indent=2))


if __name__ == "__main__":
    main()
